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
	"github.com/edgemo/edgemo/internal/tree"
	"github.com/edgemo/edgemo/window"
)

// ChoiceResult is a closed-set answer: a distribution over the option
// labels, softmax of the option letters' logits at the first answer
// position (so it is always a valid label set, whatever the model would
// have written).
type ChoiceResult struct {
	Question *Question
	Labels   []string
	Logits   []float32
	Probs    []float64
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
	Answers       []*Answer // per question, plan order

	PrefixTokens int
	Prefill      time.Duration // vision + prefix prefill
	Questions    time.Duration // all questions off the prefix
}

// Ask prefills v once and answers every question of the manifest's plan
// off the shared prefix. rng seeds sampling (nil: greedy).
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
			a, err := r.Continue(prefix, prompt.Suffixes[i], first[i], qs[i].MaxNewTokens, rng)
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
	for i := range qs {
		q, a := &qs[i], answers[i]
		res.Answers = append(res.Answers, a)
		switch q.Kind {
		case "choice":
			c := ChoiceResult{Question: q, Logits: a.First, Probs: Softmax(a.First)}
			for _, o := range q.Options {
				c.Labels = append(c.Labels, o.Label)
			}
			res.Choices = append(res.Choices, c)
		case "caption":
			res.Caption = strings.TrimSpace(r.tok.Decode(a.Tokens, true))
			res.CaptionTokens = a.Tokens
			res.CaptionStop = a.Stopped
		}
	}
	res.Questions = time.Since(t1)
	return res, nil
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
// levels (tree.md: the VLM fills them from closed-set distributions and its
// caption).
//
//   - target "expression": expression.label/confidence/scores; emotion
//     label via the manifest's emotion_category, same confidence;
//   - target "attribute": "gender" -> attributes.gender, others ->
//     attributes.other (name = attribute, value = top label);
//   - target "cue": an action unit; a cue {name, au, intensity = P(yes)}
//     when P(yes) >= 0.5 or the caption mentions it;
//   - the caption -> emotion.rationale; cue phrases found in it (the
//     manifest's cue vocabulary, case-insensitive substrings) add cues.
//     A caption-only cue whose AU was not asked has intensity 0: mentioned,
//     not measured.
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
		label, p := c.Top()
		switch q.Target {
		case "expression":
			scores := map[string]float64{}
			for j, l := range c.Labels {
				scores[l] = prob(c.Probs[j])
			}
			expr = &tree.Expression{Label: label, Confidence: prob(p), Scores: scores}
			cat := m.Category[label]
			if cat == "" {
				cat = label
			}
			emo = &tree.Emotion{Label: cat, Confidence: prob(p)}
		case "attribute":
			if attrs == nil {
				attrs = &tree.Attributes{}
			}
			if q.Attribute == "gender" {
				attrs.Gender = &tree.LabelValue{Value: label, Confidence: prob(p)}
			} else {
				attrs.Other = append(attrs.Other, tree.NamedValue{Name: q.Attribute, Value: label, Confidence: prob(p)})
			}
		case "cue":
			py := c.Prob(q.Yes)
			if py >= 0.5 || mentioned[q.Cue] {
				addCue(q.Cue, q.AU, prob(py))
			}
		}
	}
	for _, c := range m.Cues {
		if mentioned[c.Name] {
			addCue(c.Name, c.AU, 0)
		}
	}
	if res.Caption != "" {
		if emo == nil {
			emo = &tree.Emotion{}
		}
		emo.Rationale = res.Caption
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
}

// prob is a probability as trees carry it: in [0, 1], 4 decimals.
func prob(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Round(min(max(x, 0), 1)*1e4) / 1e4
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
	last := w.Samples[len(w.Samples)-1]
	t := &tree.Tree{
		Schema:  tree.Schema,
		ID:      id,
		Camera:  w.Camera,
		TrackID: w.TrackID,
		Window:  tree.Window{Start: tree.Time(w.Start), End: tree.Time(w.End), Frames: len(w.Samples)},
		Face: &tree.Face{
			Box:        [4]float64{round1(last.Box.X), round1(last.Box.Y), round1(last.Box.W), round1(last.Box.H)},
			Score:      prob(float64(last.Score)),
			FramesSeen: max(w.FramesSeen, 0),
		},
		Source: tree.Source{Engine: a.r.m.Engine, Model: a.r.m.Ref(), Provider: a.r.Provider()},
	}
	if w.FPS > 0 && !math.IsInf(w.FPS, 0) {
		t.Window.FPS = w.FPS
	}
	res.Fill(t, a.r.m)
	t.Source.LatencyMS = float64(time.Since(t0).Microseconds()) / 1000
	return t, nil
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
