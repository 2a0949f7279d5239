package tree

import (
	"encoding/json"
	"os"
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

// Revision 1.1 is additive: a tree written by a 1.0 producer (this
// fixture came from edgemo analyze on the sample before scene and mikels
// existed) still validates and decodes, and the schema string is the same.
func TestRevision10TreeStillValidates(t *testing.T) {
	b, err := os.ReadFile("testdata/v1.0-fast-head.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateJSON(b); err != nil {
		t.Fatalf("a revision 1.0 tree no longer validates: %v", err)
	}
	var tr Tree
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatal(err)
	}
	if tr.Schema != Schema || tr.Scene != nil || tr.Emotion == nil || tr.Emotion.Mikels != nil {
		t.Fatalf("decoded 1.0 tree: schema %q, scene %v, emotion %+v", tr.Schema, tr.Scene, tr.Emotion)
	}
}

// The schema document names its revision in $id; trees keep the major.
func TestSchemaNamesRevision(t *testing.T) {
	var doc struct {
		ID string `json:"$id"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(doc.ID, "/edgemo.tree/v"+Revision+".json") {
		t.Errorf("$id %q does not name revision %s", doc.ID, Revision)
	}
	if Schema != "edgemo.tree/v1" {
		t.Errorf("Schema = %q: an additive revision must not change it", Schema)
	}
}

func withRevision11(tr *Tree) *Tree {
	hue := 212.5
	sc := &Scene{Brightness: 0.42, Colorfulness: 37.5, Hue: &hue, Chromatic: 0.35, Frames: 8}
	sc.HueHistogram[7] = 0.75
	sc.HueHistogram[6] = 0.25
	tr.Scene = sc
	tr.Emotion.Mikels = &Mikels{Label: "amusement", Confidence: 0.41, Derived: true,
		Scores: map[string]float64{"amusement": 0.41, "excitement": 0.3, "contentment": 0.2, "awe": 0.05, "anger": 0.01, "disgust": 0.01, "fear": 0.01, "sadness": 0.01}}
	return tr
}

func TestRevision11FieldsValidate(t *testing.T) {
	tr := withRevision11(example())
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tr)
	for _, k := range []string{`"scene":{"brightness":0.42,"colorfulness":37.5,"hue":212.5,"hue_histogram":[0,0,0,0,0,0,0.25,0.75,0,0,0,0],"chromatic":0.35,"frames":8}`, `"mikels":{"label":"amusement","confidence":0.41,`, `"derived":true`} {
		if !strings.Contains(string(b), k) {
			t.Errorf("serialised tree lacks %s: %s", k, b)
		}
	}
	// An achromatic scene has no hue; low_light appears only when set.
	tr.Scene.Hue, tr.Scene.HueHistogram, tr.Scene.LowLight = nil, [HueBins]float64{}, true
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(*Tree){
		"brightness above 1":      func(t *Tree) { t.Scene.Brightness = 1.2 },
		"negative colorfulness":   func(t *Tree) { t.Scene.Colorfulness = -1 },
		"hue 360":                 func(t *Tree) { h := 360.0; t.Scene.Hue = &h },
		"zero frames":             func(t *Tree) { t.Scene.Frames = 0 },
		"histogram share above 1": func(t *Tree) { t.Scene.HueHistogram[3] = 1.5 },
		"unknown mikels label":    func(t *Tree) { t.Emotion.Mikels.Label = "joy" },
		"unknown mikels score":    func(t *Tree) { t.Emotion.Mikels.Scores["joy"] = 0.1 },
		"mikels without scores":   func(t *Tree) { t.Emotion.Mikels.Scores = nil },
		"mikels confidence > 1":   func(t *Tree) { t.Emotion.Mikels.Confidence = 1.1 },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			tr := withRevision11(example())
			mutate(tr)
			if err := tr.Validate(); err == nil {
				t.Fatal("schema accepted an invalid tree")
			}
		})
	}
	// a histogram of the wrong length (only reachable from other producers)
	b, _ = json.Marshal(withRevision11(example()))
	s := strings.Replace(string(b), `"hue_histogram":[0,0,0,0,0,0,0.25,0.75,0,0,0,0]`, `"hue_histogram":[0.25,0.75]`, 1)
	if err := ValidateJSON([]byte(s)); err == nil {
		t.Error("a 2-bin hue histogram validated")
	}
}

func TestMikelsCategoriesMatchSchema(t *testing.T) {
	var doc struct {
		Defs struct {
			Mikels struct {
				Enum []string `json:"enum"`
			} `json:"mikels"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(schemaJSON, &doc); err != nil {
		t.Fatal(err)
	}
	if strings.Join(doc.Defs.Mikels.Enum, ",") != strings.Join(MikelsCategories, ",") {
		t.Fatalf("schema's Mikels enum %v != MikelsCategories %v", doc.Defs.Mikels.Enum, MikelsCategories)
	}
}

// The example in docs/tree.md is a valid tree of the current revision.
func TestDocsExampleValidates(t *testing.T) {
	b, err := os.ReadFile("../../docs/tree.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```json\n")
	ex, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/tree.md has no ```json example")
	}
	if err := ValidateJSON([]byte(ex)); err != nil {
		t.Fatalf("docs/tree.md's example: %v", err)
	}
	var tr Tree
	if err := json.Unmarshal([]byte(ex), &tr); err != nil || tr.Scene == nil || tr.Emotion.Mikels == nil {
		t.Fatalf("docs/tree.md's example shows no scene or mikels (%v)", err)
	}
}
