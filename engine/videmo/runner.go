package videmo

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tokenizer"
)

// Options configure a Runner. Zero values take the defaults. Execution
// providers, threads and TensorRT settings are the engine.Runtime's, so
// VidEmo's graphs run exactly as every other model does.
type Options struct {
	// Logger; nil: slog.Default().
	Logger *slog.Logger
	// Generation overrides the manifest's generation config when non-nil.
	Generation *GenConfig
	// Recompute disables the KV cache: every step (and every question) is
	// a full forward of the whole sequence, the vision encoder included.
	// Slow; it exists to check the cached path.
	Recompute bool
	// QuestionBatch is how many closed-set questions share one decoder Run
	// (ChoiceBatch); 0: DefaultQuestionBatch, 1: one Run per question.
	QuestionBatch int
	// CaptionTokens, when > 0, replaces the caption question's
	// max_new_tokens (the manifest's budget; VidEmo's own evaluation allows
	// up to 2048).
	CaptionTokens int
	// TraceTop, when > 0, records the TraceTop largest raw logits of every
	// position Continue reads (Answer.Top): conformance checks compare them
	// with transformers' per-step scores.
	TraceTop int
}

// DefaultQuestionBatch is one question per Run. On a CPU batching is slower
// (measured by `edgemo bench vlm`: the rows are padded to the longest
// question and the arithmetic, not the weight reads, is the limit); on a GPU
// it should pay, so set QuestionBatch there after measuring with the same
// bench, which times both.
const DefaultQuestionBatch = 1

func (r *Runner) questionBatch() int {
	if r.opts.QuestionBatch > 0 {
		return r.opts.QuestionBatch
	}
	return DefaultQuestionBatch
}

// Runner runs a VidEmo model set: vision encoder, embedding (with the video
// feature scatter) and the text decoder with a KV cache. A window's video
// prefix is prefilled once (Prefill); each question continues from that
// prefix's KV cache, which is shared read-only (Continue). Not safe for
// concurrent use.
type Runner struct {
	m    *Manifest
	rt   *engine.Runtime
	tok  *tokenizer.Tokenizer
	opts Options
	gen  GenConfig
	log  *slog.Logger

	vis, emb, dec *session
	posBS3        bool // position_ids declared [B, S, 3] rather than [3, B, S]
	logitsLast    bool // logits declared [B, 1, V]: only the last position
	layers        int
	kvHeads, hd   int
	hidden, vocab int
	tmpl          Template
	eos           map[int]bool
	optIDs        [][]int // per manifest question: its option letters' token ids

	// reusable tensors of the decode step
	stepIDs    *ort.Tensor[int64]   // [1, 1]
	stepPos    *ort.Tensor[int64]   // [3, 1, 1] or [1, 1, 3]
	stepEmb    *ort.Tensor[float32] // [1, 1, H]
	stepLogits *ort.Tensor[float32] // [1, 1, V]
	noFeat     *ort.Tensor[float32] // [0, H]
	emptyKV    *ort.Tensor[float32] // [1, KV, 0, D]
	ones       []int64              // attention mask backing, grows to the longest sequence
	kvBuf      [2][][]float32       // ping-pong KV backing, [2][2·layers], kvCap tokens each
	kvCap      int
	decIn      []ort.Value
	decOut     []ort.Value
	embIn      []ort.Value
	embOut     []ort.Value
	// carry is the present KV view of the last step: the next step reads
	// the same buffer at the same length as its past, so the view (2·layers
	// ORT values) is made once per token instead of twice.
	carry    kvView
	masks    []*ort.Tensor[int64] // attention masks by length, over ones
	logits   []float32            // scratch: logits of a prefill's last position
	lg       []float32            // logits of the current position: logits or stepLogits' data
	seen     []bool               // repetition-penalty set, by token id
	seenList []int
	cand     []int32   // sampling candidates, reused
	probs    []float64 // their probabilities, reused

	closed bool
}

