// Package registry is the one list of edgemo's named parts: face detectors,
// face heads, emotion head models and ONNX Runtime execution providers,
// each with its default and a line of help. Config validation, the analyze/bench/doctor flags,
// doctor's model checks and the engine read it, so a part is added or
// renamed in one place. It imports nothing of edgemo's, so every package
// may import it.
package registry

import (
	"fmt"
	"strings"
)

// Part is one named, selectable part.
type Part struct {
	Name    string
	Help    string // one line: what it is for
	Default bool   // chosen when the user names none of this kind
	// Manifest is the face model's manifest base name in models/
	// (models/<Manifest>.manifest.json); empty for a part with no model.
	// Task is the "task" that manifest declares, so a wrong model is named.
	Manifest, Task string
	// Int8 is the manifest base name of the model's int8 variant, measured
	// to hold against Manifest's (docs/int8.md); models.precision picks it.
	Int8 string
	// Shapes are manifest base names of Manifest's network converted for
	// other input shapes (a detector's 256×160 for 16:9 frames); each frame
	// runs on the smallest that holds it at the square's scale.
	Shapes []string
	// ORT is ONNX Runtime's provider name (providers only).
	ORT string
	// Aliases are other accepted spellings (compared case-insensitively).
	Aliases []string
}

// List is the parts of one kind, in their documented order.
type List struct {
	Kind  string // "detector", "head", "provider": used in messages
	Parts []Part
	// Fold: names are matched case-insensitively (providers: "CUDA" works).
	Fold bool
}

// Detectors are the face detectors (cameras.<name>.detector, --detector).
var Detectors = List{Kind: "detector", Parts: []Part{
	{Name: "blazeface-back", Default: true, Manifest: "blazeface-back", Shapes: []string{"blazeface-back-wide"}, Task: "face-detection", Help: "far and near faces; 16:9 frames run a 256×160 conversion, 5/8 of the square's Run"},
	{Name: "blazeface-front", Manifest: "blazeface-front", Task: "face-detection", Help: "near faces, kiosks; 4x cheaper"},
	{Name: "haar", Help: "OpenCV Haar cascade, no model; chosen when a cascade is named"},
}}

// Heads are the fast tier's face heads (engine.heads, --heads), in the
// order they run.
var Heads = List{Kind: "head", Parts: []Part{
	{Name: "mesh", Default: true, Manifest: "facemesh", Task: "face-landmarks-468", Help: "landmark cues, head pose"},
	{Name: "age-gender", Default: true, Manifest: "faceres", Int8: "faceres-int8", Task: "face-age-gender", Help: "apparent age and gender"},
	{Name: "liveness", Default: true, Manifest: "antispoof", Int8: "antispoof-int8", Task: "face-anti-spoofing", Help: "real face or a photo/screen"},
}}

// EmotionModels are the fast tier's emotion head models (models.emotion,
// --model): a name stands for models/<Manifest>.manifest.json, a path for
// itself. Left unset, models.precision chooses between the two.
var EmotionModels = List{Kind: "emotion model", Parts: []Part{
	{Name: "emotion", Default: true, Manifest: "emotion", Int8: "emotion-int8", Task: TaskEmotion, Help: "float32; any machine and provider (models.emotion unset or its path: models.precision picks this or emotion-int8)"},
	{Name: "emotion-int8", Manifest: "emotion-int8", Task: TaskEmotion, Help: "int8: half the Run on x86 CPUs with VNNI; the same trees up to ties"},
}}

// Precisions say which variant of a model that has an int8 one (Int8:
// the emotion head, faceres, antispoof) runs (models.precision, --precision). The
// int8 variants were measured on x86 CPUs with VNNI through ORT's CPU
// provider only; elsewhere (arm64, whose int8 kernels differ; GPUs, where
// TensorRT wants symmetric activations these models lack; x86 without
// VNNI, where exact int8 is hardly faster: docs/int8.md) auto keeps float32.
var Precisions = List{Kind: "precision", Parts: []Part{
	{Name: PrecisionAuto, Default: true, Help: "int8 variants where they were measured: ORT's CPU provider on an x86-64 CPU with VNNI; float32 elsewhere"},
	{Name: PrecisionFP32, Help: "every model float32: any machine and provider"},
	{Name: PrecisionInt8, Help: "the int8 variants wherever they load, measured or not"},
}}

// Precision names.
const (
	PrecisionAuto = "auto"
	PrecisionFP32 = "fp32"
	PrecisionInt8 = "int8"
)

// Deblocking says which frames an H.264 or HEVC decoder runs its loop
// (deblocking) filter on (cameras.<name>.deblock, --deblock). The filter
// is two fifths of FFmpeg's H.264 decode of the 720p sample, and edgemo's
// frames feed detectors and heads, never a screen. A frame no other frame is
// predicted from (most B-frames) can skip it without anything drifting;
// skipping it on every frame saves more, but the blocking it leaves is
// copied into the frames predicted from it, until the next keyframe.
// Codecs without a loop filter (MJPEG, MPEG-4 Part 2) ignore it.
var Deblocking = List{Kind: "deblocking", Parts: []Part{
	{Name: DeblockReference, Default: true, Help: "frames others are predicted from; skipped on the rest, so no error carries over (cameras that send no B-frames gain nothing)"},
	{Name: DeblockAll, Help: "every frame: the picture the encoder saw (what OpenCV decodes)"},
	{Name: DeblockNone, Help: "no frame: the cheapest decode; blocking carries over until the next keyframe"},
}}

