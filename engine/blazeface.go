package engine

import (
	"fmt"

	"github.com/edgemo/edgemo/facetrack"
)

// BlazeFaceRunner runs a BlazeFace manifest (blazeface-front, blazeface-back)
// for facetrack.BlazeFace: RGB bytes in, per-anchor logits and regressors out.
type BlazeFaceRunner struct {
	*FaceModel
	w, h    int
	scores  []int // output indices holding scores, in anchor order
	regs    []int // matching regressor outputs
	k, bias float32

	logits, regressors []float32 // reused: valid until the next Infer
}

// NewBlazeFaceRunner opens m. Its outputs must come in (scores, regressors)
// pairs, the fine grid (512 anchors in 256²) first: [N,1] then [N,16]. The
// input is NHWC RGB: square, or the square network converted for another
// shape (blazeface-back-wide, 256×160).
func NewBlazeFaceRunner(rt *Runtime, m *Manifest) (*BlazeFaceRunner, error) {
	outs := m.OutputSpecs()
	if len(outs)%2 != 0 || m.Input.Shape[3] != 3 || m.Preprocessing.Color != "rgb" {
		return nil, fmt.Errorf("%s: not a BlazeFace manifest (want an NHWC RGB input and (scores [1,N,1], regressors [1,N,16]) output pairs)", m.Path)
	}
	r := &BlazeFaceRunner{h: int(m.Input.Shape[1]), w: int(m.Input.Shape[2])}
	for i := 0; i < len(outs); i += 2 {
		s, g := outs[i].Shape, outs[i+1].Shape
		if len(s) != 3 || len(g) != 3 || s[2] != 1 || g[2] != 16 || s[1] != g[1] {
			return nil, fmt.Errorf("%s: outputs %s %v / %s %v are not a (scores [1,N,1], regressors [1,N,16]) pair", m.Path, outs[i].Name, s, outs[i+1].Name, g)
		}
		r.scores = append(r.scores, i)
		r.regs = append(r.regs, i+1)
	}
	if n := len(facetrack.GenerateAnchors(r.w, r.h)); n != r.anchorCount(outs) {
		return nil, fmt.Errorf("%s: outputs cover %d anchors, a %dx%d input has %d", m.Path, r.anchorCount(outs), r.w, r.h, n)
	}
	p := m.Preprocessing
	// value = (x/255·(hi−lo) + lo + offset)·scale = x·k + bias
	r.k = float32((p.InputRange[1] - p.InputRange[0]) / 255 * p.Scale)
	r.bias = float32((p.InputRange[0] + p.Offset) * p.Scale)
	f, err := NewFaceModel(rt, m, 1)
	if err != nil {
		return nil, err
	}
	r.FaceModel = f
	return r, nil
}

// Share is another runner on r's session (FaceModel.Share): one per
// camera, so cameras detect in parallel on one copy of the model.
func (r *BlazeFaceRunner) Share() (*BlazeFaceRunner, error) {
	f, err := r.FaceModel.Share()
	if err != nil {
		return nil, err
	}
	return &BlazeFaceRunner{FaceModel: f, w: r.w, h: r.h, scores: r.scores, regs: r.regs, k: r.k, bias: r.bias}, nil
}

func (r *BlazeFaceRunner) anchorCount(outs []OutputSpec) int {
	n := 0
	for _, i := range r.scores {
		n += int(outs[i].Shape[1])
	}
	return n
}

// InputSize is the input's width and height.
func (r *BlazeFaceRunner) InputSize() (w, h int) { return r.w, r.h }

// Infer implements facetrack.BlazeFaceModel.
func (r *BlazeFaceRunner) Infer(rgb []byte) ([]float32, []float32, error) {
	if len(rgb) != r.w*r.h*3 {
		return nil, nil, fmt.Errorf("input has %d bytes, want %d", len(rgb), r.w*r.h*3)
	}
	return r.InferFill(func(dst []float32, k, bias float32) error {
		for i, v := range rgb {
			dst[i] = float32(v)*k + bias
		}
		return nil
	})
}

// InferFill implements facetrack.BlazeFaceFiller: fill writes the input
// tensor itself (value = byte·k + bias), and the outputs land in buffers the
// runner reuses, valid until its next call; nothing is allocated per frame.
func (r *BlazeFaceRunner) InferFill(fill func(dst []float32, k, bias float32) error) ([]float32, []float32, error) {
	err := r.RunOne(func(dst []float32) error { return fill(dst, r.k, r.bias) }, func(out [][]float32) error {
		r.logits, r.regressors = r.logits[:0], r.regressors[:0]
		for i := range r.scores {
			r.logits = append(r.logits, out[r.scores[i]]...)
			r.regressors = append(r.regressors, out[r.regs[i]]...)
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	return r.logits, r.regressors, nil
}

var _ facetrack.BlazeFaceFiller = (*BlazeFaceRunner)(nil)
