package parts

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/internal/testenv"
)

// modelsCopy copies models/*.json and *.onnx to a temp dir and truncates
// (or removes) one file.
func modelsCopy(t *testing.T, broken string, remove bool) string {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(testenv.Root(), "models")
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == broken {
			if remove {
				continue
			}
			b = b[:len(b)/2]
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestBrokenHeadModel: a truncated or missing model file of any face head
// is a start-up error naming the file, or, with OptionalHeads, a warning
// and the head is off; never a crash. A broken detector model names its file.
func TestBrokenHeadModel(t *testing.T) {
	lib := testenv.ORTLib(t)
	for _, c := range []struct {
		file      string
		remove    bool
		precision string // the variant that loads the file
	}{
		{"facemesh.onnx", false, ""}, {"faceres.onnx", true, "fp32"}, {"antispoof.onnx", false, "fp32"}, {"antispoof-int8.onnx", false, "int8"},
		{"faceres.manifest.json", false, "fp32"}, {"faceres-int8.onnx", false, "int8"}, {"faceres-int8.manifest.json", true, "int8"},
	} {
		dir := modelsCopy(t, c.file, c.remove)
		o := Options{Manifest: filepath.Join(dir, "emotion.manifest.json"), ModelsDir: dir, ORTLib: lib, Providers: []string{"cpu"}, Precision: c.precision}
		var logs bytes.Buffer
		log := slog.New(slog.NewTextHandler(&logs, nil))
		ms, err := LoadModels(o, log)
		if err == nil {
			ms.Close()
			t.Fatalf("%s broken: LoadModels succeeded", c.file)
		}
		if !strings.Contains(err.Error(), filepath.Join(dir, c.file)) {
			t.Errorf("%s broken: error does not name the file: %v", c.file, err)
		}
		o.OptionalHeads = true
		ms, err = LoadModels(o, log)
		if err != nil {
			t.Fatalf("%s broken, heads optional: %v", c.file, err)
		}
		ms.Close()
		if !strings.Contains(logs.String(), "face head disabled") {
			t.Errorf("%s broken, heads optional: no warning in %s", c.file, logs.String())
		}
	}
	dir := modelsCopy(t, "blazeface-back.onnx", false)
	_, err := NewDetector(Options{ModelsDir: dir, ORTLib: lib, Providers: []string{"cpu"}}, slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)))
	if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "blazeface-back.onnx")) {
		t.Errorf("truncated detector model: want an error naming it, got %v", err)
	}
}

// TestLoadModelsPrecision: fp32 loads every float32 model, int8 the int8
// variants of the emotion head, faceres and antispoof beside them, and an emotion
// model given by name stays the one named (--model emotion is float32
// under any precision).
func TestLoadModelsPrecision(t *testing.T) {
	lib := testenv.ORTLib(t)
	for _, c := range []struct {
		precision, model       string
		wantEmotion, wantAttrs string
	}{
		{"fp32", "", "emotion.onnx", "faceres.onnx"},
		{"int8", "", "emotion-int8.onnx", "faceres-int8.onnx"},
		{"int8", "emotion", "emotion.onnx", "faceres-int8.onnx"},
		{"fp32", "emotion-int8", "emotion-int8.onnx", "faceres.onnx"},
	} {
		logs := testenv.NewLogs()
		ms, err := LoadModels(Options{Manifest: c.model, ORTLib: lib, Providers: []string{"cpu"}, Precision: c.precision, Heads: []string{"age-gender"}}, logs.Logger())
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		var sessions []string
		for _, r := range logs.Find("onnxruntime session") {
			sessions = append(sessions, filepath.Base(r.Attrs["model"]))
		}
		ms.Close()
		if len(sessions) != 2 || sessions[0] != c.wantEmotion || sessions[1] != c.wantAttrs {
			t.Errorf("precision %s, model %q: sessions %v, want %s and %s", c.precision, c.model, sessions, c.wantEmotion, c.wantAttrs)
		}
		if !ms.Precision.Int8 != (c.precision == "fp32") {
			t.Errorf("precision %s: resolved %+v", c.precision, ms.Precision)
		}
	}
	if _, err := LoadModels(Options{ORTLib: lib, Providers: []string{"cpu"}, Precision: "int4"}, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "unknown precision") {
		t.Errorf("precision int4: want an unknown-precision error, got %v", err)
	}
}

