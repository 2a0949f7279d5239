package engine

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/facetrack"
)

// EmotionHead is the fast expression classifier: crops in, per-crop class
// probabilities over the manifest's labels out. It is a FaceModel (batched
// Runs, reused tensors) that knows its output is a distribution. Safe for
// concurrent use.
type EmotionHead struct {
	*FaceModel
	onPredict func(n int) // test hook: crops per Predict
}

// NewEmotionHead opens a session for the manifest's model on rt.
func NewEmotionHead(rt *Runtime, m *Manifest) (*EmotionHead, error) {
	switch m.Output.Activation {
	case "softmax", "logits", "":
	default:
		return nil, fmt.Errorf("%s: output.activation %q: want softmax (applied in the graph) or logits", m.Path, m.Output.Activation)
	}
	f, err := NewFaceModel(rt, m, emotionMaxBatch)
	if err != nil {
		return nil, err
	}
	return &EmotionHead{FaceModel: f}, nil
}

// emotionMaxBatch bounds one Run's batch: every track of a busy camera
// fits, and the input tensor stays small.
const emotionMaxBatch = 32

// Labels are the output classes, in order.
func (h *EmotionHead) Labels() []string { return h.m.Output.Labels }

// Predict returns one probability vector (len(Labels())) per crop. Crops are
// BGR (facetrack.Crop); all of them go into one Run per chunk of at most 32.
func (h *EmotionHead) Predict(crops []facetrack.Crop) ([][]float32, error) {
	if h.onPredict != nil {
		h.onPredict(len(crops))
	}
	out, err := h.FaceModel.Predict(crops)
	if err != nil {
		return nil, err
	}
	k := len(h.m.Output.Labels)
	flat := out[0]
	res := make([][]float32, len(crops))
	for i := range res {
		res[i] = flat[i*k : (i+1)*k : (i+1)*k]
		if h.m.Output.Activation == "logits" {
			softmax(res[i])
		}
	}
	return res, nil
}

func softmax(v []float32) {
	m := float32(math.Inf(-1))
	for _, x := range v {
		m = max(m, x)
	}
	var s float64
	for i, x := range v {
		e := math.Exp(float64(x - m))
		v[i] = float32(e)
		s += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / s)
	}
}
