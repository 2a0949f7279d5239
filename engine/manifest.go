package engine

import (
	"path/filepath"
	"regexp"
)

// Manifest describes one model (models/<name>.manifest.json): where it came
// from, its files with sha256, its input, preprocessing and output.
type Manifest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Task    string `json:"task"`
	// Target is the instruction set the conversion suits: amd64-avx512
	// (BlazeFace padded to ORT's 16-float NCHWc block, pure overhead
	// elsewhere) or arm64 (models/arm64/: unpadded). Empty: any.
	Target        string        `json:"target,omitempty"`
	Licence       string        `json:"licence"`
	Source        ModelSource   `json:"source"`
	Files         []ModelFile   `json:"files"`
	Input         InputSpec     `json:"input"`
	Preprocessing Preprocessing `json:"preprocessing"`
	Output        OutputSpec    `json:"output"`
	// Outputs lists every output of a multi-output model (detector, mesh,
	// attribute heads), in the order sessions return them. A manifest has
	// either Output (one classifier output with labels) or Outputs.
	Outputs []OutputSpec `json:"outputs,omitempty"`

	// Path is the manifest file the manifest was loaded from.
	Path string `json:"-"`
}

// ModelSource says where the weights came from before conversion.
type ModelSource struct {
	NPM       string            `json:"npm"`
	Version   string            `json:"version"`
	Path      string            `json:"path"`
	SHA256    map[string]string `json:"sha256"`
	Converter string            `json:"converter,omitempty"`
	// ConverterArgs are the converter's options beyond input and output
	// (e.g. --pad-channels 16); the result's sha256 depends on them.
	ConverterArgs []string `json:"converter_args,omitempty"`
}

// ModelFile is one file of the model, path relative to the manifest.
type ModelFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// InputSpec is the model's single input. Shape uses -1 for the batch axis.
type InputSpec struct {
	Name   string  `json:"name"`
	Shape  []int64 `json:"shape"`
	DType  string  `json:"dtype"`
	Layout string  `json:"layout"` // NHWC or NCHW
}

// Preprocessing turns an image into the input: pixels are scaled to
// InputRange, resized (Resize, AlignCorners, HalfPixelCenters as in
// tf.image.resizeBilinear), converted to Color ("gray" uses ColorWeights on
// R, G, B), then value = (value + Offset) * Scale.
type Preprocessing struct {
	Resize           string     `json:"resize"`
	AlignCorners     bool       `json:"align_corners"`
	HalfPixelCenters bool       `json:"half_pixel_centers"`
	Color            string     `json:"color"`
	ColorWeights     []float64  `json:"color_weights"`
	InputRange       [2]float64 `json:"input_range"`
	Offset           float64    `json:"offset"`
	Scale            float64    `json:"scale"`
}

