package videmo

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/window"
)

// ChoiceResult is a closed-set answer: a distribution over the option
// labels, softmax of the option letters' logits at the first answer
// position (so it is always a valid label set, whatever the model would
// have written), and how much that distribution can be trusted.
type ChoiceResult struct {
	Question *Question
	Labels   []string
	Logits   []float32
	Probs    []float64
	// LetterMass is the probability the option letters carry against the
	// whole vocabulary at the first answer position (LetterMass): how much
	// of the model's belief Probs renormalises.
	LetterMass float64
	// Method is how the answer was read: tree.MethodOptionLogits (letter
	// mass at or above the manifest's threshold: the arg max of Probs),
	// tree.MethodGeneratedText (below it, the model's own greedy text named
	// option Mapped) or tree.MethodUncertain (below it, and the text named
	// no single option: the arg max of Probs, a guess). Empty counts as
	// option_logits.
	Method string
	// Text is the generated text of the fallback ("" when none ran).
	Text string
	// Mapped is the index of the option Text named (Method generated_text).
	Mapped int
}

// Top is the most probable label and its probability.
func (c *ChoiceResult) Top() (string, float64) {
	b := 0
	for i := range c.Probs {
		if c.Probs[i] > c.Probs[b] {
			b = i
		}
	}
	return c.Labels[b], c.Probs[b]
}

// Pick is the answer's label and its probability under the letter
// distribution: the label the generated text named (generated_text), else
// the most probable one (Top).
func (c *ChoiceResult) Pick() (string, float64) {
	if c.Method == tree.MethodGeneratedText && c.Mapped >= 0 && c.Mapped < len(c.Labels) {
		return c.Labels[c.Mapped], c.Probs[c.Mapped]
	}
	return c.Top()
}

// Uncertain reports whether the answer is a guess (Method uncertain).
func (c *ChoiceResult) Uncertain() bool { return c.Method == tree.MethodUncertain }

// Discount is the factor on a level's confidence: the letter mass for a
// guess (its probability as the model's whole belief, not as a share of
// the letters'), else 1.
func (c *ChoiceResult) Discount() float64 {
	if c.Uncertain() {
		return c.LetterMass
	}
	return 1
}

// Prob is the probability of label (0 if it is not an option).
func (c *ChoiceResult) Prob(label string) float64 {
	for i, l := range c.Labels {
		if l == label {
			return c.Probs[i]
		}
	}
	return 0
}

// Result is the question plan answered for one video.
type Result struct {
	Choices       []ChoiceResult // choice questions, plan order
	Caption       string         // caption question's text ("" if none)
	CaptionTokens []int
	CaptionStop   string
	// Answers: per question, plan order, the runner's last reading of it.
	// For a closed-set question that fell back to generated text it is that
	// generation (Tokens; First and LogSumExp read the same first position
	// again), while its ChoiceResult keeps the first reading's letters.
	Answers []*Answer

	PrefixTokens int
	Prefill      time.Duration // vision + prefix prefill
	Questions    time.Duration // all questions off the prefix
}

// FallbackTokens is the generation budget of a closed-set question whose
// option letters carry less than the threshold: enough for a letter and its
// label ("C. middle-aged") or a short sentence naming one, little enough
// that a rambling answer does not mention a second label (MapText then
// gives up) nor cost more than 16 decoder steps per question.
const FallbackTokens = 16

