package engine

import (
	"fmt"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
)

func init() {
	registerHead(registry.HeadLiveness, func(rt *Runtime, m *Manifest) (Head, error) { return NewLivenessHead(rt, m) })
}

// LivenessHead is the antispoof model: one score per crop, 1 = a real
// (live) face, 0 = a presentation attack (photo, screen).
type LivenessHead struct{ *FaceModel }

var _ Head = (*LivenessHead)(nil)

// liveScore is one crop's liveness observation.
type liveScore float64

// NewLivenessHead opens an antispoof manifest (one [-1,1] output).
func NewLivenessHead(rt *Runtime, m *Manifest) (*LivenessHead, error) {
	o := m.OutputSpecs()
	if len(o) != 1 || o[0].Shape[len(o[0].Shape)-1] != 1 {
		return nil, fmt.Errorf("%s: not an antispoof manifest (want one [-1,1] output)", m.Path)
	}
	f, err := NewFaceModel(rt, m, 0)
	if err != nil {
		return nil, err
	}
	return &LivenessHead{f}, nil
}

// Name is the registry name.
func (h *LivenessHead) Name() string { return registry.HeadLiveness }

// SampleEvery: liveness answers once per window (4 new samples at the
// default stride), and a face does not turn into a photo between two
// samples: two looks per window are enough.
func (h *LivenessHead) SampleEvery() int { return 2 }

var _ SampledHead = (*LivenessHead)(nil)

// Predict runs every crop in one batch and returns the live scores.
func (h *LivenessHead) Predict(crops []facetrack.Crop) ([]float64, error) {
	out, err := h.FaceModel.Predict(crops)
	if err != nil {
		return nil, err
	}
	res := make([]float64, len(crops))
	for i := range res {
		res[i] = clamp01(float64(out[0][i]))
	}
	return res, nil
}

// Observe is Predict, one score per crop.
func (h *LivenessHead) Observe(crops []facetrack.Crop) ([]any, error) {
	res, err := h.Predict(crops)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(res))
	for i, v := range res {
		out[i] = liveScore(v)
	}
	return out, nil
}

// Summarize: liveness is "live" when the mean live score is >= 0.6,
// "spoof" when <= 0.4 and "unknown" between (confidence: the mean score for
// live, 1 − mean for spoof, and for unknown 1 − 2·|mean − 0.5|, how
// undecided the model is).
func (h *LivenessHead) Summarize(obs []any, out *tree.Attributes) {
	var m, n float64
	for _, o := range obs {
		if v, ok := o.(liveScore); ok {
			m, n = m+float64(v), n+1
		}
	}
	if n == 0 {
		return
	}
	m /= n
	switch {
	case m >= 0.6:
		out.Liveness = &tree.LabelValue{Value: "live", Confidence: prob(m)}
	case m <= 0.4:
		out.Liveness = &tree.LabelValue{Value: "spoof", Confidence: prob(1 - m)}
	default:
		out.Liveness = &tree.LabelValue{Value: "unknown", Confidence: prob(1 - 2*abs(m-0.5))}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
