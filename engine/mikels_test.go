package engine

import (
	"math"
	"slices"
	"testing"

	"github.com/edgemo/edgemo/engine/tree"
)

// the fast head's label order (models/emotion.manifest.json)
var fastLabels = []string{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}

// one is the distribution with all mass on label, blended with a little of
// every other class as the classifier's softmax leaves it.
func one(label string) []float64 {
	p := make([]float64, len(fastLabels))
	for i, l := range fastLabels {
		p[i] = 0.01
		if l == label {
			p[i] = 1 - 0.01*float64(len(fastLabels)-1)
		}
	}
	return p
}

func mikels(t *testing.T, label string, v, a float64) *tree.Mikels {
	t.Helper()
	m := MikelsFromExpression(fastLabels, one(label), v, a)
	if m == nil {
		t.Fatalf("%s (%g, %g): no estimate", label, v, a)
	}
	return m
}

func positiveShare(m *tree.Mikels) float64 {
	return m.Scores["amusement"] + m.Scores["awe"] + m.Scores["contentment"] + m.Scores["excitement"]
}

// Every estimate is a distribution over exactly the eight, marked derived,
// its label the arg max and its confidence that probability.
func TestMikelsIsADistribution(t *testing.T) {
	for _, l := range fastLabels {
		for _, v := range []float64{-1, -0.5, 0, 0.5, 1} {
			for _, a := range []float64{-1, 0, 1} {
				m := mikels(t, l, v, a)
				var sum float64
				for k, s := range m.Scores {
					if !slices.Contains(tree.MikelsCategories, k) || s < 0 || s > 1 {
						t.Fatalf("%s (%g, %g): score %s = %g", l, v, a, k, s)
					}
					sum += s
					if s > m.Scores[m.Label] {
						t.Fatalf("%s (%g, %g): label %s (%g) is not the arg max (%s %g)", l, v, a, m.Label, m.Scores[m.Label], k, s)
					}
				}
				if len(m.Scores) != 8 || math.Abs(sum-1) > 1e-3 || !m.Derived || m.Confidence != m.Scores[m.Label] {
					t.Fatalf("%s (%g, %g): %+v (sum %g)", l, v, a, m, sum)
				}
			}
		}
	}
}

// The documented properties (engine/mikels.go, README Mikels' eight), at
// the valence/arousal each class gets from the fast head without cues and
// at chosen ones.
func TestMikelsDocumentedProperties(t *testing.T) {
	// a smile at high arousal: excitement and amusement over contentment
	hi := mikels(t, "happy", 0.8, 0.7)
	if !(hi.Scores["excitement"] > hi.Scores["contentment"] && hi.Scores["amusement"] > hi.Scores["contentment"]) || (hi.Label != "excitement" && hi.Label != "amusement") {
		t.Errorf("happy, high arousal: %v", hi.Scores)
	}
	// at low arousal: contentment over excitement
	lo := mikels(t, "happy", 0.7, -0.4)
	if lo.Label != "contentment" || !(lo.Scores["contentment"] > lo.Scores["excitement"]) {
		t.Errorf("happy, low arousal: %v", lo.Scores)
	}
	// each negative class gets its own category, at the fast head's own
	// valence/arousal for it
	for class, want := range map[string]string{"sad": "sadness", "angry": "anger", "disgust": "disgust", "fear": "fear"} {
		v, a := valenceArousal(fastLabels, one(class), windowCues{})
		if m := mikels(t, class, v, a); m.Label != want || positiveShare(m) > 0.05 {
			t.Errorf("%s at (%g, %g): %s, positive share %g, want %s: %v", class, v, a, m.Label, positiveShare(m), want, m.Scores)
		}
	}
	// a plain smile (no cues): a positive category
	v, a := valenceArousal(fastLabels, one("happy"), windowCues{})
	if m := mikels(t, "happy", v, a); positiveShare(m) < 0.95 {
		t.Errorf("happy at (%g, %g): positive share %g: %v", v, a, positiveShare(m), m.Scores)
	}
	// surprise takes its side from valence
	if m := mikels(t, "surprise", 0.5, 0.9); m.Label != "awe" && m.Label != "excitement" {
		t.Errorf("pleasant surprise: %s %v", m.Label, m.Scores)
	}
	if m := mikels(t, "surprise", -0.6, 0.9); m.Label != "fear" {
		t.Errorf("unpleasant surprise: %s %v", m.Label, m.Scores)
	}
	// neutral says little: a spread estimate
	v, a = valenceArousal(fastLabels, one("neutral"), windowCues{})
	if m := mikels(t, "neutral", v, a); m.Confidence > 0.5 {
		t.Errorf("neutral at (%g, %g): confidence %g, want a spread estimate: %v", v, a, m.Confidence, m.Scores)
	}
	// with the classes fixed, the positive share grows with valence
	for _, l := range fastLabels {
		for _, a := range []float64{-0.8, 0, 0.8} {
			prev := -1.0
			for v := -1.0; v <= 1.0001; v += 0.1 {
				s := positiveShare(mikels(t, l, v, a))
				if s < prev-2e-4 { // 4-decimal rounding of the scores
					t.Errorf("%s, arousal %g: positive share falls from %g to %g at valence %.1f", l, a, prev, s, v)
				}
				prev = s
			}
		}
	}
}

func TestMikelsTablesAreComplete(t *testing.T) {
	for _, m := range tree.MikelsCategories {
		if _, ok := mikelsAnchor[m]; !ok {
			t.Errorf("no anchor for %s", m)
		}
	}
	for class, row := range mikelsAffinity {
		var sum float64
		for m, w := range row {
			if !slices.Contains(tree.MikelsCategories, m) {
				t.Errorf("%s: unknown category %s", class, m)
			}
			sum += w
		}
		if math.Abs(sum-1) > 1e-9 {
			t.Errorf("%s: affinities sum to %g", class, sum)
		}
	}
	for _, l := range fastLabels {
		if mikelsAffinity[l] == nil {
			t.Errorf("the fast head's label %s has no row", l)
		}
	}
	// a label set the mapping does not know gives no estimate rather than a made-up one
	if m := MikelsFromExpression([]string{"calm", "busy"}, []float64{0.5, 0.5}, 0, 0); m != nil {
		t.Errorf("unknown labels gave %+v", m)
	}
}