// NewRunner opens the three graphs of the manifest at manifestPath in the
// environment rt loaded, validating their inputs and outputs against the
// manifest (errors name the file).
func NewRunner(rt *engine.Runtime, manifestPath string, tok *tokenizer.Tokenizer, opts Options) (*Runner, error) {
	if rt == nil {
		return nil, errors.New("videmo: NewRunner needs an engine.Runtime (it loads ONNX Runtime)")
	}
	if tok == nil {
		return nil, errors.New("videmo: NewRunner needs the Qwen2 tokenizer")
	}
	m, err := LoadManifest(manifestPath)
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	d := m.Dims
	r := &Runner{
		m: m, rt: rt, tok: tok, opts: opts, gen: m.Generation, log: log,
		layers: d.Layers, kvHeads: d.KVHeads, hd: d.HeadDim, hidden: d.Hidden, vocab: d.Vocab,
		tmpl: Template{System: m.System, Tokens: m.Tokens.TokenIDs()},
		eos:  map[int]bool{},
	}
	if opts.Generation != nil {
		r.gen = *opts.Generation
	}
	for _, id := range m.EOS {
		r.eos[id] = true
	}
	if tok.VocabSize() > d.Vocab {
		return nil, fmt.Errorf("%s: tokenizer has %d tokens, more than the model's vocab %d", m.Path, tok.VocabSize(), d.Vocab)
	}
	ok := false
	defer func() {
		if !ok {
			r.Close()
		}
	}()
	if err := r.open(); err != nil {
		return nil, err
	}
	if err := r.alloc(); err != nil {
		return nil, err
	}
	r.optIDs = make([][]int, len(m.Questions))
	for i, q := range m.Questions {
		for _, o := range q.Options {
			id, err := r.letterID(o.Letter)
			if err != nil {
				return nil, fmt.Errorf("%s: question %s: %w", m.Path, q.ID, err)
			}
			r.optIDs[i] = append(r.optIDs[i], id)
		}
	}
	ok = true
	return r, nil
}

// open reads and checks each graph's IO, then opens the sessions.
func (r *Runner) open() error {
	m, io := r.m, r.m.IO
	H, V, kv, hd := int64(r.hidden), int64(r.vocab), int64(r.kvHeads), int64(r.hd)
	F, I := ort.TensorElementDataType(ort.TensorElementDataTypeFloat), ort.TensorElementDataType(ort.TensorElementDataTypeInt64)

	// vision
	p := m.FilePath("vision")
	ins, outs, err := graphInfo(p)
	if err != nil {
		return err
	}
	// Each declared input by name: pixel_values plus either image_grid_thw
	// or the grid-dependent inputs computed in Go (vision.go).
	seen := map[string]bool{}
	for _, name := range io.Vision.Inputs {
		dt, shape, known := visionInputSpec(name, m.Preprocess.PatchDim())
		if !known {
			return fmt.Errorf("%s: vision input %q is not one the runner can feed (it knows pixel_values, image_grid_thw, vision_pos_ids, window_index/mask/inverse, frame_index/mask/inverse)", p, name)
		}
		if seen[name] {
			return fmt.Errorf("%s: vision input %q is listed twice in the manifest", p, name)
		}
		seen[name] = true
		if _, err := checkTensor(p, "input", ins, name, dt, shape); err != nil {
			return err
		}
	}
	if !seen[inPixelValues] {
		return fmt.Errorf("%s: the manifest's vision inputs %v have no %q", p, io.Vision.Inputs, inPixelValues)
	}
	if needsVisionInputs(io.Vision.Inputs) {
		if err := m.Vision.WithDefaults(m.Preprocess).check(m.Preprocess); err != nil {
			return fmt.Errorf("%s: %w", m.Path, err)
		}
	}
	if _, err := checkTensor(p, "output", outs, io.Vision.Outputs[0], F, []int64{-1, H}); err != nil {
		return err
	}
	if r.vis, err = openSession(r.rt, p, ins, outs, io.Vision.Inputs, io.Vision.Outputs); err != nil {
		return err
	}

	// embedding
	p = m.FilePath("embedding")
	if ins, outs, err = graphInfo(p); err != nil {
		return err
	}
	if _, err := checkTensor(p, "input", ins, io.Embedding.Inputs[0], I, []int64{-1, -1}); err != nil {
		return err
	}
	if _, err := checkTensor(p, "input", ins, io.Embedding.Inputs[1], F, []int64{-1, H}); err != nil {
		return err
	}
	if _, err := checkTensor(p, "output", outs, io.Embedding.Outputs[0], F, []int64{-1, -1, H}); err != nil {
		return err
	}
	if r.emb, err = openSession(r.rt, p, ins, outs, io.Embedding.Inputs, io.Embedding.Outputs); err != nil {
		return err
	}

	// decoder
	p = m.FilePath("decoder")
	if ins, outs, err = graphInfo(p); err != nil {
		return err
	}
	dio := io.Decoder
	if _, err := checkTensor(p, "input", ins, dio.InputsEmbeds, F, []int64{-1, -1, H}); err != nil {
		return err
	}
	if _, err := checkTensor(p, "input", ins, dio.AttentionMask, I, []int64{-1, -1}); err != nil {
		return err
	}
	pos, err := checkTensor(p, "input", ins, dio.PositionIDs, I, nil)
	if err != nil {
		return err
	}
	// position_ids layout: read from the model, never assumed
	switch dd := pos.Dimensions; {
	case len(dd) == 3 && dd[0] == 3:
	case len(dd) == 3 && dd[2] == 3:
		r.posBS3 = true
	default:
		return fmt.Errorf("%s: input %q has shape %v; want [3, B, S] or [B, S, 3]", p, dio.PositionIDs, dd)
	}
	lg, err := checkTensor(p, "output", outs, dio.Logits, F, []int64{-1, -1, V})
	if err != nil {
		return err
	}
	r.logitsLast = lg.Dimensions[1] == 1
	inNames := []string{dio.InputsEmbeds, dio.AttentionMask, dio.PositionIDs}
	outNames := []string{dio.Logits}
	past := 0
	for _, x := range ins {
		var l int
		if _, e := fmt.Sscanf(x.Name, dio.PastKey, &l); e == nil && fmt.Sprintf(dio.PastKey, l) == x.Name {
			past++
		} else if _, e := fmt.Sscanf(x.Name, dio.PastValue, &l); e == nil && fmt.Sprintf(dio.PastValue, l) == x.Name {
			past++
		}
	}
	if past != 2*r.layers {
		return fmt.Errorf("%s: %d past key/value inputs, the manifest's %d layers need %d", p, past, r.layers, 2*r.layers)
	}
	for l := range r.layers {
		for _, f := range []string{dio.PastKey, dio.PastValue} {
			n := fmt.Sprintf(f, l)
			if _, err := checkTensor(p, "input", ins, n, F, []int64{-1, kv, -1, hd}); err != nil {
				return err
			}
			inNames = append(inNames, n)
		}
		for _, f := range []string{dio.PresentKey, dio.PresentValue} {
			n := fmt.Sprintf(f, l)
			if _, err := checkTensor(p, "output", outs, n, F, []int64{-1, kv, -1, hd}); err != nil {
				return err
			}
			outNames = append(outNames, n)
		}
	}
	r.dec, err = openSession(r.rt, p, ins, outs, inNames, outNames)
	return err
}

