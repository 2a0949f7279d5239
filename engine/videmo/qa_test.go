package videmo

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/internal/testenv"
)

func opts(labels ...string) []Option {
	var o []Option
	for i, l := range labels {
		o = append(o, Option{Letter: string(rune('A' + i)), Label: l})
	}
	return o
}

// The fallback's text -> option mapping: letters first (in their usual
// wrappings), then exactly one whole-word label; anything else is no
// answer.
func TestMapText(t *testing.T) {
	emotion := opts("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
	age := opts("child", "young adult", "middle-aged", "elderly")
	nine := opts("one", "two", "three", "four", "five", "six", "seven", "eight", "nine") // letters A..I
	overlap := opts("adult", "young adult")
	for _, c := range []struct {
		text string
		o    []Option
		want int
	}{
		{"A", emotion, 0},
		{"A.", emotion, 0},
		{"(B)", emotion, 1},
		{"b) sad", emotion, 1},
		{"  \"C\"", emotion, 2},
		{"**D**", emotion, 3},
		{"E: surprise", emotion, 4},
		{"F\nThe person wrinkles the nose.", emotion, 5},
		{"G fear", emotion, 6},
		{"B sad", emotion, 1},
		{"A happy", emotion, 0},
		{"sad", emotion, 1},
		{"The person looks Sad.", emotion, 1},
		{"A person who looks sad", emotion, 1}, // the article, not option A
		{"A person", emotion, -1},
		{"I think she is elderly", nine, -1}, // "I" the pronoun, and no label
		{"I.", nine, 8},
		{"happy or sad", emotion, -1}, // two labels
		{"sadly", emotion, -1},        // whole words only
		{"sadness and unhappiness", emotion, -1},
		{"young adult", age, 1},
		{"a middle-aged man", age, 2},
		{"a young adult", overlap, 1}, // "adult" only inside the longer label
		{"an adult, not a young adult", overlap, -1},
		{"Angry", emotion, 3}, // a label, not the letter A
		{"Z.", emotion, -1},
		{"", emotion, -1},
		{"Yes, the cheeks are raised.", opts("yes", "no"), 0},
		{"No", opts("yes", "no"), 1},
	} {
		if got := MapText(c.text, c.o); got != c.want {
			t.Errorf("MapText(%q) = %d, want %d", c.text, got, c.want)
		}
	}
}

func TestMassRounding(t *testing.T) {
	for _, c := range [][2]float64{{1.5437e-5, 1.544e-5}, {0.123456, 0.1235}, {0.99996, 1}, {1, 1}, {0, 0}, {-1e-9, 0}, {1.0000001, 1}, {math.NaN(), 0}} {
		if got := mass(c[0]); got != c[1] {
			t.Errorf("mass(%g) = %g, want %g", c[0], got, c[1])
		}
	}
}

// fillTree is a minimal schema-valid tree for Fill to complete.
func fillTree() *tree.Tree {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return &tree.Tree{Schema: tree.Schema, ID: "cam1-7-000003", Camera: "cam1", TrackID: 7,
		Window: tree.Window{Start: tree.Time(t0), End: tree.Time(t0.Add(time.Second)), Frames: 4},
		Source: tree.Source{Engine: "videmo-tiny-int4", Model: "videmo-tiny@0123456789ab"}}
}

// handResult is the tiny manifest's closed-set plan with a given
// distribution, letter mass and reading per question id.
func handResult(t *testing.T, m *Manifest, set map[string]ChoiceResult) *Result {
	t.Helper()
	res := &Result{}
	for i := range m.Questions {
		q := &m.Questions[i]
		if q.Kind != "choice" {
			continue
		}
		c, ok := set[q.ID]
		if !ok {
			t.Fatalf("no hand-made answer for question %s", q.ID)
		}
		c.Question = q
		for _, o := range q.Options {
			c.Labels = append(c.Labels, o.Label)
		}
		if len(c.Probs) != len(c.Labels) {
			t.Fatalf("question %s: %d probabilities for %d options", q.ID, len(c.Probs), len(c.Labels))
		}
		res.Choices = append(res.Choices, c)
	}
	return res
}

// Each reading method sets the levels as Fill documents: option_logits the
// arg max at its probability; generated_text the named label at the letter
// distribution's probability of it; uncertain the arg max at p x letter
// mass, flagged on expression and emotion; and Source.Answers audits all.
func TestFillMethods(t *testing.T) {
	m, err := LoadManifest(testenv.Path(t, tinyManifest))
	if err != nil {
		t.Fatal(err)
	}
	emo := []float64{0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.02} // happy is the arg max
	res := handResult(t, m, map[string]ChoiceResult{
		"emotion": {Probs: emo, LetterMass: 0.3, Method: tree.MethodGeneratedText, Text: "sad", Mapped: 1},
		"gender":  {Probs: []float64{0.8, 0.2}, LetterMass: 0.25, Method: tree.MethodUncertain, Text: "xyz", Mapped: -1},
		"age":     {Probs: []float64{0.1, 0.6, 0.2, 0.1}, LetterMass: 0.9, Method: tree.MethodOptionLogits, Mapped: -1},
		"mikels":  {Probs: []float64{0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1}, LetterMass: 0.2, Method: tree.MethodUncertain, Mapped: -1},
		"au_au6":  {Probs: []float64{0.8, 0.2}, LetterMass: 0.25, Method: tree.MethodUncertain, Mapped: -1},
		"au_au12": {Probs: []float64{0.7, 0.3}, LetterMass: 0.1, Method: tree.MethodGeneratedText, Text: "No.", Mapped: 1},
		"au_au4":  {Probs: []float64{0.2, 0.8}, LetterMass: 0.1, Method: tree.MethodGeneratedText, Text: "Yes", Mapped: 0},
	})
	res.Caption = "The person frowns."
	tr := fillTree()
	res.Fill(tr, m)
	b, _ := json.Marshal(tr)
	if err := tree.ValidateJSON(b); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	e := tr.Expression
	if e == nil || e.Label != "sad" || e.Confidence != 0.2 || e.Uncertain || e.Scores["happy"] != 0.5 {
		t.Errorf("generated_text expression = %+v; want sad at the letters' P(sad) 0.2, not uncertain, scores kept", e)
	}
	if tr.Emotion == nil || tr.Emotion.Label != m.Category["sad"] || tr.Emotion.Confidence != 0.2 || tr.Emotion.Uncertain || tr.Emotion.Rationale != res.Caption {
		t.Errorf("emotion = %+v", tr.Emotion)
	}
	if g := tr.Attributes.Gender; g == nil || g.Value != "male" || g.Confidence != 0.2 { // 0.8 x 0.25
		t.Errorf("uncertain gender = %+v; want male at 0.8 x 0.25", g)
	}
	if o := tr.Attributes.Other; len(o) != 1 || o[0].Value != "young adult" || o[0].Confidence != 0.6 {
		t.Errorf("option_logits age = %+v", o)
	}
	// the Mikels question fills emotion.mikels, read like the others: a
	// guess here, so amusement at 0.3 x 0.2, flagged; never "derived"
	if mk := tr.Emotion.Mikels; mk == nil || mk.Label != "amusement" || mk.Confidence != 0.06 || !mk.Uncertain || mk.Derived || len(mk.Scores) != 8 || mk.Scores["sadness"] != 0.1 {
		t.Errorf("uncertain mikels = %+v", mk)
	}
	cues := map[string]tree.Cue{}
	for _, c := range e.Cues {
		cues[c.AU] = c
	}
	if c, ok := cues["AU6"]; ok { // an uncertain yes is a guess, not evidence (the caption does not mention it)
		t.Errorf("uncertain AU6 became a cue: %+v", c)
	}
	if c, ok := cues["AU12"]; ok {
		t.Errorf("AU12: the text said no (P(yes) 0.7 notwithstanding), yet a cue: %+v", c)
	}
	if c, ok := cues["AU4"]; !ok || c.Intensity != 0.2 { // the text said yes: P(yes) 0.2
		t.Errorf("generated yes AU4 cue = %+v (present %v); want intensity P(yes) 0.2", c, ok)
	}
	ai := func(q string, mass float64, method string) tree.AnswerInfo {
		return tree.AnswerInfo{Question: q, LetterMass: mass, Method: method}
	}
	want := []tree.AnswerInfo{
		ai("emotion", 0.3, "generated_text"), ai("gender", 0.25, "uncertain"), ai("age", 0.9, "option_logits"),
		ai("mikels", 0.2, "uncertain"), ai("au_au6", 0.25, "uncertain"), ai("au_au12", 0.1, "generated_text"), ai("au_au4", 0.1, "generated_text"),
	}
	if got := tr.Source.Answers; len(got) != len(want) {
		t.Fatalf("source.answers = %+v", got)
	} else {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("source.answers[%d] = %+v, want %+v", i, got[i], want[i])
			}
		}
	}

	// An uncertain expression: the arg max kept, confidence p x mass, both
	// levels flagged, the rationale unchanged; option_logits: plain.
	for _, c := range []struct {
		method    string
		conf      float64
		uncertain bool
	}{{tree.MethodUncertain, 0.05, true}, {tree.MethodOptionLogits, 0.5, false}} {
		set := map[string]ChoiceResult{
			"emotion": {Probs: emo, LetterMass: 0.1, Method: c.method, Mapped: -1},
			"gender":  {Probs: []float64{0.5, 0.5}, LetterMass: 1},
			"age":     {Probs: []float64{0.25, 0.25, 0.25, 0.25}, LetterMass: 1},
			"mikels":  {Probs: []float64{0.05, 0.05, 0.05, 0.65, 0.05, 0.05, 0.05, 0.05}, LetterMass: 1},
			"au_au6":  {Probs: []float64{0.1, 0.9}, LetterMass: 1},
			"au_au12": {Probs: []float64{0.1, 0.9}, LetterMass: 1},
			"au_au4":  {Probs: []float64{0.1, 0.9}, LetterMass: 1},
		}
		res := handResult(t, m, set)
		res.Caption = "A smile."
		tr := fillTree()
		res.Fill(tr, m)
		b, _ := json.Marshal(tr)
		if err := tree.ValidateJSON(b); err != nil {
			t.Fatalf("%s: %v\n%s", c.method, err, b)
		}
		e, em := tr.Expression, tr.Emotion
		if e.Label != "happy" || e.Confidence != c.conf || e.Uncertain != c.uncertain || em.Label != m.Category["happy"] || em.Confidence != c.conf || em.Uncertain != c.uncertain || em.Rationale != "A smile." {
			t.Errorf("%s: expression %+v, emotion %+v; want happy at %g, uncertain %v", c.method, e, em, c.conf, c.uncertain)
		}
		if got := tr.Source.Answers[1]; got.Method != tree.MethodOptionLogits { // no method given: option_logits
			t.Errorf("%s: gender answer %+v", c.method, got)
		}
		if mk := em.Mikels; mk == nil || mk.Label != "excitement" || mk.Confidence != 0.65 || mk.Uncertain {
			t.Errorf("%s: mikels %+v, want excitement at 0.65", c.method, mk)
		}
		if s := string(b); strings.Contains(s, `"uncertain"`) != c.uncertain {
			t.Errorf("%s: serialised uncertain flag wrong: %s", c.method, s)
		}
	}
}

