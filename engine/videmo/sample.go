package videmo

import (
	"math"
	"math/rand/v2"
	"slices"
)

// resetSeen makes the repetition-penalty set the tokens of parts (the
// sequence so far).
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

// markSeen adds id to the repetition-penalty set.
func (r *Runner) markSeen(id int) {
	if id >= 0 && id < len(r.seen) && !r.seen[id] {
		r.seen[id] = true
		r.seenList = append(r.seenList, id)
	}
}

// readFirst records the first answer position in a: the raw logits at
// firstIDs and the log-sum-exp over the vocabulary.
func (r *Runner) readFirst(a *Answer, firstIDs []int) {
	a.First = make([]float32, len(firstIDs))
	a.LogSumExp = logSumExp(r.lg)
	for i, id := range firstIDs {
		a.First[i] = r.lg[id]
	}
}

// next picks the token after the current position (pick) and appends it to
// a. done: the answer is complete, with a.Stopped set: the token is EOS
// (not appended) or the maxNew-th.
func (r *Runner) next(a *Answer, maxNew int, rng *rand.Rand) (tokID int, done bool) {
	if r.wantLogprobs { // pick modifies the logits: keep the raw ones
		r.raw = append(r.raw[:0], r.lg...)
	}
	tokID = r.pick(rng)
	if r.eos[tokID] {
		a.Stopped = "eos"
		return tokID, true
	}
	a.Tokens = append(a.Tokens, tokID)
	if r.wantLogprobs {
		a.TokenLogits = append(a.TokenLogits, r.raw[tokID])
	}
	r.markSeen(tokID)
	if r.onToken != nil {
		if err := r.onToken(a); err != nil {
			a.Stopped, a.Err = "error", err
			return tokID, true
		}
	}
	if len(a.Tokens) >= maxNew {
		a.Stopped = "length"
		return tokID, true
	}
	return tokID, false
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

// trace records the current position's largest raw logits (Options.TraceTop).
func (r *Runner) trace(a *Answer) {
	if k := r.opts.TraceTop; k > 64 {
		a.Top = append(a.Top, topLogitsSorted(r.lg, k))
	} else if k > 0 {
		a.Top = append(a.Top, topLogits(r.lg, k))
	}
	if r.wantLogprobs {
		a.TopLSE = append(a.TopLSE, logSumExp(r.lg))
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