func (r *Runner) alloc() error {
	var err error
	mk := func(shape ...int64) *ort.Tensor[float32] {
		if err != nil {
			return nil
		}
		var t *ort.Tensor[float32]
		t, err = ort.NewEmptyTensor[float32](ort.NewShape(shape...))
		return t
	}
	r.stepEmb = mk(1, 1, int64(r.hidden))
	r.stepLogits = mk(1, 1, int64(r.vocab))
	r.noFeat = mk(0, int64(r.hidden))
	r.emptyKV = mk(1, int64(r.kvHeads), 0, int64(r.hd))
	if err != nil {
		return err
	}
	if r.stepIDs, err = ort.NewEmptyTensor[int64](ort.NewShape(1, 1)); err != nil {
		return err
	}
	ps := ort.NewShape(3, 1, 1)
	if r.posBS3 {
		ps = ort.NewShape(1, 1, 3)
	}
	if r.stepPos, err = ort.NewEmptyTensor[int64](ps); err != nil {
		return err
	}
	n := 3 + 2*r.layers
	r.decIn = make([]ort.Value, n)
	r.decOut = make([]ort.Value, 1+2*r.layers)
	r.embIn = make([]ort.Value, 2)
	r.embOut = make([]ort.Value, 1)
	r.logits = make([]float32, r.vocab)
	r.seen = make([]bool, r.vocab)
	r.cand = make([]int32, 0, r.vocab)
	r.probs = make([]float64, 0, r.vocab)
	return nil
}

// Manifest is the loaded manifest.
func (r *Runner) Manifest() *Manifest { return r.m }

// Provider is the execution provider of the decoder session.
func (r *Runner) Provider() string { return r.dec.provider }

// Tokenizer is the runner's tokenizer.
func (r *Runner) Tokenizer() *tokenizer.Tokenizer { return r.tok }

