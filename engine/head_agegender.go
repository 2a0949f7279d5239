package engine

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
)

func init() {
	registerHead(registry.HeadAgeGender, func(rt *Runtime, m *Manifest) (Head, error) { return NewAttributeHead(rt, m) })
}

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

var _ SteadyHead = (*AttributeHead)(nil)

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

// Name is the registry name.
func (h *AttributeHead) Name() string { return registry.HeadAgeGender }

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

// Observe is Predict, one Attr per crop.
func (h *AttributeHead) Observe(crops []facetrack.Crop) ([]any, error) {
	res, err := h.Predict(crops)
	if err != nil {
		return nil, err
	}
	return boxAll(res), nil
}

// Summarize: age is the mean of the samples' ages (confidence the mean mass
// within ±5 years), gender the sign of the mean P(male) − 0.5, its
// confidence the probability of the label given (so never below 0.5), as
// for every other label in the tree.
func (h *AttributeHead) Summarize(obs []any, out *tree.Attributes) {
	var age, conf, male, n float64
	for _, o := range obs {
		if a, ok := o.(Attr); ok {
			age, conf, male, n = age+a.Age, conf+a.AgeConf, male+a.Male, n+1
		}
	}
	if n == 0 {
		return
	}
	age, conf, male = age/n, conf/n, male/n
	out.Age = &tree.NumberValue{Value: round(clampF(age, 0, 130), 0), Confidence: prob(conf)}
	g, p := "female", 1-male
	if male > 0.5 {
		g, p = "male", male
	}
	out.Gender = &tree.LabelValue{Value: g, Confidence: prob(p)}
}

// Steady: a track's age and gender are settled once its last 8 looks
// agree: their ages within 10 years of each other and P(male) on the same
// side of 0.5 in every one. Then faceres, the costliest head (about two
// thirds of the heads' time), runs on one sample in SteadyEvery.
func (h *AttributeHead) Steady(obs []any) bool {
	const looks = 8
	if len(obs) < looks {
		return false
	}
	lo, hi, male := math.Inf(1), math.Inf(-1), 0
	for _, o := range obs[len(obs)-looks:] {
		a, ok := o.(Attr)
		if !ok {
			return false
		}
		lo, hi = min(lo, a.Age), max(hi, a.Age)
		if a.Male > 0.5 {
			male++
		}
	}
	return hi-lo <= 10 && (male == 0 || male == looks)
}

// boxAll turns a head's typed results into observations.
func boxAll[T any](res []T) []any {
	out := make([]any, len(res))
	for i := range res {
		out[i] = res[i]
	}
	return out
}
