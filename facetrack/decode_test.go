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
	anchors := GenerateAnchors(256, 256) // blazeface-back's 896
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

// scoreEveryAnchor is decodeBlazeFace without the cut: the score of every
// anchor, compared with minScore.
func scoreEveryAnchor(anchors []Anchor, logits, regs []float32, minScore float32) []Detection {
	var out []Detection
	for i, a := range anchors {
		if score := anchorScore(logits[i]); score >= minScore {
			if d, ok := anchorDetection(a, regs[16*i:16*i+16], score); ok {
				out = append(out, d)
			}
		}
	}
	return out
}
