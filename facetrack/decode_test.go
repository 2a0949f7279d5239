package facetrack

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
)

// decodeBlazeFace skips the exp for anchors whose logit is clearly below
// the threshold's and keeps exactly what scoring every anchor keeps, at
// thresholds and logits on either side of the cut, boundary included.
func TestDecodeBlazeFaceSkipsOnlyWhatScoringDrops(t *testing.T) {
	anchors := GenerateAnchors(256) // blazeface-back's 896
	rng := rand.New(rand.NewPCG(1, 2))
	for _, minScore := range []float32{0, 0.3, 0.5, 0.75, 0.99} {
		logit := float32(-100)
		if minScore > 0 {
			logit = float32(math.Log(float64(minScore) / (1 - float64(minScore))))
		}
		logits := make([]float32, len(anchors))
		regs := make([]float32, 16*len(anchors))
		for i := range logits {
			switch i % 3 {
			case 0: // anywhere
				logits[i] = float32(rng.NormFloat64() * 8)
			default: // within a few ulps of the threshold's logit
				logits[i] = math.Nextafter32(logit, float32(math.Inf(2*(i%2)-1)))
				for range rng.IntN(4) {
					logits[i] = math.Nextafter32(logits[i], float32(math.Inf(1)))
				}
			}
		}
		for i := range regs {
			regs[i] = float32(rng.Float64()*20 + 1)
		}
		got := decodeBlazeFace(anchors, logits, regs, minScore)
		want := scoreEveryAnchor(anchors, logits, regs, minScore)
		if len(want) == 0 || !reflect.DeepEqual(got, want) {
			t.Errorf("minScore %v: %d detections, scoring every anchor keeps %d (or they differ)", minScore, len(got), len(want))
		}
	}
}

// scoreEveryAnchor is decodeBlazeFace without the cut: the sigmoid of every
// logit, compared with minScore.
func scoreEveryAnchor(anchors []Anchor, logits, regs []float32, minScore float32) []Detection {
	var out []Detection
	for i, a := range anchors {
		l := math.Max(-100, math.Min(100, float64(logits[i])))
		score := float32(1 / (1 + math.Exp(-l)))
		if score < minScore {
			continue
		}
		r := regs[16*i : 16*i+16]
		w, h := float64(r[2]), float64(r[3])
		if !(w > 0 && h > 0) {
			continue
		}
		kp := make([]Point, 6)
		for k := range kp {
			kp[k] = Point{a.X + float64(r[4+2*k]), a.Y + float64(r[5+2*k])}
		}
		cx, cy := a.X+float64(r[0]), a.Y+float64(r[1])
		out = append(out, Detection{Box: Rect{cx - w/2, cy - h/2, w, h}, Score: score, Keypoints: kp})
	}
	return out
}
