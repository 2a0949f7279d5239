package videmo

import (
	"context"
	"fmt"
	"time"
)

// BenchResult is one BenchVLM measurement.
type BenchResult struct {
	Provider       string  `json:"provider"`
	PrefixTokens   int     `json:"prefix_tokens"`
	Grid           [3]int  `json:"grid_thw"`
	VideoTokens    int     `json:"video_tokens"`
	VisionMS       float64 `json:"vision_ms"`  // the vision encoder alone
	PrefillMS      float64 `json:"prefill_ms"` // vision + prefix prefill, wall
	SuffixTokens   int     `json:"suffix_tokens"`
	SuffixMS       float64 `json:"suffix_ms"` // one question's suffix off the shared prefix
	DecodeTokens   int     `json:"decode_tokens"`
	DecodeTokPerS  float64 `json:"decode_tokens_per_s"`
	DecodeMSPerTok float64 `json:"decode_ms_per_token"`
	// LoopOverhead is the decode loop's wall time over the summed wall
	// time inside ORT's Run (embedding + decoder): 1.0 means no overhead.
	LoopOverhead float64 `json:"loop_overhead"`
	DecodeRuns   int     `json:"decode_runs"`
	// The plan's closed-set questions off the prefix: one decoder Run each,
	// then all in one batched Run (ChoiceBatch).
	Choices          int     `json:"choices"`
	ChoicesOneByOne  float64 `json:"choices_one_by_one_ms"`
	ChoicesBatchedMS float64 `json:"choices_batched_ms"`
}

// BenchVLM measures r on video v: the prefix prefill, one question's
// suffix (the manifest's first question), then decode steps greedy tokens for
// decodeTokens steps regardless of EOS (random weights rarely produce a
// meaningful stop), with the ORT Run time summed to give the loop overhead.
func BenchVLM(ctx context.Context, r *Runner, v *Video, decodeTokens int) (*BenchResult, error) {
	if r.opts.Recompute {
		return nil, fmt.Errorf("videmo: BenchVLM needs the KV cache (runner is in Recompute mode)")
	}
	q := r.m.Questions[0]
	prompt, err := r.Prompt(v, []string{q.Text()})
	if err != nil {
		return nil, err
	}
	res := &BenchResult{Provider: r.Provider(), PrefixTokens: len(prompt.Prefix), SuffixTokens: len(prompt.Suffixes[0]), DecodeTokens: decodeTokens,
		Grid: v.Grid(), VideoTokens: v.Tokens(r.m.Preprocess)}
	t0 := time.Now()
	f, err := r.visionFeatures(v)
	if err != nil {
		return nil, err
	}
	f.Destroy()
	res.VisionMS = ms(time.Since(t0))
	t0 = time.Now()
	p, err := r.Prefill(v, prompt)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	res.PrefillMS = ms(time.Since(t0))
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	T := p.Len() + len(prompt.Suffixes[0])
	r.ensureKV(T + decodeTokens)
	t0 = time.Now()
	if _, err := r.Continue(p, prompt.Suffixes[0], nil, 0, nil); err != nil {
		return nil, err
	}
	res.SuffixMS = ms(time.Since(t0))

	// closed-set questions: one Run each, then one batched Run
	var texts []string
	var ids [][]int
	for i, q := range r.m.Questions {
		if q.Kind == "choice" {
			texts, ids = append(texts, q.Text()), append(ids, r.OptionIDs(i))
		}
	}
	if len(texts) > 0 {
		cp, err := r.Prompt(v, texts)
		if err != nil {
			return nil, err
		}
		res.Choices = len(texts)
		t0 = time.Now()
		for i := range texts {
			if _, err := r.Continue(p, cp.Suffixes[i], ids[i], 0, nil); err != nil {
				return nil, err
			}
		}
		res.ChoicesOneByOne = ms(time.Since(t0))
		t0 = time.Now()
		if _, err := r.ChoiceBatch(p, cp.Suffixes, ids); err != nil {
			return nil, err
		}
		res.ChoicesBatchedMS = ms(time.Since(t0))
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}

	r.ResetStats()
	cur := 0
	t0 = time.Now()
	for range decodeTokens {
		tok := r.pick(nil)
		r.markSeen(tok)
		if err := r.step(tok, T, p.RopeDelta, cur); err != nil {
			return nil, err
		}
		T++
		cur ^= 1
	}
	wall := time.Since(t0)
	st := r.RunStats()
	res.DecodeRuns = st.Runs
	if decodeTokens > 0 {
		res.DecodeMSPerTok = ms(wall) / float64(decodeTokens)
		res.DecodeTokPerS = float64(decodeTokens) / wall.Seconds()
		res.LoopOverhead = wall.Seconds() / st.RunTime.Seconds()
	}
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
