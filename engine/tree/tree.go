// Package tree is the emotion tree, schema edgemo.tree/v1 (docs/tree.md):
// one value per face track per window, attributes -> expression -> emotion,
// with provenance. Producers (engine) fill it; sinks (publish) serialise it.
package tree

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Schema is the value of the "schema" field: the major version, the line
// of compatibility. Revisions within it only add optional fields, so a v1
// reader reads every v1 tree; they are not written into trees (a reader
// that compared the string would break on each addition) but named in the
// JSON Schema's $id and listed in docs/tree.md.
const Schema = "edgemo.tree/v1"

// Revision is the schema document's revision within Schema: 1.0 the first,
// 1.1 adds scene and emotion.mikels (docs/tree.md, Revisions).
const Revision = "1.1"

// Tree is one emotion tree. Optional levels are pointers: absent knowledge is
// absent, never invented.
type Tree struct {
	Schema     string      `json:"schema"`
	ID         string      `json:"id"`
	Camera     string      `json:"camera"`
	TrackID    int         `json:"track_id"`
	Window     Window      `json:"window"`
	Face       *Face       `json:"face,omitempty"`
	Attributes *Attributes `json:"attributes,omitempty"`
	Expression *Expression `json:"expression,omitempty"`
	Emotion    *Emotion    `json:"emotion,omitempty"`
	// Scene is the camera's picture over the window (revision 1.1): the
	// same for every face of the camera in that span.
	Scene  *Scene `json:"scene,omitempty"`
	Source Source `json:"source"`
}

// Time marshals as RFC 3339 UTC with milliseconds, as docs/tree.md requires.
type Time time.Time

