package videmo

import (
	"math/rand/v2"
	"slices"

	ort "github.com/yalue/onnxruntime_go"
)

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
			r.readFirst(a, firstIDs)
			if maxNew <= 0 {
				a.Stopped = "length"
				return a, nil
			}
		}
		tokID, done := r.next(a, maxNew, rng)
		if done {
			return a, nil
		}
		ids = append(ids, tokID)
	}
}
