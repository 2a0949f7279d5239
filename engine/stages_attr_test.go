package engine

import (
	"testing"

	"github.com/edgemo/edgemo/engine/tree"
)

// A label's confidence is the probability of that label: a face the model
// calls male with p=0.27 is female with confidence 0.73, not 0.46.
func TestAgeGenderSummaryConfidence(t *testing.T) {
	var h *AttributeHead // Summarize needs no model
	var a tree.Attributes
	h.Summarize([]any{Attr{Age: 30, AgeConf: 0.5, Male: 0.2}, Attr{Age: 32, AgeConf: 0.5, Male: 0.34}}, &a)
	if a.Gender.Value != "female" || a.Gender.Confidence != 0.73 {
		t.Fatalf("gender %+v, want female 0.73", a.Gender)
	}
	a = tree.Attributes{}
	h.Summarize([]any{Attr{Age: 30, AgeConf: 0.5, Male: 0.9}}, &a)
	if a.Gender.Value != "male" || a.Gender.Confidence != 0.9 {
		t.Fatalf("gender %+v, want male 0.9", a.Gender)
	}
	if a.Age.Value != 30 {
		t.Fatalf("age %+v", a.Age)
	}
}

// Liveness is decided on the window's mean score, with an undecided middle.
func TestLivenessSummary(t *testing.T) {
	var h *LivenessHead
	for _, c := range []struct {
		scores []float64
		want   string
		conf   float64
	}{
		{[]float64{0.9, 0.7}, "live", 0.8},
		{[]float64{0.1, 0.3}, "spoof", 0.8},
		{[]float64{0.5}, "unknown", 1},
	} {
		var obs []any
		for _, s := range c.scores {
			obs = append(obs, liveScore(s))
		}
		var a tree.Attributes
		h.Summarize(obs, &a)
		if a.Liveness == nil || a.Liveness.Value != c.want || a.Liveness.Confidence != c.conf {
			t.Errorf("scores %v: liveness %+v, want %s %.2f", c.scores, a.Liveness, c.want, c.conf)
		}
	}
}