func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z07:00") + `"`), nil
}

func (t *Time) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	*t = Time(v)
	return err
}

type Window struct {
	Start  Time    `json:"start"`
	End    Time    `json:"end"`
	Frames int     `json:"frames"`
	FPS    float64 `json:"fps,omitempty"`
}

type Face struct {
	Box        [4]float64 `json:"box"` // x, y, w, h in source pixels
	Score      float64    `json:"score"`
	FramesSeen int        `json:"frames_seen"`
	// Attention and presence (revision 1.1; engine/audience fills them
	// with the camera's looking cone, docs/tree.md, Attention).
	// Looking: the window's latest measured sample looked at the camera or
	// screen. Attention: the share of the window's measured samples that
	// did. DwellS: seconds since the track began. AttentionS: seconds of
	// the track so far spent looking. Engagement: attention weighted by
	// expressiveness, 0..1 (README, Attention and audience).
	Looking    *bool    `json:"looking,omitempty"`
	Attention  *float64 `json:"attention,omitempty"`
	DwellS     *float64 `json:"dwell_s,omitempty"`
	AttentionS *float64 `json:"attention_s,omitempty"`
	Engagement *float64 `json:"engagement,omitempty"`
	// Gaze is per window sample what the attention fields are computed
	// from; in-process only, never serialised.
	Gaze []Gaze `json:"-"`
}

// Gaze is one window sample's head pose (degrees, from the face mesh) and
// eye closure (0 open as the track's face at rest, 1 shut).
type Gaze struct {
	Time       time.Time
	Yaw, Pitch float64
	Closure    float64
}

type Attributes struct {
	Age      *NumberValue `json:"age,omitempty"`
	Gender   *LabelValue  `json:"gender,omitempty"`
	HeadPose *HeadPose    `json:"head_pose,omitempty"`
	Liveness *LabelValue  `json:"liveness,omitempty"`
	Other    []NamedValue `json:"other,omitempty"`
}

type NumberValue struct {
	Value      float64 `json:"value"`
	Confidence float64 `json:"confidence"`
}

type LabelValue struct {
	Value      string  `json:"value"`
	Confidence float64 `json:"confidence"`
}

type NamedValue struct {
	Name       string  `json:"name"`
	Value      string  `json:"value"`
	Confidence float64 `json:"confidence"`
}

type HeadPose struct {
	Yaw   float64 `json:"yaw"`
	Pitch float64 `json:"pitch"`
	Roll  float64 `json:"roll"`
}

type Expression struct {
	Label      string             `json:"label,omitempty"`
	Confidence float64            `json:"confidence,omitempty"`
	Scores     map[string]float64 `json:"scores,omitempty"`
	Cues       []Cue              `json:"cues,omitempty"`
	Valence    *float64           `json:"valence,omitempty"`
	Arousal    *float64           `json:"arousal,omitempty"`
	// Uncertain: the label is a guess. A VLM read it from option letters
	// the model itself would probably not have written first, and its own
	// text named no option (Source.Answers says how each answer was read);
	// Confidence is discounted accordingly.
	Uncertain bool `json:"uncertain,omitempty"`
}

// Evidence values for Cue.Evidence.
const (
	EvidenceLandmarks  = "landmarks"
	EvidenceClassifier = "classifier"
	EvidenceVidEmo     = "videmo"
)

type Cue struct {
	Name      string  `json:"name"`
	AU        string  `json:"au,omitempty"`
	Intensity float64 `json:"intensity"`
	Onset     *Time   `json:"onset,omitempty"`
	Evidence  string  `json:"evidence"`
}

type Emotion struct {
	Label      string  `json:"label,omitempty"`
	Fine       string  `json:"fine,omitempty"`
	Confidence float64 `json:"confidence,omitempty"`
	Trend      string  `json:"trend,omitempty"`
	Rationale  string  `json:"rationale,omitempty"`
	// Uncertain: as Expression.Uncertain, for the label derived from it.
	Uncertain bool `json:"uncertain,omitempty"`
	// Mikels is an estimate over Mikels' eight categories (revision 1.1).
	Mikels *Mikels `json:"mikels,omitempty"`
}

// MikelsCategories are Mikels et al. (2005)'s eight emotion categories, the
// label set of EmoVid (arXiv 2511.11002): four positive, four negative.
var MikelsCategories = []string{"amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness"}

// Mikels is a distribution over MikelsCategories, an estimate: Label is its
// arg max and Confidence that probability. Derived: computed from the
// expression level (the fast tier's mapping, engine/mikels.go), not read
// by a model from the video. Uncertain: as Expression.Uncertain.
type Mikels struct {
	Label      string             `json:"label"`
	Confidence float64            `json:"confidence"`
	Scores     map[string]float64 `json:"scores"`
	Derived    bool               `json:"derived,omitempty"`
	Uncertain  bool               `json:"uncertain,omitempty"`
}

// HueBins is the length of Scene.HueHistogram: 30° bins centred on 0° (red),
// 30°, 60° (yellow) … 330°.
const HueBins = 12

// Scene is the camera's picture over a window, measured on a downscaled
// copy of each sampled frame (engine/scene; docs/tree.md, Scene).
type Scene struct {
	Brightness   float64 `json:"brightness"`   // mean Rec. 601 luma, 0 (black) .. 1 (white)
	Colorfulness float64 `json:"colorfulness"` // Hasler–Süsstrunk M on 0..255 RGB: 0 grey, ~33 moderately, ~59 quite, ≥ 109 extremely colourful
	// Hue is the dominant hue in degrees [0, 360), absent when no sampled
	// pixel is chromatic.
	Hue *float64 `json:"hue,omitempty"`
	// HueHistogram: the chromatic pixels' share per HueBins bin (sums to 1,
	// or all 0 when none is chromatic).
	HueHistogram [HueBins]float64 `json:"hue_histogram"`
	Chromatic    float64          `json:"chromatic"` // share of sampled pixels with chroma ≥ 0.1
	// LowLight: Brightness is below the low-light threshold, and the face
	// levels' confidences were lowered (the rationale says by how much).
	LowLight bool `json:"low_light,omitempty"`
	Frames   int  `json:"frames"` // frames sampled in the window
}

type Source struct {
	Engine    string  `json:"engine"`
	Model     string  `json:"model"` // <manifest name>@<sha256 prefix>
	Provider  string  `json:"provider,omitempty"`
	LatencyMS float64 `json:"latency_ms"`
	// Answers audit how each closed-set VLM answer was read (absent for
	// engines without closed-set questions).
	Answers []AnswerInfo `json:"answers,omitempty"`
}

// Answer reading methods (AnswerInfo.Method).
const (
	// MethodOptionLogits: the option letters carried enough of the model's
	// probability at the first answer position to read the answer from
	// their distribution.
	MethodOptionLogits = "option_logits"
	// MethodGeneratedText: they did not; the model's own greedy text named
	// one option, which is the answer.
	MethodGeneratedText = "generated_text"
	// MethodUncertain: neither; the letters' arg max is kept as a guess and
	// its confidence discounted by the letter mass.
	MethodUncertain = "uncertain"
)

// AnswerInfo is the audit of one closed-set answer: the question's id, the
// probability the option letters carried against the whole vocabulary at
// the first answer position, and how the answer was read.
type AnswerInfo struct {
	Question   string  `json:"question"`
	LetterMass float64 `json:"letter_mass"`
	Method     string  `json:"method"`
}

// MakeID builds the tree id "<camera>-<track>-<window seq>".
func MakeID(camera string, track int, seq uint64) string {
	return fmt.Sprintf("%s-%d-%06d", camera, track, seq)
}

//go:embed tree.v1.schema.json
var schemaJSON []byte

var (
	compileOnce sync.Once
	compiled    *jsonschema.Schema
	compileErr  error
)

func schema() (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schemaJSON))
		if err != nil {
			compileErr = fmt.Errorf("parse tree schema: %w", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		const url = "tree.v1.schema.json"
		if err := c.AddResource(url, doc); err != nil {
			compileErr = fmt.Errorf("add tree schema: %w", err)
			return
		}
		compiled, compileErr = c.Compile(url)
	})
	return compiled, compileErr
}

// ValidateJSON checks one serialised tree against the v1 JSON Schema.
func ValidateJSON(b []byte) error {
	s, err := schema()
	if err != nil {
		return err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("tree is not JSON: %w", err)
	}
	if err := s.Validate(doc); err != nil {
		return fmt.Errorf("tree does not match %s: %w", Schema, err)
	}
	return nil
}

// Validate serialises t and checks it against the schema.
func (t *Tree) Validate() error {
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("marshal tree: %w", err)
	}
	return ValidateJSON(b)
}