// Generation is the sampling configuration in use.
func (r *Runner) Generation() GenConfig { return r.gen }

// Close destroys the sessions and tensors.
func (r *Runner) Close() error {
	if r == nil || r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for _, s := range []*session{r.vis, r.emb, r.dec} {
		errs = append(errs, s.close())
	}
	r.carry.destroy()
	r.dropMasks()
	for _, t := range []interface{ Destroy() error }{r.stepEmb, r.stepLogits, r.noFeat, r.emptyKV, r.stepIDs, r.stepPos} {
		if t != nil && !isNilTensor(t) {
			errs = append(errs, t.Destroy())
		}
	}
	return errors.Join(errs...)
}

func isNilTensor(t interface{ Destroy() error }) bool {
	switch x := t.(type) {
	case *ort.Tensor[float32]:
		return x == nil
	case *ort.Tensor[int64]:
		return x == nil
	}
	return false
}

// OptionIDs are the token ids of manifest question i's option letters, in
// option order (tokenised once, when the runner opens).
func (r *Runner) OptionIDs(i int) []int { return r.optIDs[i] }

// letterID is the token an option letter is read from: the assistant's
// answer starts right after "<|im_start|>assistant\n", so the letter is the
// first token of the answer with no leading space ("A", not " A"); it must
// be a single token.
func (r *Runner) letterID(letter string) (int, error) {
	ids := r.tok.Encode(letter)
	if len(ids) != 1 {
		return 0, fmt.Errorf("option letter %q is %d tokens, want 1", letter, len(ids))
	}
	return ids[0], nil
}

// Stats is the time spent in ORT's Run per graph, for the loop overhead.
type Stats struct {
	Runs    int
	RunTime time.Duration
}

// RunStats sums the Run calls and their wall time over the three sessions
// since the last ResetStats.
func (r *Runner) RunStats() Stats {
	var s Stats
	for _, x := range []*session{r.vis, r.emb, r.dec} {
		s.Runs += x.runs
		s.RunTime += x.runTime
	}
	return s
}

// ResetStats zeroes the Run counters.
func (r *Runner) ResetStats() {
	for _, x := range []*session{r.vis, r.emb, r.dec} {
		x.runs, x.runTime = 0, 0
	}
}

// Prefix is a prefilled video prefix: its token ids, M-RoPE delta and the
// KV cache (read-only; every question branches from it).
type Prefix struct {
	IDs       []int
	RopeDelta int64
	Video     *Video
	kv        []*ort.Tensor[float32] // 2·layers, [1, KV, len(IDs), D]
	r         *Runner
}

// Len is the number of prefilled tokens.
func (p *Prefix) Len() int { return len(p.IDs) }

// Close frees the KV cache.
func (p *Prefix) Close() error {
	var errs []error
	for _, t := range p.kv {
		if t != nil {
			errs = append(errs, t.Destroy())
		}
	}
	p.kv = nil
	return errors.Join(errs...)
}

// Prompt builds the prompt for video v and the questions' texts.
func (r *Runner) Prompt(v *Video, questions []string) (*Prompt, error) {
	return r.tmpl.Build(r.tok.Encode, v.Tokens(r.m.Preprocess), questions...)
}

// visionFeatures runs the vision encoder; the caller destroys the result.
// Its inputs are built by name in the graph's Run order (visionTensors):
// pixel_values, and image_grid_thw or the grid-dependent inputs.
func (r *Runner) visionFeatures(v *Video) (*ort.Tensor[float32], error) {
	if v.Dim != r.m.Preprocess.PatchDim() {
		return nil, fmt.Errorf("videmo: video patches are %d long, the model takes %d", v.Dim, r.m.Preprocess.PatchDim())
	}
	in, free, err := visionTensors(r.vis.path, r.visionInputNames(), v, r.m.Vision.WithDefaults(r.m.Preprocess))
	if err != nil {
		return nil, err
	}
	defer free()
	out := []ort.Value{nil}
	if err := r.vis.run(in, out); err != nil {
		return nil, err
	}
	f := out[0].(*ort.Tensor[float32])
	if want := int64(v.Tokens(r.m.Preprocess)); f.GetShape()[0] != want {
		f.Destroy()
		return nil, fmt.Errorf("%s: returned %d feature rows for %d video tokens", r.vis.path, f.GetShape()[0], want)
	}
	return f, nil
}