// OutputSpec is one output of the model: class probabilities over Labels,
// or (in Outputs, Labels empty) a raw tensor of Shape that the head decodes.
type OutputSpec struct {
	Name       string   `json:"name"`
	Shape      []int64  `json:"shape"`
	Activation string   `json:"activation"`
	Labels     []string `json:"labels"`
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// targetArch maps each Target a manifest may name to the GOARCH it suits.
var targetArch = map[string]string{"amd64-avx512": "amd64", "arm64": "arm64"}

// SuitsArch reports whether the model was converted for goarch (a model
// with no target suits every architecture). A model that does not suit
// still runs, with the same results, only slower.
func (m *Manifest) SuitsArch(goarch string) bool {
	return m.Target == "" || targetArch[m.Target] == goarch
}

// LoadManifest reads and validates a manifest and verifies that every file it
// lists exists next to it with the listed sha256. Errors name the file and
// the fix.
func LoadManifest(path string) (*Manifest, error) {
	m := Manifest{Path: path}
	if err := LoadManifestFile(path, &m, "run scripts/setup.sh from the repository root", m.validate, m.Verify); err != nil {
		return nil, err
	}
	return &m, nil
}

func (m *Manifest) validate() error {
	var is Issues
	bad := is.Addf
	is.Name(m.Name)
	if m.Version == "" {
		bad("version is empty")
	}
	if m.Task == "" {
		bad("task is empty")
	}
	if _, ok := targetArch[m.Target]; m.Target != "" && !ok {
		bad("target %q: want amd64-avx512, arm64 or none", m.Target)
	}
	if m.Licence == "" {
		bad("licence is empty")
	}
	for k, v := range m.Source.SHA256 {
		if !hex64.MatchString(v) {
			bad("source.sha256[%q] must be 64 lowercase hex digits", k)
		}
	}
	if len(m.Files) == 0 {
		bad("files is empty")
	}
	for i, f := range m.Files {
		is.File(i, f.Path, f.SHA256)
	}
	if m.Input.Name == "" {
		bad("input.name is empty")
	}
	if len(m.Input.Shape) == 0 {
		bad("input.shape is empty")
	}
	if m.Input.DType != "float32" {
		bad("input.dtype %q: only float32 is supported", m.Input.DType)
	}
	if m.Input.Layout != "NHWC" && m.Input.Layout != "NCHW" {
		bad("input.layout must be NHWC or NCHW, got %q", m.Input.Layout)
	}
	if len(m.Input.Shape) != 4 {
		bad("input.shape must have 4 dims (batch, spatial, channels), got %v", m.Input.Shape)
	} else {
		for i, d := range m.Input.Shape[1:] {
			if d <= 0 {
				bad("input.shape[%d] must be > 0, got %d", i+1, d)
			}
		}
	}
	p := m.Preprocessing
	if p.Resize != "bilinear" {
		bad("preprocessing.resize %q: only bilinear is supported", p.Resize)
	}
	switch p.Color {
	case "gray":
		if len(p.ColorWeights) != 3 {
			bad("preprocessing.color_weights needs 3 values (R, G, B) for gray")
		}
	case "rgb", "bgr":
	default:
		bad("preprocessing.color must be gray, rgb or bgr, got %q", p.Color)
	}
	if p.InputRange[1] <= p.InputRange[0] {
		bad("preprocessing.input_range must be [lo, hi] with hi > lo, got %v", p.InputRange)
	}
	if p.Scale == 0 {
		bad("preprocessing.scale must be non-zero")
	}
	if len(m.Outputs) > 0 {
		if m.Output.Name != "" || len(m.Output.Labels) > 0 {
			bad("set either output or outputs, not both")
		}
		seen := map[string]bool{}
		for i, o := range m.Outputs {
			if o.Name == "" || seen[o.Name] {
				bad("outputs[%d].name is empty or repeated", i)
			}
			seen[o.Name] = true
			if len(o.Shape) < 2 {
				bad("outputs[%d].shape must have a batch axis and at least one more, got %v", i, o.Shape)
			}
			for j, d := range o.Shape[min(1, len(o.Shape)):] {
				if d <= 0 {
					bad("outputs[%d].shape[%d] must be > 0, got %d", i, j+1, d)
				}
			}
			if len(o.Labels) > 0 && len(o.Shape) > 0 && o.Shape[len(o.Shape)-1] != int64(len(o.Labels)) {
				bad("outputs[%d].shape %v does not end in len(labels)=%d", i, o.Shape, len(o.Labels))
			}
		}
	} else {
		if m.Output.Name == "" {
			bad("output.name is empty")
		}
		if len(m.Output.Labels) == 0 {
			bad("output.labels is empty")
		}
		if len(m.Output.Shape) > 0 && m.Output.Shape[len(m.Output.Shape)-1] != int64(len(m.Output.Labels)) {
			bad("output.shape %v does not end in len(labels)=%d", m.Output.Shape, len(m.Output.Labels))
		}
	}
	return is.Err("manifest")
}

// OutputSpecs is Outputs, or the single Output of a classifier manifest.
func (m *Manifest) OutputSpecs() []OutputSpec {
	if len(m.Outputs) > 0 {
		return m.Outputs
	}
	o := m.Output
	if len(o.Shape) == 0 {
		o.Shape = []int64{-1, int64(len(o.Labels))}
	}
	return []OutputSpec{o}
}

// FilePath returns the absolute-or-manifest-relative path of files[i].
func (m *Manifest) FilePath(i int) string {
	return filepath.Join(filepath.Dir(m.Path), m.Files[i].Path)
}

// ModelPath is the first file (the ONNX graph).
func (m *Manifest) ModelPath() string { return m.FilePath(0) }

// Verify checks that each file exists and has the listed sha256.
func (m *Manifest) Verify() error {
	for i, f := range m.Files {
		if err := CheckFile(m.FilePath(i), f.SHA256, m.Path, "run scripts/setup.sh"); err != nil {
			return err
		}
	}
	return nil
}

// Ref is "<name>@<first 12 hex of the model file's sha256>", the tree's source.model.
func (m *Manifest) Ref() string {
	return m.Name + "@" + m.Files[0].SHA256[:12]
}
