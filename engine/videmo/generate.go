package videmo

import (
	"cmp"
	"math/rand/v2"
	"slices"
)

// GenerateOptions are the per-call settings of Generate: what a serving
// request may change without reopening the runner.
type GenerateOptions struct {
	// Gen is this call's sampling configuration (the runner's is restored
	// afterwards).
	Gen GenConfig
	// TopLogprobs > 0 records, at every position read, the TopLogprobs
	// largest raw logits (Answer.Top), the log-sum-exp over the vocabulary
	// (Answer.TopLSE) and the raw logit of each generated token
	// (Answer.TokenLogits): the OpenAI API's logprobs, which vLLM also
	// reports from the raw logits (before penalties and temperature).
	TopLogprobs int
	// Logprobs records TokenLogits and TopLSE without a top list.
	Logprobs bool
	// OnToken, when set, is called with the answer so far each time a
	// token is chosen (streaming: the token is a.Tokens' last, its raw
	// logit and position's log-sum-exp already recorded); an error stops
	// the generation with that error.
	OnToken func(a *Answer) error
}

// Generate is Continue with per-call sampling, logprobs and a token
// callback. Not safe for concurrent use, like every Runner method.
func (r *Runner) Generate(p *Prefix, suffix []int, maxNew int, rng *rand.Rand, o GenerateOptions) (*Answer, error) {
	gen, trace := r.gen, r.opts.TraceTop
	r.gen, r.opts.TraceTop = o.Gen, o.TopLogprobs
	r.onToken, r.wantLogprobs = o.OnToken, o.Logprobs || o.TopLogprobs > 0
	defer func() {
		r.gen, r.opts.TraceTop = gen, trace
		r.onToken, r.wantLogprobs = nil, false
	}()
	a, err := r.Continue(p, suffix, nil, maxNew, rng)
	if err == nil && a.Err != nil {
		return a, a.Err
	}
	return a, err
}

// topLogitsSorted is topLogits for a large k (a serving request may ask for
// the whole vocabulary): one sort instead of k-long insertions.
func topLogitsSorted(lg []float32, k int) []TokenLogit {
	all := make([]TokenLogit, len(lg))
	for i, x := range lg {
		all[i] = TokenLogit{ID: i, Logit: x}
	}
	slices.SortFunc(all, func(a, b TokenLogit) int {
		if c := cmp.Compare(b.Logit, a.Logit); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	return all[:min(k, len(all))]
}