// visionInputNames are the vision session's inputs in Run order.
func (r *Runner) visionInputNames() []string {
	names := make([]string, len(r.vis.ins))
	for i, x := range r.vis.ins {
		names[i] = x.Name
	}
	return names
}

// embed runs the embedding graph on ids (features: the video's, or noFeat);
// the caller destroys the result.
func (r *Runner) embed(ids []int, feats *ort.Tensor[float32]) (*ort.Tensor[float32], error) {
	buf := make([]int64, len(ids))
	for i, id := range ids {
		buf[i] = int64(id)
	}
	t, err := ort.NewTensor(ort.NewShape(1, int64(len(ids))), buf)
	if err != nil {
		return nil, err
	}
	defer t.Destroy()
	out := []ort.Value{nil}
	if err := r.emb.run([]ort.Value{t, feats}, out); err != nil {
		return nil, err
	}
	return out[0].(*ort.Tensor[float32]), nil
}

func (r *Runner) posTensor(p Positions) (*ort.Tensor[int64], error) {
	n := int64(p.Len())
	if r.posBS3 {
		return ort.NewTensor(ort.NewShape(1, n, 3), p.PackBS3())
	}
	return ort.NewTensor(ort.NewShape(3, 1, n), p.Pack3BS())
}

// maskTensor is the all-ones attention mask [1, n]. Masks are kept by
// length (the runner owns them; callers must not destroy them): decoding
// asks for every length once per question, and questions repeat them.
func (r *Runner) maskTensor(n int) (*ort.Tensor[int64], error) {
	if len(r.ones) < n {
		r.dropMasks() // they point into the old backing
		r.ones = make([]int64, max(n, 2*len(r.ones)))
		for i := range r.ones {
			r.ones[i] = 1
		}
	}
	if n < len(r.masks) && r.masks[n] != nil {
		return r.masks[n], nil
	}
	t, err := ort.NewTensor(ort.NewShape(1, int64(n)), r.ones[:n])
	if err != nil {
		return nil, err
	}
	if n >= len(r.masks) {
		r.masks = append(r.masks, make([]*ort.Tensor[int64], n+1-len(r.masks))...)
	}
	r.masks[n] = t
	return t, nil
}

func (r *Runner) dropMasks() {
	for _, t := range r.masks {
		if t != nil {
			t.Destroy()
		}
	}
	r.masks = r.masks[:0]
}

// Prefill runs the vision encoder and the decoder over the prompt's prefix
// (system turn, user turn up to <|vision_end|>) and keeps its KV cache.
func (r *Runner) Prefill(v *Video, prompt *Prompt) (*Prefix, error) {
	pos, delta, err := RopeIndex(prompt.Prefix, r.tmpl.Tokens, [][3]int{v.Grid()}, []float64{v.SecondPerGridT}, r.m.Preprocess)
	if err != nil {
		return nil, err
	}
	if r.opts.Recompute { // no cache: every question recomputes everything
		return &Prefix{IDs: slices.Clone(prompt.Prefix), RopeDelta: delta, Video: v, r: r}, nil
	}
	feats, err := r.visionFeatures(v)
	if err != nil {
		return nil, err
	}
	defer feats.Destroy()
	outs, err := r.forward(prompt.Prefix, feats, pos, nil)
	if err != nil {
		return nil, err
	}
	outs[0].Destroy() // the prefix's logits are not needed: questions follow
	p := &Prefix{IDs: slices.Clone(prompt.Prefix), RopeDelta: delta, Video: v, r: r}
	for _, o := range outs[1:] {
		p.kv = append(p.kv, o.(*ort.Tensor[float32]))
	}
	return p, nil
}

// forward runs embedding + decoder over ids at positions pos with past KV
// (nil: none); every output is allocated by ORT and owned by the caller.
func (r *Runner) forward(ids []int, feats *ort.Tensor[float32], pos Positions, past []*ort.Tensor[float32]) ([]ort.Value, error) {
	emb, err := r.embed(ids, feats)
	if err != nil {
		return nil, err
	}
	defer emb.Destroy()
	pastLen := 0
	if past != nil {
		pastLen = int(past[0].GetShape()[2])
	}
	mask, err := r.maskTensor(pastLen + len(ids))
	if err != nil {
		return nil, err
	}
	pt, err := r.posTensor(pos)
	if err != nil {
		return nil, err
	}
	defer pt.Destroy()
	in := []ort.Value{emb, mask, pt}
	for i := range 2 * r.layers {
		if past != nil {
			in = append(in, past[i])
		} else {
			in = append(in, r.emptyKV)
		}
	}
	out := make([]ort.Value, 1+2*r.layers)
	if err := r.dec.run(in, out); err != nil {
		return nil, err
	}
	return out, nil
}

