package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/testenv"
)

// The embedded default's models all load; each check names its key, and
// every default head and the camera's detector is among them.
func TestConfigModelsOnTheDefault(t *testing.T) {
	t.Chdir(testenv.Root())
	cfg, err := config.Default()
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]int{}
	for _, c := range ConfigModels(cfg) {
		if c.Status != OK {
			t.Errorf("%s: %s %s (fix: %s)", c.Name, c.Status, c.Detail, c.Fix)
		}
		keys[c.Key]++
	}
	if keys["models.emotion"] != 1 || keys["engine.heads"] != len(registry.Heads.Defaults()) || keys["cameras.sample.detector"] != 1 {
		t.Errorf("checks by key: %v", keys)
	}
}

// A missing head model fails --check, or with engine.optional_heads is a
// warning (the daemon runs without it); a model of the wrong task is named.
func TestConfigModelsHeadsAndTasks(t *testing.T) {
	// A models/ with the emotion head and one detector only.
	dir := t.TempDir()
	for _, f := range []string{"emotion.manifest.json", "emotion.onnx", "blazeface-back.manifest.json", "blazeface-back.onnx"} {
		b, err := os.ReadFile(testenv.Path(t, "models/"+f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dir, "models"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "models", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "clip.avi"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, optional := range []string{"false", "true"} {
		cfg, err := config.Parse("test.yaml", []byte("engine: {heads: [liveness], optional_heads: "+optional+"}\ncameras:\n  a: {source: clip.avi}\n"))
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]Status{"false": Fail, "true": Warn}[optional]
		got := map[string]Status{}
		for _, c := range ConfigModels(cfg) {
			got[c.Key] = c.Status
			if c.Key == "engine.heads" && !strings.Contains(c.Detail, "antispoof.manifest.json") {
				t.Errorf("head check does not name the manifest: %+v", c)
			}
		}
		if got["engine.heads"] != want || got["models.emotion"] != OK || got["cameras.a.detector"] != OK {
			t.Errorf("optional_heads %s: %v; want engine.heads %s, the rest ok", optional, got, want)
		}
	}
	cfg, err := config.Parse("test.yaml", []byte("models: {emotion: models/blazeface-back.manifest.json}\nengine: {heads: []}\ncameras:\n  a: {source: clip.avi}\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ConfigModels(cfg) {
		if c.Key == "models.emotion" && (c.Status != Fail || !strings.Contains(c.Detail, `"face-detection" model, not "expression-classification"`) || c.Fix == "") {
			t.Errorf("emotion = a detector: %+v", c)
		}
	}
}

// models.emotion takes a registry name as well as a path: emotion-int8 is
// models/emotion-int8.manifest.json, and a name the registry does not know
// is a path like any other (missing here: a failure naming it).
func TestConfigModelsEmotionByName(t *testing.T) {
	t.Chdir(testenv.Root())
	for name, want := range map[string]string{"emotion-int8": "emotion-int8@", "emotion": "emotion@", "emotion-int4": ""} {
		cfg, err := config.Parse("test.yaml", []byte("models: {emotion: "+name+"}\nengine: {heads: []}\ncameras:\n  a: {source: deps/media/Megamind.avi}\n"))
		if err != nil {
			t.Fatal(err)
		}
		seen := false
		for _, c := range ConfigModels(cfg) {
			if c.Key != "models.emotion" {
				continue
			}
			seen = true
			if ok := c.Status == OK && strings.HasPrefix(c.Detail, want); want != "" && !ok || want == "" && (c.Status != Fail || !strings.Contains(c.Detail, name)) {
				t.Errorf("models.emotion %s: %+v", name, c)
			}
		}
		if !seen {
			t.Errorf("models.emotion %s: not checked", name)
		}
	}
}