// Ask prefills v once and answers every question of the manifest's plan
// off the shared prefix. rng seeds sampling (nil: greedy).
//
// A closed-set question is first read from its option letters' logits. When
// the letters carry less than the manifest's letter_mass_threshold of the
// model's probability, the model's own answer is generated greedily
// (FallbackTokens; greedy whatever rng, so the reading is reproducible) and
// mapped to an option (MapText); the distribution stays the letters'.
func (r *Runner) Ask(ctx context.Context, v *Video, rng *rand.Rand) (*Result, error) {
	qs := r.m.Questions
	texts := make([]string, len(qs))
	for i := range qs {
		texts[i] = qs[i].Text()
	}
	prompt, err := r.Prompt(v, texts)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	prefix, err := r.Prefill(v, prompt)
	if err != nil {
		return nil, err
	}
	defer prefix.Close()
	res := &Result{PrefixTokens: prefix.Len(), Prefill: time.Since(t0)}
	t1 := time.Now()
	first := r.optIDs
	answers := make([]*Answer, len(qs))
	// closed-set questions: QuestionBatch of them per decoder Run
	var batch []int
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		suf, ids := make([][]int, len(batch)), make([][]int, len(batch))
		for j, i := range batch {
			suf[j], ids[j] = prompt.Suffixes[i], first[i]
		}
		got, err := r.ChoiceBatch(prefix, suf, ids)
		if err != nil {
			return fmt.Errorf("questions %s: %w", questionIDs(qs, batch), err)
		}
		for j, i := range batch {
			answers[i] = got[j]
		}
		batch = batch[:0]
		return nil
	}
	for i := range qs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if qs[i].Kind == "caption" {
			a, err := r.Continue(prefix, prompt.Suffixes[i], first[i], r.CaptionBudget(&qs[i]), rng)
			if err != nil {
				return nil, fmt.Errorf("question %s: %w", qs[i].ID, err)
			}
			answers[i] = a
			continue
		}
		batch = append(batch, i)
		if len(batch) >= r.questionBatch() {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	threshold := r.m.LetterMassMin()
	for i := range qs {
		q, a := &qs[i], answers[i]
		switch q.Kind {
		case "choice":
			c := ChoiceResult{Question: q, Logits: a.First, Probs: Softmax(a.First), LetterMass: LetterMass(a.First, a.LogSumExp), Method: tree.MethodOptionLogits, Mapped: -1}
			for _, o := range q.Options {
				c.Labels = append(c.Labels, o.Label)
			}
			if c.LetterMass < threshold {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				g, err := r.Continue(prefix, prompt.Suffixes[i], first[i], FallbackTokens, nil)
				if err != nil {
					return nil, fmt.Errorf("question %s: generating its answer (letter mass %.3g < letter_mass_threshold %g): %w", q.ID, c.LetterMass, threshold, err)
				}
				a = g
				c.Text = strings.TrimSpace(r.tok.Decode(g.Tokens, true))
				c.Mapped = MapText(c.Text, q.Options)
				c.Method = tree.MethodUncertain
				if c.Mapped >= 0 {
					c.Method = tree.MethodGeneratedText
				}
			}
			res.Choices = append(res.Choices, c)
		case "caption":
			res.Caption = strings.TrimSpace(r.tok.Decode(a.Tokens, true))
			res.CaptionTokens = a.Tokens
			res.CaptionStop = a.Stopped
		}
		res.Answers = append(res.Answers, a)
	}
	res.Questions = time.Since(t1)
	return res, nil
}

// CaptionBudget is caption question q's generation budget in new tokens:
// Options.CaptionTokens when set, else the manifest's max_new_tokens.
func (r *Runner) CaptionBudget(q *Question) int {
	if r.opts.CaptionTokens > 0 {
		return r.opts.CaptionTokens
	}
	return q.MaxNewTokens
}

func questionIDs(qs []Question, idx []int) string {
	var ids []string
	for _, i := range idx {
		ids = append(ids, qs[i].ID)
	}
	return strings.Join(ids, ",")
}

// LetterMass is the probability the model puts on the option letters at
// the first answer position, against the whole vocabulary: Σ exp(first[i] −
// logSumExp). Near 1, the letters are what the model would write; low, it
// would write something else and the letter distribution is a guess.
func LetterMass(first []float32, logSumExp float64) float64 {
	var m float64
	for _, x := range first {
		m += math.Exp(float64(x) - logSumExp)
	}
	return min(m, 1)
}