// lastLogits copies the logits of the last position of a [1, S, V] (or
// [1, 1, V]) tensor into r.logits.
func (r *Runner) lastLogits(t *ort.Tensor[float32]) {
	d := t.GetData()
	copy(r.logits, d[len(d)-r.vocab:])
	r.lg = r.logits
}

// TokenLogit is one token's raw logit.
type TokenLogit struct {
	ID    int
	Logit float32
}

// Answer is what one question produced off a prefix.
type Answer struct {
	// First are the raw logits of the first answer position at the
	// requested ids (FirstIDs order).
	First []float32
	// LogSumExp is log Σ exp(logit) over the whole vocabulary at the first
	// answer position, so exp(First[i] − LogSumExp) is the probability the
	// model gives token i there (LetterMass).
	LogSumExp float64
	// Top is, with Options.TraceTop, each read position's largest raw
	// logits: step 0 is the first answer position, step i the position
	// after generated token i−1.
	Top    [][]TokenLogit
	Tokens []int // generated tokens, EOS excluded
	// Stopped: "eos" or "length".
	Stopped string
}

// Continue answers one question off prefix p: suffix is the question's
// tokens (Prompt.Suffixes[i]); firstIDs are the token ids whose logits at
// the first answer position are returned (option letters); maxNew is the
// generation budget (0: only read the first position). rng seeds sampling
// (nil with greedy decoding).
func (r *Runner) Continue(p *Prefix, suffix []int, firstIDs []int, maxNew int, rng *rand.Rand) (*Answer, error) {
	if r.opts.Recompute {
		return r.continueRecompute(p, suffix, firstIDs, maxNew, rng)
	}
	if p.kv == nil {
		return nil, errors.New("videmo: prefix is closed")
	}
	P, s := p.Len(), len(suffix)
	r.ensureKV(P + s + maxNew)
	r.resetSeen(p.IDs, suffix)

	// suffix prefill off the shared prefix; present goes to kvBuf[0]
	emb, err := r.embed(suffix, r.noFeat)
	if err != nil {
		return nil, err
	}
	defer emb.Destroy()
	mask, err := r.maskTensor(P + s)
	if err != nil {
		return nil, err
	}
	pt, err := r.posTensor(TextPositions(P, s, p.RopeDelta))
	if err != nil {
		return nil, err
	}
	defer pt.Destroy()
	in := []ort.Value{emb, mask, pt}
	for _, t := range p.kv {
		in = append(in, t)
	}
	out := make([]ort.Value, 1+2*r.layers)
	present, err := r.view(0, P+s)
	if err != nil {
		return nil, err
	}
	present.bind(out[1:])
	if err = r.dec.run(in, out); err != nil {
		present.destroy()
		return nil, err
	}
	r.keep(present) // the first step's past
	lg := out[0].(*ort.Tensor[float32])
	r.lastLogits(lg)
	lg.Destroy()

	a := &Answer{First: make([]float32, len(firstIDs)), LogSumExp: logSumExp(r.lg)}
	for i, id := range firstIDs {
		a.First[i] = r.lg[id]
	}
	r.trace(a)
	if maxNew <= 0 {
		a.Stopped = "length"
		return a, nil
	}
	T, cur := P+s, 0
	for {
		tokID := r.pick(rng)
		if r.eos[tokID] {
			a.Stopped = "eos"
			return a, nil
		}
		a.Tokens = append(a.Tokens, tokID)
		r.markSeen(tokID)
		if len(a.Tokens) >= maxNew {
			a.Stopped = "length"
			return a, nil
		}
		if err := r.step(tokID, T, p.RopeDelta, cur); err != nil {
			return nil, err
		}
		r.trace(a)
		T++
		cur ^= 1
	}
}

