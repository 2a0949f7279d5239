package tree

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func example() *Tree {
	v, a := 0.65, 0.4
	t0 := time.Date(2026, 11, 23, 10, 0, 1, 200e6, time.UTC)
	onset := Time(t0.Add(800 * time.Millisecond))
	return &Tree{
		Schema: Schema, ID: MakeID("cam1", 17, 42), Camera: "cam1", TrackID: 17,
		Window: Window{Start: Time(t0), End: Time(t0.Add(4 * time.Second)), Frames: 16, FPS: 4},
		Face:   &Face{Box: [4]float64{412, 96, 180, 180}, Score: 0.97, FramesSeen: 16},
		Attributes: &Attributes{
			Age:    &NumberValue{Value: 31, Confidence: 0.6},
			Gender: &LabelValue{Value: "female", Confidence: 0.9},
		},
		Expression: &Expression{
			Label: "happy", Confidence: 0.82,
			Scores:  map[string]float64{"happy": 0.82, "neutral": 0.18},
			Cues:    []Cue{{Name: "lip_corner_puller", AU: "AU12", Intensity: 0.7, Onset: &onset, Evidence: EvidenceLandmarks}},
			Valence: &v, Arousal: &a,
		},
		Emotion: &Emotion{Label: "happiness", Confidence: 0.78, Trend: "rising", Rationale: "Sustained smile."},
		Source:  Source{Engine: "fast-head", Model: "emotion@0123abcd", Provider: "CPUExecutionProvider", LatencyMS: 3.5},
	}
}

func TestExampleTreeValidates(t *testing.T) {
	tr := example()
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tr)
	if tr.ID != "cam1-17-000042" {
		t.Fatalf("id = %q", tr.ID)
	}
	if !strings.Contains(string(b), `"start":"2026-11-23T10:00:01.200Z"`) {
		t.Fatalf("times must be RFC 3339 UTC with ms: %s", b)
	}
}

func TestSchemaRejectsBrokenTrees(t *testing.T) {
	cases := map[string]func(*Tree){
		"wrong schema":         func(t *Tree) { t.Schema = "edgemo.tree/v2" },
		"empty camera":         func(t *Tree) { t.Camera = "" },
		"confidence above 1":   func(t *Tree) { t.Expression.Confidence = 1.5 },
		"score below 0":        func(t *Tree) { t.Expression.Scores["sad"] = -0.1 },
		"unknown evidence":     func(t *Tree) { t.Expression.Cues[0].Evidence = "guess" },
		"bad AU name":          func(t *Tree) { t.Expression.Cues[0].AU = "12" },
		"unknown trend":        func(t *Tree) { t.Emotion.Trend = "up" },
		"model without hash":   func(t *Tree) { t.Source.Model = "emotion" },
		"zero frames":          func(t *Tree) { t.Window.Frames = 0 },
		"valence out of range": func(t *Tree) { v := 2.0; t.Expression.Valence = &v },
		"unknown answer method": func(t *Tree) {
			t.Source.Answers = []AnswerInfo{{Question: "emotion", LetterMass: 0.9, Method: "vibes"}}
		},
		"letter mass above 1": func(t *Tree) {
			t.Source.Answers = []AnswerInfo{{Question: "emotion", LetterMass: 1.2, Method: MethodOptionLogits}}
		},
		"answer without question": func(t *Tree) {
			t.Source.Answers = []AnswerInfo{{LetterMass: 0.2, Method: MethodUncertain}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			tr := example()
			mutate(tr)
			if err := tr.Validate(); err == nil {
				t.Fatal("schema accepted an invalid tree")
			}
		})
	}
}

func TestSchemaRequiresMandatoryFields(t *testing.T) {
	for _, field := range []string{"schema", "id", "camera", "track_id", "window", "source"} {
		b, _ := json.Marshal(example())
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		delete(m, field)
		b, _ = json.Marshal(m)
		if err := ValidateJSON(b); err == nil {
			t.Errorf("tree without %q validated", field)
		}
	}
}

func TestNonUTCTimeRejected(t *testing.T) {
	b, _ := json.Marshal(example())
	s := strings.Replace(string(b), `"2026-11-23T10:00:01.200Z"`, `"2026-11-23T11:00:01.200+01:00"`, 1)
	if err := ValidateJSON([]byte(s)); err == nil {
		t.Fatal("non-UTC time validated")
	}
}

// The VLM's audit fields are optional and additive: a tree carrying them
// validates as v1, serialises them under their schema names, and a tree
// without them serialises none of them.
func TestAnswerAuditValidates(t *testing.T) {
	tr := example()
	b, _ := json.Marshal(tr)
	for _, k := range []string{`"answers"`, `"uncertain"`} {
		if strings.Contains(string(b), k) {
			t.Errorf("a tree without audit fields serialises %s: %s", k, b)
		}
	}
	tr.Expression.Uncertain, tr.Emotion.Uncertain = true, true
	tr.Source.Answers = []AnswerInfo{
		{Question: "emotion", LetterMass: 0.0001, Method: MethodUncertain},
		{Question: "gender", LetterMass: 0.3, Method: MethodGeneratedText},
		{Question: "age", LetterMass: 0.97, Method: MethodOptionLogits},
	}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ = json.Marshal(tr)
	for _, k := range []string{`"answers":[{"question":"emotion","letter_mass":0.0001,"method":"uncertain"}`, `"arousal":0.4,"uncertain":true`, `"rationale":"Sustained smile.","uncertain":true`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("serialised tree lacks %s: %s", k, b)
		}
	}
}
