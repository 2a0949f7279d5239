package engine

import (
	"math"

	"github.com/edgemo/edgemo/engine/tree"
)

// Mikels' eight from the fast tier's expression level: an estimate derived
// from the 7 expression classes and valence/arousal, since no fast model
// reads the categories from a face. Its assumptions (README, Mikels' eight):
//
//  1. Each expression class points to the categories its face can show
//     (mikelsAffinity): a smile to the four positive ones, mostly
//     amusement, excitement and contentment (rarely awe); a sad face to
//     sadness; anger to anger, some disgust; disgust to disgust, some
//     anger; fear to fear; surprise, which has no valence of its own, to
//     awe, excitement and fear alike. Neutral points nowhere: all eight
//     equally, so valence and arousal alone decide.
//  2. Each category sits at a place in valence/arousal space
//     (mikelsAnchor, −1..1, after Russell's circumplex and the ratings of
//     Mikels et al. 2005's picture set): excitement positive and aroused,
//     contentment positive and calm, amusement positive and moderately
//     aroused, awe positive and aroused but less so than excitement;
//     anger, fear and disgust negative and aroused (fear most, disgust
//     least), sadness negative and calm.
//  3. The window's valence/arousal weigh each category by a Gaussian of
//     its distance from that place (σ = mikelsSigma).
//
// Score(m) ∝ Σ_c p(c)·affinity(c, m) · exp(−|va − anchor(m)|² / 2σ²).
// Properties that follow, and are tested: the result is a distribution
// over the eight; a happy face at high arousal is closer to excitement and
// amusement than to contentment, and at low arousal to contentment; a
// sad, angry, disgusted or fearful face gets its own category; surprise
// goes to awe or excitement when valence is positive and to fear when it
// is negative; with the classes fixed, the positive categories' share
// grows with valence (each Gaussian's log-ratio to a negative one is
// linear in valence with a positive slope).

// mikelsSigma is the width of a category's place in valence/arousal: at
// one σ (0.5, a quarter of the axis) a category keeps 61% of its weight,
// so neighbours (amusement, awe, excitement) share a face while opposite
// corners (excitement, contentment) do not.
const mikelsSigma = 0.5

// mikelsAnchor is each category's (valence, arousal).
var mikelsAnchor = map[string][2]float64{
	"amusement":   {0.8, 0.3},
	"awe":         {0.5, 0.5},
	"contentment": {0.6, -0.5},
	"excitement":  {0.6, 0.8},
	"anger":       {-0.7, 0.6},
	"disgust":     {-0.7, 0.2},
	"fear":        {-0.5, 0.8},
	"sadness":     {-0.7, -0.5},
}

// mikelsAffinity is, per expression class, the share of its probability
// each category may take before valence/arousal weigh them. Rows sum to 1;
// neutral is spread evenly.
var mikelsAffinity = map[string]map[string]float64{
	"happy":    {"amusement": 0.35, "excitement": 0.30, "contentment": 0.30, "awe": 0.05},
	"surprise": {"awe": 0.40, "excitement": 0.30, "fear": 0.20, "amusement": 0.10},
	"sad":      {"sadness": 0.85, "fear": 0.05, "anger": 0.05, "disgust": 0.05},
	"angry":    {"anger": 0.80, "disgust": 0.15, "sadness": 0.05},
	"disgust":  {"disgust": 0.80, "anger": 0.15, "sadness": 0.05},
	"fear":     {"fear": 0.85, "sadness": 0.10, "awe": 0.05},
	"neutral":  {"amusement": 0.125, "awe": 0.125, "contentment": 0.125, "excitement": 0.125, "anger": 0.125, "disgust": 0.125, "fear": 0.125, "sadness": 0.125},
}

// MikelsFromExpression maps a distribution p over the expression labels
// and the window's valence and arousal (−1..1) to Mikels' eight, marked
// derived. Labels the mapping does not know are ignored; nil when none of
// p's mass is on a known label.
func MikelsFromExpression(labels []string, p []float64, valence, arousal float64) *tree.Mikels {
	raw := make(map[string]float64, len(tree.MikelsCategories))
	for i, l := range labels {
		if i >= len(p) || !(p[i] > 0) {
			continue
		}
		for m, w := range mikelsAffinity[l] {
			raw[m] += p[i] * w
		}
	}
	var sum float64
	for _, m := range tree.MikelsCategories {
		a := mikelsAnchor[m]
		dv, da := valence-a[0], arousal-a[1]
		raw[m] *= math.Exp(-(dv*dv + da*da) / (2 * mikelsSigma * mikelsSigma))
		sum += raw[m]
	}
	if !(sum > 0) {
		return nil
	}
	out := &tree.Mikels{Scores: make(map[string]float64, len(tree.MikelsCategories)), Derived: true}
	best := -1.0
	for _, m := range tree.MikelsCategories { // fixed order: ties go to the first
		s := raw[m] / sum
		out.Scores[m] = prob(s)
		if s > best {
			best, out.Label = s, m
		}
	}
	out.Confidence = prob(best)
	return out
}

// mikelsOf is the fast tier's hook: the emotion level's distribution and
// the valence/arousal the cues give (the classes' alone without cues).
func mikelsOf(labels []string, p []float64, w windowCues) *tree.Mikels {
	v, a := valenceArousal(labels, p, w)
	return MikelsFromExpression(labels, p, v, a)
}