// step feeds one token at cache length T: past is kvBuf[cur] viewed at T,
// present kvBuf[cur^1] viewed at T+1; logits land in r.logits.
func (r *Runner) step(tokID, T int, delta int64, cur int) error {
	r.stepIDs.GetData()[0] = int64(tokID)
	r.embIn[0], r.embIn[1] = r.stepIDs, r.noFeat
	r.embOut[0] = r.stepEmb
	if err := r.emb.run(r.embIn, r.embOut); err != nil {
		return err
	}
	pd := r.stepPos.GetData()
	pp := DecodePositions(T, delta)
	pd[0], pd[1], pd[2] = pp[0], pp[1], pp[2]
	mask, err := r.maskTensor(T + 1)
	if err != nil {
		return err
	}
	past, err := r.view(cur, T)
	if err != nil {
		return err
	}
	present, err := r.view(cur^1, T+1)
	if err != nil {
		past.destroy()
		return err
	}
	r.decIn[0], r.decIn[1], r.decIn[2] = r.stepEmb, mask, r.stepPos
	past.bind(r.decIn[3:])
	r.decOut[0] = r.stepLogits
	present.bind(r.decOut[1:])
	err = r.dec.run(r.decIn, r.decOut)
	past.destroy()
	if err != nil {
		present.destroy()
		return err
	}
	r.keep(present)
	r.lg = r.stepLogits.GetData() // read in place, no copy
	return nil
}

// ensureKV makes the ping-pong KV buffers hold n tokens.
func (r *Runner) ensureKV(n int) {
	if n <= r.kvCap {
		return
	}
	r.carry.destroy() // views point into the old buffers
	per := r.kvHeads * n * r.hd
	for b := range 2 {
		r.kvBuf[b] = make([][]float32, 2*r.layers)
		for i := range r.kvBuf[b] {
			r.kvBuf[b][i] = make([]float32, per)
		}
	}
	r.kvCap = n
}

// kvView is one ping-pong buffer seen as a cache of length T: the
// 2·layers tensors a decoder step reads as past or writes as present.
type kvView struct {
	buf, T int
	ts     []*ort.Tensor[float32]
}

func (v *kvView) bind(dst []ort.Value) {
	for i, t := range v.ts {
		dst[i] = t
	}
}

func (v *kvView) destroy() {
	for _, t := range v.ts {
		t.Destroy()
	}
	v.ts = nil
}

// view returns buffer buf viewed at length T, taking the carried view of
// the last step when it is that one.
func (r *Runner) view(buf, T int) (kvView, error) {
	if c := r.carry; c.ts != nil && c.buf == buf && c.T == T {
		r.carry = kvView{}
		return c, nil
	}
	v := kvView{buf: buf, T: T, ts: make([]*ort.Tensor[float32], 0, 2*r.layers)}
	shape := ort.NewShape(1, int64(r.kvHeads), int64(T), int64(r.hd))
	for i := range 2 * r.layers {
		t, err := ort.NewTensor(shape, r.kvBuf[buf][i])
		if err != nil {
			v.destroy()
			return kvView{}, err
		}
		v.ts = append(v.ts, t)
	}
	return v, nil
}

// keep makes v the carried view, dropping the one before.
func (r *Runner) keep(v kvView) {
	r.carry.destroy()
	r.carry = v
}

func (r *Runner) resetSeen(parts ...[]int) {
	for _, id := range r.seenList {
		r.seen[id] = false
	}
	r.seenList = r.seenList[:0]
	for _, ids := range parts {
		for _, id := range ids {
			r.markSeen(id)
		}
	}
}

func (r *Runner) markSeen(id int) {
	if id >= 0 && id < len(r.seen) && !r.seen[id] {
		r.seen[id] = true
		r.seenList = append(r.seenList, id)
	}
}

// pick chooses the next token from r.logits (modified in place): the
// repetition penalty over every token of the sequence so far (prompt
// included, as transformers' RepetitionPenaltyLogitsProcessor), then arg
// max when greedy, else temperature, top-k, top-p sampling with rng.
func (r *Runner) pick(rng *rand.Rand) int {
	lg := r.lg
	if pen := float32(r.gen.RepetitionPenalty); pen > 0 && pen != 1 {
		for _, id := range r.seenList {
			if lg[id] > 0 {
				lg[id] /= pen
			} else {
				lg[id] *= pen
			}
		}
	}
	if r.gen.Greedy() || rng == nil {
		return argmax(lg)
	}
	return r.sample(lg, rng)
}

// sampleCutoff bounds the logits that can be sampled: a token more than
// this many temperature-scaled nats below the best has probability below
// e^-30 ≈ 1e-13 of the best's, which float64 sampling cannot tell from zero.
// Dropping them first spares sorting the whole vocabulary every step.
const sampleCutoff = 30