// Softmax is the distribution over x (float64, shifted by the maximum).
func Softmax(x []float32) []float64 {
	out := make([]float64, len(x))
	m := math.Inf(-1)
	for _, v := range x {
		m = math.Max(m, float64(v))
	}
	var s float64
	for i, v := range x {
		out[i] = math.Exp(float64(v) - m)
		s += out[i]
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// Fill writes the answers into t's attributes, expression and emotion
// levels (docs/tree.md: the VLM fills them from closed-set distributions and its
// caption), and the audit of each closed-set answer into t.Source.Answers.
//
//   - target "expression": expression.label/confidence/scores; emotion
//     label via the manifest's emotion_category, same confidence;
//   - target "attribute": "gender" -> attributes.gender, others ->
//     attributes.other (name = attribute, value = the answer's label);
//   - target "mikels": emotion.mikels, the distribution over Mikels'
//     eight (its label, confidence and uncertain read as for expression);
//   - target "cue": an action unit; a cue {name, au, intensity = P(yes)}
//     when the answer is yes (P(yes) >= 0.5; read from the text: the text
//     said yes) or the caption mentions it;
//   - the caption -> emotion.rationale; cue phrases found in it (the
//     manifest's cue vocabulary, case-insensitive substrings) add cues.
//     A caption-only cue whose AU was not asked has intensity 0: mentioned,
//     not measured.
//
// How each answer was read (ChoiceResult.Method) sets its label and
// confidence. option_logits: the most probable label, its probability.
// generated_text: the label the text named, with the letter distribution's
// probability of that label (the only calibrated number there is; it may
// be below another label's). uncertain: the most probable label, kept so
// the level is not lost, with confidence p × letter_mass (the probability
// the model gives that letter against its whole vocabulary, not among the
// letters only), and the expression and emotion levels marked uncertain;
// cues' intensities are P(yes) × letter_mass. Scores are the letter
// distribution in every case, and the caption's rationale is unchanged.
//
// Every cue has evidence "videmo".
func (res *Result) Fill(t *tree.Tree, m *Manifest) {
	caption := strings.ToLower(res.Caption)
	mentioned := map[string]bool{}
	for _, c := range m.Cues {
		if caption != "" && strings.Contains(caption, c.Phrase) {
			mentioned[c.Name] = true
		}
	}
	var expr *tree.Expression
	var emo *tree.Emotion
	var attrs *tree.Attributes
	var mikels *tree.Mikels
	var audit []tree.AnswerInfo
	cues := map[string]*tree.Cue{}
	var order []string
	addCue := func(name, au string, intensity float64) {
		if c := cues[name]; c != nil {
			c.Intensity = max(c.Intensity, intensity)
			return
		}
		cues[name] = &tree.Cue{Name: name, AU: au, Intensity: intensity, Evidence: tree.EvidenceVidEmo}
		order = append(order, name)
	}
	for i := range res.Choices {
		c := &res.Choices[i]
		q := c.Question
		method := c.Method
		if method == "" {
			method = tree.MethodOptionLogits
		}
		audit = append(audit, tree.AnswerInfo{Question: q.ID, LetterMass: mass(c.LetterMass), Method: method})
		label, p := c.Pick()
		conf := prob(p * c.Discount())
		switch q.Target {
		case "expression":
			scores := map[string]float64{}
			for j, l := range c.Labels {
				scores[l] = prob(c.Probs[j])
			}
			expr = &tree.Expression{Label: label, Confidence: conf, Scores: scores, Uncertain: c.Uncertain()}
			cat := m.Category[label]
			if cat == "" {
				cat = label
			}
			emo = &tree.Emotion{Label: cat, Confidence: conf, Uncertain: c.Uncertain()}
		case "mikels":
			mikels = &tree.Mikels{Label: label, Confidence: conf, Scores: map[string]float64{}, Uncertain: c.Uncertain()}
			for j, l := range c.Labels {
				mikels.Scores[l] = prob(c.Probs[j])
			}
		case "attribute":
			if attrs == nil {
				attrs = &tree.Attributes{}
			}
			if q.Attribute == "gender" {
				attrs.Gender = &tree.LabelValue{Value: label, Confidence: conf}
			} else {
				attrs.Other = append(attrs.Other, tree.NamedValue{Name: q.Attribute, Value: label, Confidence: conf})
			}
		case "cue":
			py := c.Prob(q.Yes)
			yes := py >= 0.5
			switch method {
			case tree.MethodGeneratedText:
				yes = label == q.Yes
			case tree.MethodUncertain:
				// a guess is not evidence: the cue comes only from a caption
				// mention (intensity 0, "mentioned, not measured")
				yes = false
			}
			if yes || mentioned[q.Cue] {
				addCue(q.Cue, q.AU, prob(py*c.Discount()))
			}
		}
	}
	for _, c := range m.Cues {
		if mentioned[c.Name] {
			addCue(c.Name, c.AU, 0)
		}
	}
	if res.Caption != "" || mikels != nil {
		if emo == nil {
			emo = &tree.Emotion{}
		}
		emo.Rationale = res.Caption
		emo.Mikels = mikels
	}
	if len(order) > 0 {
		if expr == nil {
			expr = &tree.Expression{}
		}
		for _, n := range order {
			expr.Cues = append(expr.Cues, *cues[n])
		}
	}
	t.Attributes, t.Expression, t.Emotion = attrs, expr, emo
	t.Source.Answers = audit
}

// prob is a probability as trees carry it: in [0, 1], 4 decimals.
func prob(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Round(min(max(x, 0), 1)*1e4) / 1e4
}

// mass is a letter mass as trees carry it: in [0, 1], 4 significant digits
// (not decimals: how far below the threshold a guess was is the point of
// the audit, and an untrained model's 1e-5 would round to 0).
func mass(x float64) float64 {
	x = min(max(x, 0), 1)
	if math.IsNaN(x) || x == 0 {
		return 0
	}
	s := math.Pow(10, 3-math.Floor(math.Log10(x)))
	return math.Min(math.Round(x*s)/s, 1)
}

// Analyzer is the engine.Analyzer of the VLM tier: each window is
// preprocessed as VidEmo's inference does, prefilled once, and the
// manifest's question plan is answered off the shared prefix. Safe for
// concurrent use (windows are serialised).
type Analyzer struct {
	mu  sync.Mutex
	r   *Runner
	rng *rand.Rand
}

// NewAnalyzer wraps r; the analyzer owns r and closes it. seed seeds
// sampling when the generation config is not greedy.
func NewAnalyzer(r *Runner, seed uint64) *Analyzer {
	return &Analyzer{r: r, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

// Runner is the analyzer's runner.
func (a *Analyzer) Runner() *Runner { return a.r }

// Analyze returns the window's tree.
func (a *Analyzer) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	t0 := time.Now()
	id := tree.MakeID(w.Camera, w.TrackID, w.Seq)
	if len(w.Samples) == 0 {
		return nil, fmt.Errorf("window %s has no samples", id)
	}
	v, err := PreprocessWindow(w, a.r.m.Preprocess)
	if err != nil {
		return nil, fmt.Errorf("window %s: %w", id, err)
	}
	a.mu.Lock()
	var rng *rand.Rand
	if !a.r.gen.Greedy() {
		rng = a.rng
	}
	res, err := a.r.Ask(ctx, v, rng)
	a.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("window %s: %w", id, err)
	}
	t := NewTree(w, res, a.r.m, tree.Source{Engine: a.r.m.Engine, Model: a.r.m.Ref(), Provider: a.r.Provider()})
	t.Source.LatencyMS = float64(time.Since(t0).Microseconds()) / 1000
	return t, nil
}

// NewTree is the tree of window w (which has samples) answered as res
// under manifest m, with provenance src: the local runner's and the remote
// engine's trees are built the same way.
func NewTree(w window.Window, res *Result, m *Manifest, src tree.Source) *tree.Tree {
	last := w.Samples[len(w.Samples)-1]
	t := &tree.Tree{
		Schema:  tree.Schema,
		ID:      tree.MakeID(w.Camera, w.TrackID, w.Seq),
		Camera:  w.Camera,
		TrackID: w.TrackID,
		Window:  tree.Window{Start: tree.Time(w.Start), End: tree.Time(w.End), Frames: len(w.Samples)},
		Face: &tree.Face{
			Box:        [4]float64{round1(last.Box.X), round1(last.Box.Y), round1(last.Box.W), round1(last.Box.H)},
			Score:      prob(float64(last.Score)),
			FramesSeen: max(w.FramesSeen, 0),
		},
		Source: src,
	}
	if w.FPS > 0 && !math.IsInf(w.FPS, 0) {
		t.Window.FPS = w.FPS
	}
	res.Fill(t, m)
	return t
}

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// Close closes the runner.
func (a *Analyzer) Close() error {
	if a.r == nil {
		return errors.New("videmo analyzer has no runner")
	}
	return a.r.Close()
}

var _ engine.Analyzer = (*Analyzer)(nil)
