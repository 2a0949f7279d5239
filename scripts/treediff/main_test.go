package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixture is engine/tree's fast-head tree, decoded (the schema's own
// sample: it validates, as load checks).
func fixture(t *testing.T) map[string]any {
	t.Helper()
	p := filepath.Join("..", "..", "engine", "tree", "testdata", "v1.0-fast-head.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	// load reads JSON Lines: one compact line per tree.
	line, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	lp := filepath.Join(t.TempDir(), "a.jsonl")
	if err := os.WriteFile(lp, append(line, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	trees, err := load(lp)
	if err != nil || len(trees) != 1 {
		t.Fatalf("load %s: %d trees, %v", lp, len(trees), err)
	}
	return trees[0]
}

func obj(m map[string]any, path ...string) map[string]any {
	for _, k := range path {
		m = m[k].(map[string]any)
	}
	return m
}

// TestTieRule: a label may differ only as a tie, each reported: both runs'
// leads of their own label over the other's below -tie, from the scores
// where the tree has them, else from the confidences. A flip with a large
// lead fails, as does a trend that differs under an equal label.
func TestTieRule(t *testing.T) {
	if tie != 0.05 {
		t.Fatalf("tie = %g, the cases are for the default 0.05", tie)
	}
	for _, c := range []struct {
		name   string
		edit   func(a, b map[string]any)
		ok     bool
		nTies  int
		detail string // in the error (failures) or the tie (passes)
	}{
		{"identical", func(a, b map[string]any) {}, true, 0, ""},
		{"numbers only", func(a, b map[string]any) { obj(b, "expression", "scores")["happy"] = 0.9 }, true, 0, ""},
		{"expression near tie", sadVsAngry(0.41, 0.40, 0.40, 0.405, 0.1), true, 1, "leads 0.01 and 0.005"},
		{"expression flip, large lead", func(a, b map[string]any) {
			obj(b, "expression")["label"] = "sad" // happy 0.9986 vs sad 0 in both runs
		}, false, 0, "expression.label: happy vs sad"},
		{"expression flip, lead only in one run", sadVsAngry(0.47, 0.40, 0.40, 0.405, 0.1), false, 0, "expression.label: sad vs angry"},
		{"expression tie of the Megamind clip (amd64 vs arm64)", sadVsAngry(0.401, 0.3987, 0.3922, 0.4162, 0.0004), true, 1, "leads 0.0023 and 0.024"},
		{"emotion near tie (an earlier Megamind window)", func(a, b map[string]any) {
			ea, eb := obj(a, "emotion"), obj(b, "emotion")
			ea["label"], ea["confidence"], eb["label"], eb["confidence"] = "anger", 0.265, "sadness", 0.272
			ea["trend"], eb["trend"] = "rising", "steady"
		}, true, 2, "emotion.label: anger vs sadness"},
		{"emotion flip, large margin", func(a, b map[string]any) {
			ea, eb := obj(a, "emotion"), obj(b, "emotion")
			ea["label"], ea["confidence"], eb["label"], eb["confidence"] = "anger", 0.25, "sadness", 0.35
		}, false, 0, "emotion.label: anger vs sadness"},
		{"trend differs, same label", func(a, b map[string]any) {
			obj(a, "emotion")["trend"], obj(b, "emotion")["trend"] = "rising", "steady"
		}, false, 0, "emotion.trend: rising vs steady"},
		{"gender flip at 0.5", func(a, b map[string]any) {
			ga, gb := obj(a, "attributes", "gender"), obj(b, "attributes", "gender")
			ga["value"], ga["confidence"], gb["value"], gb["confidence"] = "female", 0.505, "male", 0.503
		}, true, 1, "attributes.gender.value: female vs male"},
		{"gender flip, confident", func(a, b map[string]any) {
			obj(b, "attributes", "gender")["value"] = "male"
		}, false, 0, "attributes.gender.value"},
	} {
		t.Run(c.name, func(t *testing.T) {
			a, b := fixture(t), fixture(t)
			c.edit(a, b)
			d := differ{diffs: map[string]float64{}}
			d.walk("", a, b, a, b)
			if ok := len(d.bad) == 0; ok != c.ok {
				t.Fatalf("accepted %v, want %v: bad %q, ties %q", ok, c.ok, d.bad, d.ties)
			}
			if len(d.ties) != c.nTies {
				t.Errorf("%d ties reported, want %d: %q", len(d.ties), c.nTies, d.ties)
			}
			got := strings.Join(append(d.bad, d.ties...), "; ")
			if !strings.Contains(got, c.detail) {
				t.Errorf("report %q does not say %q", got, c.detail)
			}
			if err := compare([]map[string]any{a}, []map[string]any{b}); (err == nil) != c.ok {
				t.Errorf("compare: %v, want ok %v", err, c.ok)
			}
		})
	}
}

// sadVsAngry labels run a "sad" and run b "angry", with these sad and angry
// scores in each and happy at the same score in both.
func sadVsAngry(sadA, angryA, sadB, angryB, happy float64) func(a, b map[string]any) {
	return func(a, b map[string]any) {
		sa, sb := obj(a, "expression", "scores"), obj(b, "expression", "scores")
		sa["sad"], sa["angry"], sb["sad"], sb["angry"], sa["happy"], sb["happy"] = sadA, angryA, sadB, angryB, happy, happy
		obj(a, "expression")["label"], obj(b, "expression")["label"] = "sad", "angry"
	}
}