// sample draws from lg at the generation config's temperature, top-k and
// top-p (transformers' TopK then TopP warpers), using rng. Buffers are the
// runner's, reused every step.
func (r *Runner) sample(lg []float32, rng *rand.Rand) int {
	inv := float32(1 / r.gen.Temperature)
	best := lg[argmax(lg)]
	floor := best - float32(sampleCutoff*r.gen.Temperature)
	c := r.cand[:0]
	for i, x := range lg {
		if x >= floor {
			c = append(c, int32(i))
		}
	}
	slices.SortFunc(c, func(a, b int32) int {
		switch {
		case lg[a] > lg[b]:
			return -1
		case lg[a] < lg[b]:
			return 1
		}
		return int(a - b)
	})
	r.cand = c
	if k := r.gen.TopK; k > 0 && k < len(c) {
		c = c[:k]
	}
	// softmax over the candidates at temperature, then the top-p nucleus
	// (at least one token), as transformers' TopPLogitsWarper
	top := float64(lg[c[0]] * inv)
	probs := r.probs[:0]
	var sum float64
	for _, id := range c {
		p := math.Exp(float64(lg[id]*inv) - top)
		probs = append(probs, p)
		sum += p
	}
	r.probs = probs
	n := len(c)
	if p := r.gen.TopP; p > 0 && p < 1 {
		var acc float64
		for i := range c {
			acc += probs[i] / sum
			if acc >= p {
				n = i + 1
				break
			}
		}
	}
	var tot float64
	for i := range n {
		tot += probs[i]
	}
	u := rng.Float64() * tot
	for i := range n {
		u -= probs[i]
		if u <= 0 {
			return int(c[i])
		}
	}
	return int(c[n-1])
}

// continueRecompute is Continue without any cache: for the question's
// first position and every generated token, vision + embedding + decoder
// over the whole sequence from scratch, positions from RopeIndex over the
// whole sequence.
func (r *Runner) continueRecompute(p *Prefix, suffix []int, firstIDs []int, maxNew int, rng *rand.Rand) (*Answer, error) {
	v := p.Video
	ids := append(slices.Clone(p.IDs), suffix...)
	r.resetSeen(ids)
	a := &Answer{}
	for {
		feats, err := r.visionFeatures(v)
		if err != nil {
			return nil, err
		}
		pos, _, err := RopeIndex(ids, r.tmpl.Tokens, [][3]int{v.Grid()}, []float64{v.SecondPerGridT}, r.m.Preprocess)
		if err != nil {
			feats.Destroy()
			return nil, err
		}
		outs, err := r.forward(ids, feats, pos, nil)
		feats.Destroy()
		if err != nil {
			return nil, err
		}
		r.lastLogits(outs[0].(*ort.Tensor[float32]))
		for _, o := range outs {
			o.Destroy()
		}
		r.trace(a)
		if a.First == nil {
			a.First = make([]float32, len(firstIDs))
			a.LogSumExp = logSumExp(r.lg)
			for i, id := range firstIDs {
				a.First[i] = r.lg[id]
			}
			if maxNew <= 0 {
				a.Stopped = "length"
				return a, nil
			}
		}
		tokID := r.pick(rng)
		if r.eos[tokID] {
			a.Stopped = "eos"
			return a, nil
		}
		a.Tokens = append(a.Tokens, tokID)
		r.markSeen(tokID)
		if len(a.Tokens) >= maxNew {
			a.Stopped = "length"
			return a, nil
		}
		ids = append(ids, tokID)
	}
}

// trace records the current position's largest raw logits (Options.TraceTop).
func (r *Runner) trace(a *Answer) {
	if r.opts.TraceTop > 0 {
		a.Top = append(a.Top, topLogits(r.lg, r.opts.TraceTop))
	}
}

// topLogits returns the k largest logits, largest first (ties: lower id).
func topLogits(lg []float32, k int) []TokenLogit {
	k = min(k, len(lg))
	top := make([]TokenLogit, 0, k+1)
	for i, x := range lg {
		if len(top) == k && x <= top[k-1].Logit {
			continue
		}
		j := len(top)
		for j > 0 && top[j-1].Logit < x {
			j--
		}
		top = slices.Insert(top, j, TokenLogit{ID: i, Logit: x})
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// logSumExp is log Σ exp(x) in float64, shifted by the maximum.
func logSumExp(x []float32) float64 {
	m := float64(x[argmax(x)])
	var s float64
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}
