package registry_test

import (
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/internal/testenv"
)

var lists = []registry.List{registry.Detectors, registry.Heads, registry.EmotionModels, registry.Precisions, registry.Providers, registry.Deblocking}

// Names are unique across spellings, every part has help, and each kind
// has a default.
func TestListsAreWellFormed(t *testing.T) {
	for _, l := range lists {
		seen := map[string]bool{}
		for _, p := range l.Parts {
			for _, n := range append([]string{p.Name}, p.Aliases...) {
				if seen[strings.ToLower(n)] {
					t.Errorf("%s %q twice", l.Kind, n)
				}
				seen[strings.ToLower(n)] = true
			}
			if p.Help == "" || strings.Contains(p.Help, "\n") {
				t.Errorf("%s %s: help must be one line", l.Kind, p.Name)
			}
			if got, ok := l.Get(p.Name); !ok || got.Name != p.Name || l.Check(p.Name) != nil {
				t.Errorf("%s %s not found by its name", l.Kind, p.Name)
			}
		}
		if l.Default() == "" {
			t.Errorf("%s: no default", l.Kind)
		}
		err := l.Check("no-such-part")
		if err == nil {
			t.Errorf("%s: unknown name accepted", l.Kind)
			continue
		}
		for _, n := range l.Names() {
			if !strings.Contains(err.Error(), n) {
				t.Errorf("%s: error %q does not list %s", l.Kind, err, n)
			}
		}
	}
	if registry.Detectors.Default() != registry.DetectorBlazeFaceBack || len(registry.Detectors.Defaults()) != 1 {
		t.Errorf("one default detector, blazeface-back: %v", registry.Detectors.Defaults())
	}
	if d := registry.EmotionModels.Defaults(); len(d) != 1 || d[0] != "emotion" {
		t.Errorf("one default emotion model, the float32 one (int8 is measured on one CPU only): %v", d)
	}
}

// Providers map to ONNX Runtime's names through the engine, aliases and
// case included, and the engine's default order is the registry's.
func TestProvidersReachTheEngine(t *testing.T) {
	want := map[string]string{"tensorrt": engine.ProviderTensorRT, "cuda": engine.ProviderCUDA, "cpu": engine.ProviderCPU}
	for _, p := range registry.Providers.Parts {
		for _, n := range append([]string{p.Name, strings.ToUpper(p.Name), p.ORT}, p.Aliases...) {
			if got, err := engine.ProviderName(n); err != nil || got != want[p.Name] {
				t.Errorf("engine.ProviderName(%q) = %q, %v; want %q", n, got, err, want[p.Name])
			}
		}
	}
	if strings.Join(engine.DefaultProviders, ",") != strings.Join(registry.Providers.Defaults(), ",") {
		t.Errorf("engine defaults %v, registry's %v", engine.DefaultProviders, registry.Providers.Defaults())
	}
	if _, err := engine.ProviderName("rocm"); err == nil || !strings.Contains(err.Error(), "tensorrt") {
		t.Errorf("unknown provider: %v", err)
	}
}

// Every part with a model names a manifest that exists in models/ and
// declares the task the registry expects of it.
func TestManifestsMatchTheirTask(t *testing.T) {
	for _, l := range []registry.List{registry.Detectors, registry.Heads, registry.EmotionModels} {
		for _, p := range l.Parts {
			if p.Manifest == "" {
				continue
			}
			m, err := engine.LoadManifest(testenv.Path(t, "models/"+p.Manifest+".manifest.json"))
			if err != nil {
				t.Errorf("%s %s: %v", l.Kind, p.Name, err)
				continue
			}
			if m.Task != p.Task {
				t.Errorf("%s %s: manifest task %q, registry says %q", l.Kind, p.Name, m.Task, p.Task)
			}
		}
	}
	if m, err := engine.LoadManifest(testenv.Path(t, "models/emotion.manifest.json")); err != nil {
		t.Error(err)
	} else if m.Task != registry.TaskEmotion {
		t.Errorf("emotion manifest: task %q, registry says %q", m.Task, registry.TaskEmotion)
	}
}