// TestWithPrecision: only the float32 manifest of a part with an int8
// variant is swapped, for the variant beside it; under auto a missing
// variant leaves the float32 one (with a warning), asked for it is kept
// so loading it names the missing file.
func TestWithPrecision(t *testing.T) {
	dir := modelsCopy(t, "faceres-int8.manifest.json", true)
	part := registry.Part{Manifest: "faceres", Int8: "faceres-int8"}
	emo := registry.Part{Manifest: "emotion", Int8: "emotion-int8"}
	models := filepath.Join(testenv.Root(), "models")
	logs := testenv.NewLogs()
	for _, c := range []struct {
		path string
		part registry.Part
		p    engine.Precision
		want string
	}{
		{filepath.Join(models, "faceres.manifest.json"), part, engine.Precision{}, filepath.Join(models, "faceres.manifest.json")},
		{filepath.Join(models, "faceres.manifest.json"), part, engine.Precision{Int8: true, Auto: true}, filepath.Join(models, "faceres-int8.manifest.json")},
		{filepath.Join(models, "emotion.manifest.json"), emo, engine.Precision{Int8: true}, filepath.Join(models, "emotion-int8.manifest.json")},
		{"/srv/mine/age.manifest.json", part, engine.Precision{Int8: true}, "/srv/mine/age.manifest.json"},
		{filepath.Join(dir, "faceres.manifest.json"), part, engine.Precision{Int8: true, Auto: true}, filepath.Join(dir, "faceres.manifest.json")},
		{filepath.Join(dir, "faceres.manifest.json"), part, engine.Precision{Int8: true}, filepath.Join(dir, "faceres-int8.manifest.json")},
	} {
		if got := WithPrecision(c.path, c.part, c.p, logs.Logger()); got != c.want {
			t.Errorf("WithPrecision(%s, %s, %+v) = %s, want %s", c.path, c.part.Manifest, c.p, got, c.want)
		}
	}
	if len(logs.Find("int8 variant missing: running float32")) != 1 {
		t.Errorf("want one warning for the missing variant under auto: %v", logs.Records())
	}
}

// TestFaceManifestArchVariant: an architecture with its own conversion in
// models/<GOARCH>/ (arm64: BlazeFace without the AVX-512 channel padding)
// gets it, every other model and architecture models/ itself, and each
// variant's manifest names the target it is picked for.
func TestFaceManifestArchVariant(t *testing.T) {
	dir := filepath.Join(testenv.Root(), "models")
	for _, c := range []struct{ arch, name, want, target string }{
		{"arm64", "blazeface-back", "arm64/blazeface-back.manifest.json", "arm64"},
		{"arm64", "blazeface-front", "arm64/blazeface-front.manifest.json", "arm64"},
		{"arm64", "facemesh", "arm64/facemesh.manifest.json", "arm64"},
		{"arm64", "faceres", "faceres.manifest.json", ""},
		{"amd64", "blazeface-back", "blazeface-back.manifest.json", "amd64-avx512"},
		{"riscv64", "blazeface-front", "blazeface-front.manifest.json", "amd64-avx512"},
	} {
		got := FaceManifestFor(dir, c.arch, c.name)
		if got != filepath.Join(dir, c.want) {
			t.Errorf("%s on %s: %s, want models/%s", c.name, c.arch, got, c.want)
			continue
		}
		m, err := engine.LoadManifest(got)
		if err != nil {
			t.Fatalf("%v (run scripts/setup.sh)", err)
		}
		if m.Target != c.target || m.SuitsArch(c.arch) != (c.target == "" || c.target == c.arch || c.arch == "amd64") {
			t.Errorf("%s: target %q, suits %s %v", got, m.Target, c.arch, m.SuitsArch(c.arch))
		}
	}
}

// EmotionManifest: a registry name is its manifest beside the default one,
// anything else a path, empty the default.
func TestEmotionManifest(t *testing.T) {
	def := DefaultManifest()
	for v, want := range map[string]string{
		"":                             def,
		"emotion":                      filepath.Join(filepath.Dir(def), "emotion.manifest.json"),
		"emotion-int8":                 filepath.Join(filepath.Dir(def), "emotion-int8.manifest.json"),
		"EMOTION-INT8":                 "EMOTION-INT8", // names are exact; this is a path
		"/srv/m/emotion.manifest.json": "/srv/m/emotion.manifest.json",
	} {
		if got := EmotionManifest(v); got != want {
			t.Errorf("EmotionManifest(%q) = %q, want %q", v, got, want)
		}
	}
}
