package engine

import (
	"testing"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// TestBlazeFaceProviderFallbackLogsToRuntimeLogger: opening BlazeFace with
// providers that must fall back (tensorrt, cuda on a machine without them)
// logs each fallback and the provider chosen through RuntimeConfig.Logger,
// and nothing through slog.Default (issue 11: one logger everywhere).
// Not parallel: it swaps slog.Default.
func TestBlazeFaceProviderFallbackLogsToRuntimeLogger(t *testing.T) {
	checkGoroutines(t)
	def := testenv.CaptureDefaultLogs(t)
	logs := testenv.NewLogs()
	rt := newTestRuntime(t, logs.Logger().With("component", "ort"), "tensorrt", "cuda", "cpu")
	r, err := NewBlazeFaceRunner(rt, faceManifest(t, "blazeface-back"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := facetrack.NewBlazeFace(r, facetrack.BlazeFaceConfig{Name: "blazeface-back"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, rec := range logs.Records() {
		t.Logf("runtime logger: %s", rec)
	}
	if r.Provider() != ProviderCPU {
		t.Skipf("provider %s: this machine does not need the fallback", r.Provider())
	}
	for _, p := range []string{ProviderTensorRT, ProviderCUDA} {
		if len(logs.Find("execution provider unavailable, falling back", "provider", p, "component", "ort")) == 0 {
			t.Errorf("no fallback from %s logged through the runtime's logger", p)
		}
	}
	if len(logs.Find("onnxruntime session", "provider", ProviderCPU)) == 0 {
		t.Errorf("the chosen provider was not logged through the runtime's logger")
	}
	for _, rec := range def.Records() {
		t.Errorf("logged through slog.Default: %s", rec)
	}
}
