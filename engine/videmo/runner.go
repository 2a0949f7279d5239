package videmo

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"

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

	// Generate's per-call state
	onToken      func(*Answer) error
	wantLogprobs bool
	raw          []float32 // the raw logits of the position being picked

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
	// Stopped: "eos", "length", or "error" (Err: the OnToken callback's).
	Stopped string
	Err     error
	// TopLSE and TokenLogits (Generate with logprobs): per read position
	// the log-sum-exp of the raw logits, per generated token its raw
	// logit, so its logprob is TokenLogits[i] − TopLSE[i].
	TopLSE      []float64
	TokenLogits []float32
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

	a := &Answer{}
	r.readFirst(a, firstIDs)
	r.trace(a)
	if maxNew <= 0 {
		a.Stopped = "length"
		return a, nil
	}
	T, cur := P+s, 0
	for {
		tokID, done := r.next(a, maxNew, rng)
		if done {
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