// Deblocking names.
const (
	DeblockReference = "reference"
	DeblockAll       = "all"
	DeblockNone      = "none"
)

// Providers are ONNX Runtime's execution providers (engine.providers,
// --providers); the defaults are tried in this order.
var Providers = List{Kind: "provider", Fold: true, Parts: []Part{
	{Name: "tensorrt", Default: true, ORT: "TensorrtExecutionProvider", Aliases: []string{"trt"}, Help: "NVIDIA TensorRT: Jetson, GPUs; engines are cached"},
	{Name: "cuda", Default: true, ORT: "CUDAExecutionProvider", Help: "NVIDIA CUDA"},
	{Name: "cpu", Default: true, ORT: "CPUExecutionProvider", Help: "any machine; the last fallback"},
}}

// The tasks the other model manifests declare (models.emotion,
// models.videmo).
const (
	TaskEmotion = "expression-classification"
	TaskVidEmo  = "video-emotion-vlm"
)

// Detector, head and provider names, for code that picks one by name.
const (
	DetectorBlazeFaceBack  = "blazeface-back"
	DetectorBlazeFaceFront = "blazeface-front"
	DetectorHaar           = "haar"
	HeadMesh               = "mesh"
	HeadAgeGender          = "age-gender"
	HeadLiveness           = "liveness"
)

// Names are the parts' names in order.
func (l List) Names() []string {
	out := make([]string, len(l.Parts))
	for i, p := range l.Parts {
		out[i] = p.Name
	}
	return out
}

// Defaults are the names of the default parts, in order.
func (l List) Defaults() []string {
	var out []string
	for _, p := range l.Parts {
		if p.Default {
			out = append(out, p.Name)
		}
	}
	return out
}

// Default is the first default part's name.
func (l List) Default() string {
	if d := l.Defaults(); len(d) > 0 {
		return d[0]
	}
	return ""
}

// Get finds a part by its name or an alias (and, for a Fold list, its ORT
// name), case-insensitively where the list folds.
func (l List) Get(name string) (Part, bool) {
	eq := func(a, b string) bool { return a == b || l.Fold && strings.EqualFold(a, b) }
	name = strings.TrimSpace(name)
	for _, p := range l.Parts {
		if eq(p.Name, name) || p.ORT != "" && eq(p.ORT, name) {
			return p, true
		}
		for _, a := range p.Aliases {
			if eq(a, name) {
				return p, true
			}
		}
	}
	return Part{}, false
}

// Check is nil for a known name, else an error that lists the known ones.
func (l List) Check(name string) error {
	if _, ok := l.Get(name); ok {
		return nil
	}
	return fmt.Errorf("unknown %s %q: use %s", l.Kind, name, l.Help())
}

// Help lists the parts with their help, for flag usage and errors:
// "a (default; x), b (y) or c (z)".
func (l List) Help() string {
	items := make([]string, len(l.Parts))
	for i, p := range l.Parts {
		h := p.Help
		if p.Default && len(l.Defaults()) == 1 {
			h = "default; " + h
		}
		items[i] = fmt.Sprintf("%s (%s)", p.Name, h)
	}
	return orList(items)
}

// OrNames is the names alone: "a, b or c".
func (l List) OrNames() string { return orList(l.Names()) }

func orList(items []string) string {
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " or " + items[len(items)-1]
}

// Markdown is the README's parts table: every detector, head, emotion model, precision, provider and deblocking
// with its default, model and help. The README carries it between
// <!-- parts:begin --> and <!-- parts:end -->, and a test keeps the two
// equal, so a part added here is documented by regenerating it.
func Markdown() string {
	var b strings.Builder
	b.WriteString("| kind | name | default | model | what it is for |\n|---|---|---|---|---|\n")
	for _, l := range []List{Detectors, Heads, EmotionModels, Precisions, Providers, Deblocking} {
		for _, p := range l.Parts {
			def, model := "", "—"
			if p.Default {
				def = "yes"
			}
			switch {
			case p.Manifest != "":
				model = "`models/" + p.Manifest + ".manifest.json`"
				if p.Int8 != "" {
					model += " (int8: `models/" + p.Int8 + ".manifest.json`)"
				}
				for _, sh := range p.Shapes {
					model += " (16:9 frames: `models/" + sh + ".manifest.json`)"
				}
			case p.ORT != "":
				model = "`" + p.ORT + "`"
			}
			fmt.Fprintf(&b, "| %s | `%s` | %s | %s | %s |\n", l.Kind, p.Name, def, model, p.Help)
		}
	}
	return b.String()
}