// manifestCopy writes the tiny manifest, edited by mod, into dir (file
// paths made relative to dir so it points at the real graphs).
func manifestCopy(t *testing.T, dir, name string, mod func(map[string]any)) string {
	t.Helper()
	src := testenv.Path(t, tinyManifest)
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range m["files"].([]any) {
		f := f.(map[string]any)
		f["path"], _ = filepath.Rel(dir, filepath.Join(filepath.Dir(src), f["path"].(string)))
	}
	if mod != nil {
		mod(m)
	}
	out, _ := json.Marshal(m)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLetterMassThresholdManifest(t *testing.T) {
	dir := t.TempDir()
	m, err := LoadManifest(manifestCopy(t, dir, "default.json", nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.LetterMassMin(); got != 0.5 {
		t.Errorf("no letter_mass_threshold: %g, want the default 0.5", got)
	}
	for _, v := range []float64{0, 0.8, 1} {
		m, err := LoadManifest(manifestCopy(t, dir, "ok.json", func(m map[string]any) { m["letter_mass_threshold"] = v }))
		if err != nil {
			t.Fatalf("letter_mass_threshold %g: %v", v, err)
		}
		if m.LetterMassMin() != v {
			t.Errorf("letter_mass_threshold %g read as %g", v, m.LetterMassMin())
		}
	}
	for _, v := range []float64{-0.1, 1.5} {
		p := manifestCopy(t, dir, "bad.json", func(m map[string]any) { m["letter_mass_threshold"] = v })
		_, err := LoadManifest(p)
		if err == nil || !strings.Contains(err.Error(), "letter_mass_threshold") || !strings.Contains(err.Error(), "[0, 1]") || !strings.Contains(err.Error(), p) {
			t.Errorf("letter_mass_threshold %g: error %v; want one naming the file, the key and [0, 1]", v, err)
		}
	}
}

// askWith runs the plan on the test video with the manifest at path.
func askWith(t *testing.T, path string, o Options) (*Runner, *Result) {
	t.Helper()
	r, err := NewRunner(testRuntime(t), path, testTokenizer(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	res, err := r.Ask(context.Background(), testVideo(t, r), nil)
	if err != nil {
		t.Fatal(err)
	}
	return r, res
}

// choiceIndex maps res.Choices to their plan indices (res.Answers).
func choiceIndex(m *Manifest) []int {
	var idx []int
	for i, q := range m.Questions {
		if q.Kind == "choice" {
			idx = append(idx, i)
		}
	}
	return idx
}

// On the tiny model: every choice's letter mass is a probability equal to
// the letters' share of the whole vocabulary's softmax (recomputed here
// from all 151,936 logits); the threshold decides the reading (1: always
// the generated text, 0: never), the fallback's text is its tokens decoded
// and mapped by MapText, and the trees validate.
func TestAskLetterMassFallback(t *testing.T) {
	dir := t.TempDir()
	r, res := askWith(t, testenv.Path(t, tinyManifest), Options{})
	m := r.Manifest()
	idx := choiceIndex(m)
	if len(res.Choices) != len(idx) || len(idx) == 0 {
		t.Fatalf("%d choices for %d closed-set questions", len(res.Choices), len(idx))
	}
	// the whole vocabulary's logits at each question's first position
	v := testVideo(t, r)
	texts := make([]string, len(m.Questions))
	for i := range m.Questions {
		texts[i] = m.Questions[i].Text()
	}
	prompt, err := r.Prompt(v, texts)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Prefill(v, prompt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	all := make([]int, m.Dims.Vocab)
	for i := range all {
		all[i] = i
	}
	for k, c := range res.Choices {
		i := idx[k]
		full, err := r.Continue(p, prompt.Suffixes[i], all, 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		var z, letters float64
		for _, x := range full.First {
			z += math.Exp(float64(x) - full.LogSumExp)
		}
		for _, id := range r.OptionIDs(i) {
			letters += math.Exp(float64(full.First[id]) - full.LogSumExp)
		}
		a := res.Answers[i]
		t.Logf("%s: letter mass %.3g (%d letters of %d tokens; uniform would be %.3g), method %s, text %q", c.Question.ID, c.LetterMass, len(c.Labels), len(all), float64(len(c.Labels))/float64(len(all)), c.Method, c.Text)
		if !(c.LetterMass >= 0 && c.LetterMass <= 1) {
			t.Errorf("%s: letter mass %g outside [0, 1]", c.Question.ID, c.LetterMass)
		}
		if math.Abs(z-1) > 1e-9 {
			t.Errorf("%s: the vocabulary's softmax sums to %g: LogSumExp is wrong", c.Question.ID, z)
		}
		if d := math.Abs(c.LetterMass - letters); d > 1e-6*letters {
			t.Errorf("%s: letter mass %g, the full softmax gives %g", c.Question.ID, c.LetterMass, letters)
		}
		if got := LetterMass(a.First, a.LogSumExp); got != c.LetterMass {
			t.Errorf("%s: letter mass %g != LetterMass(First, LogSumExp) = %g", c.Question.ID, c.LetterMass, got)
		}
		if fb := c.LetterMass < DefaultLetterMassThreshold; fb != (c.Method != tree.MethodOptionLogits) {
			t.Errorf("%s: letter mass %g under the default threshold, method %s", c.Question.ID, c.LetterMass, c.Method)
		}
	}

	check := func(name string, th float64, fallback bool) {
		path := manifestCopy(t, dir, name, func(m map[string]any) { m["letter_mass_threshold"] = th })
		r, res := askWith(t, path, Options{})
		for k, c := range res.Choices {
			a := res.Answers[idx[k]]
			if !fallback {
				if c.Method != tree.MethodOptionLogits || c.Text != "" || len(a.Tokens) != 0 {
					t.Errorf("threshold %g, %s: method %s, text %q, %d tokens; want the letters alone", th, c.Question.ID, c.Method, c.Text, len(a.Tokens))
				}
				continue
			}
			if c.Method != tree.MethodGeneratedText && c.Method != tree.MethodUncertain {
				t.Errorf("threshold %g, %s: method %s, want the generated text's", th, c.Question.ID, c.Method)
			}
			if len(a.Tokens) == 0 && a.Stopped != "eos" || len(a.Tokens) > FallbackTokens {
				t.Errorf("threshold %g, %s: %d tokens (%s): the fallback did not generate up to %d", th, c.Question.ID, len(a.Tokens), a.Stopped, FallbackTokens)
			}
			if want := strings.TrimSpace(r.Tokenizer().Decode(a.Tokens, true)); c.Text != want {
				t.Errorf("threshold %g, %s: text %q, its tokens decode to %q", th, c.Question.ID, c.Text, want)
			}
			if c.Text == "" && (len(a.Tokens) != 0 || a.Stopped != "eos") {
				t.Errorf("threshold %g, %s: no text from %d tokens (%s)", th, c.Question.ID, len(a.Tokens), a.Stopped)
			}
			if mapped := MapText(c.Text, c.Question.Options); (mapped >= 0) != (c.Method == tree.MethodGeneratedText) || mapped >= 0 && c.Mapped != mapped {
				t.Errorf("threshold %g, %s: text %q maps to %d, result says %s / %d", th, c.Question.ID, c.Text, mapped, c.Method, c.Mapped)
			}
			var sum float64
			for _, q := range c.Probs {
				sum += q
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Errorf("threshold %g, %s: probabilities sum to %g", th, c.Question.ID, sum)
			}
		}
		tr, err := NewAnalyzer(r, 1).Analyze(context.Background(), testWindow())
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(tr)
		if err := tree.ValidateJSON(b); err != nil {
			t.Fatalf("threshold %g: %v\n%s", th, err, b)
		}
		if len(tr.Source.Answers) != len(idx) {
			t.Fatalf("threshold %g: source.answers %+v", th, tr.Source.Answers)
		}
		for k, a := range tr.Source.Answers {
			if a.Question != res.Choices[k].Question.ID || a.Method != res.Choices[k].Method || a.LetterMass != mass(res.Choices[k].LetterMass) || a.LetterMass <= 0 {
				t.Errorf("threshold %g: source.answers[%d] = %+v, Ask read %s as %s, letter mass %g", th, k, a, res.Choices[k].Question.ID, res.Choices[k].Method, res.Choices[k].LetterMass)
			}
		}
		if exp := tr.Expression; exp.Uncertain != (res.Choices[0].Method == tree.MethodUncertain) || tr.Emotion.Uncertain != exp.Uncertain {
			t.Errorf("threshold %g: expression uncertain %v, emotion %v, emotion answer read as %s", th, exp.Uncertain, tr.Emotion.Uncertain, res.Choices[0].Method)
		}
		t.Logf("threshold %g: %s", th, b)
	}
	check("always.json", 1, true)
	check("never.json", 0, false)
}

// Options.CaptionTokens replaces the manifest's caption budget, both ways.
func TestCaptionTokens(t *testing.T) {
	m, err := LoadManifest(testenv.Path(t, tinyManifest))
	if err != nil {
		t.Fatal(err)
	}
	manifest := 0
	for _, q := range m.Questions {
		if q.Kind == "caption" {
			manifest = q.MaxNewTokens
		}
	}
	for _, n := range []int{3, manifest + 16} {
		r, res := askWith(t, testenv.Path(t, tinyManifest), Options{CaptionTokens: n})
		t.Logf("caption tokens %d (manifest %d): %d tokens (%s)", n, manifest, len(res.CaptionTokens), res.CaptionStop)
		if len(res.CaptionTokens) > n || res.CaptionStop == "length" && len(res.CaptionTokens) != n {
			t.Errorf("caption tokens %d: generated %d (%s)", n, len(res.CaptionTokens), res.CaptionStop)
		}
		if res.CaptionStop != "eos" && len(res.CaptionTokens) != n {
			t.Errorf("caption tokens %d: %d tokens without an EOS", n, len(res.CaptionTokens))
		}
		for i := range m.Questions {
			if m.Questions[i].Kind == "caption" && r.CaptionBudget(&r.Manifest().Questions[i]) != n {
				t.Errorf("CaptionBudget = %d, want %d", r.CaptionBudget(&r.Manifest().Questions[i]), n)
			}
		}
	}
}

// A mikels question must offer exactly Mikels' eight; anything else is a
// manifest error naming the file, the question and the categories.
func TestMikelsQuestionManifest(t *testing.T) {
	dir := t.TempDir()
	m, err := LoadManifest(testenv.Path(t, tinyManifest))
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(m.Questions, func(q Question) bool { return q.Target == "mikels" })
	if i < 0 || len(m.Questions[i].Options) != 8 {
		t.Fatalf("the tiny manifest has no Mikels question (scripts/convert_videmo.py writes one): %+v", m.Questions)
	}
	for name, edit := range map[string]func(opts []any) []any{
		"seven":     func(o []any) []any { return o[:7] },
		"unknown":   func(o []any) []any { o[0].(map[string]any)["label"] = "joy"; return o },
		"duplicate": func(o []any) []any { o[1].(map[string]any)["label"] = "amusement"; return o },
	} {
		p := manifestCopy(t, dir, name+".json", func(mf map[string]any) {
			q := mf["questions"].([]any)[i].(map[string]any)
			q["options"] = edit(q["options"].([]any))
		})
		_, err := LoadManifest(p)
		if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "(mikels)") || !strings.Contains(err.Error(), "Mikels") {
			t.Errorf("%s: error %v; want one naming the file, the question and Mikels' categories", name, err)
		}
	}
}
