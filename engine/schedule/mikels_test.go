package schedule

import (
	"context"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
)

// emotion.mikels in a tiered tree: the VLM's estimate (read from the video)
// wins over the fast tier's derived one, whatever else the VLM's emotion
// level holds; without a VLM estimate the derived one stays. Neither input
// changes.
func TestMergeMikels(t *testing.T) {
	now := time.Now()
	derived := &tree.Mikels{Label: "contentment", Confidence: 0.4, Derived: true, Scores: map[string]float64{"contentment": 0.4, "sadness": 0.6}}
	read := &tree.Mikels{Label: "awe", Confidence: 0.7, Scores: map[string]float64{"awe": 0.7, "fear": 0.3}}
	fast := func() *tree.Tree {
		f := must(newFastStandIn().Analyze(context.Background(), mkWindow("c", 1, 3, now, 154, 1)))
		f.Emotion.Mikels = derived
		return f
	}
	slow := func(e *tree.Emotion) *tree.Tree {
		s := slowTree(mkWindow("c", 1, 2, now.Add(-time.Second), 154, 1), time.Second)
		s.Emotion = e
		return s
	}
	for _, c := range []struct {
		name string
		slow *tree.Emotion
		want *tree.Mikels
	}{
		{"slow label and mikels", &tree.Emotion{Label: "happiness", Confidence: 0.8, Mikels: read}, read},
		{"slow label, no mikels", &tree.Emotion{Label: "happiness", Confidence: 0.8}, derived},
		{"slow rationale and mikels", &tree.Emotion{Rationale: "Wide eyes.", Mikels: read}, read},
		{"slow mikels only", &tree.Emotion{Mikels: read}, read},
		{"no slow emotion", nil, derived},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, s := fast(), slow(c.slow)
			out := Merge(f, s, -1)
			if out.Emotion == nil || out.Emotion.Mikels != c.want {
				t.Fatalf("mikels %+v, want %+v", out.Emotion, c.want)
			}
			if c.slow != nil && c.slow.Mikels != nil && out.Source.Engine != "fast-head+"+standInEngine {
				t.Errorf("engine %q: the VLM's estimate came in", out.Source.Engine)
			}
			if f.Emotion.Mikels != derived || (c.slow != nil && s.Emotion.Mikels != c.slow.Mikels) {
				t.Error("Merge changed an input")
			}
			if c.name == "slow mikels only" && (out.Emotion.Label != f.Emotion.Label || out.Emotion.Rationale != f.Emotion.Rationale) {
				t.Errorf("a VLM tree with only a Mikels estimate replaced fast's emotion level: %+v", out.Emotion)
			}
			if err := out.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
