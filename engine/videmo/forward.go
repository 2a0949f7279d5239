package videmo

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

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
