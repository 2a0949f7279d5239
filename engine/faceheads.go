package engine

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/facetrack"
)

// Attr is one crop's age and gender from faceres.
type Attr struct {
	Age     float64 // years: expected value of the 100-bin age distribution
	AgeConf float64 // probability mass within ±5 years of Age
	Male    float64 // P(male), the model's sigmoid
}

// AttributeHead is faceres (age distribution over 0..99 years and a gender
// sigmoid; its 1024-d descriptor output is not requested).
type AttributeHead struct {
	*FaceModel
	gender, age int // output indices
}

// NewAttributeHead opens a faceres manifest (outputs gender [-1,1] and age [-1,100]).
func NewAttributeHead(rt *Runtime, m *Manifest) (*AttributeHead, error) {
	h := &AttributeHead{gender: -1, age: -1}
	for i, o := range m.OutputSpecs() {
		switch o.Shape[len(o.Shape)-1] {
		case 1:
			h.gender = i
		case 100:
			h.age = i
		}
	}
	if h.gender < 0 || h.age < 0 {
		return nil, fmt.Errorf("%s: not a faceres manifest (want a [-1,1] gender and a [-1,100] age output)", m.Path)
	}
	f, err := NewFaceModel(rt, m, 0)
	if err != nil {
		return nil, err
	}
	h.FaceModel = f
	return h, nil
}

// Predict runs every crop in one batch.
func (h *AttributeHead) Predict(crops []facetrack.Crop) ([]Attr, error) {
	out, err := h.FaceModel.Predict(crops)
	if err != nil {
		return nil, err
	}
	res := make([]Attr, len(crops))
	for i := range res {
		p := out[h.age][i*100 : (i+1)*100]
		var e, s float64
		for a, v := range p {
			e += float64(a) * float64(v)
			s += float64(v)
		}
		if s > 0 {
			e /= s
		}
		var near float64
		for a, v := range p {
			if math.Abs(float64(a)-e) <= 5 {
				near += float64(v)
			}
		}
		res[i] = Attr{Age: e, AgeConf: near / math.Max(s, 1e-9), Male: float64(out[h.gender][i])}
	}
	return res, nil
}

// LivenessHead is the antispoof model: one score per crop, 1 = a real
// (live) face, 0 = a presentation attack (photo, screen).
type LivenessHead struct{ *FaceModel }

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

// FaceHeads are the optional heads the fast analyzer runs beside the
// emotion head on every new window sample; a nil head is disabled.
type FaceHeads struct {
	Mesh     *MeshHead
	Attr     *AttributeHead
	Liveness *LivenessHead
}

// Close closes every head.
func (fh FaceHeads) Close() error {
	var err error
	if fh.Mesh != nil {
		err = fh.Mesh.Close()
	}
	if fh.Attr != nil {
		if e := fh.Attr.Close(); err == nil {
			err = e
		}
	}
	if fh.Liveness != nil {
		if e := fh.Liveness.Close(); err == nil {
			err = e
		}
	}
	return err
}
