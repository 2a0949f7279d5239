package parts

import (
	"testing"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/internal/testenv"
)

// TestBlazeFaceProviderFallbackLogsThroughLogger: the detector's own ONNX
// Runtime logs its provider fallbacks through the logger NewDetector is
// given, never through slog.Default (issue 11: the daemon's BlazeFace lines
// came out as "2026/12/01 20:15:58 INFO …" beside its structured log).
// Not parallel: it swaps slog.Default.
func TestBlazeFaceProviderFallbackLogsThroughLogger(t *testing.T) {
	def := testenv.CaptureDefaultLogs(t)
	logs := testenv.NewLogs()
	det, err := NewDetector(Options{ORTLib: testenv.ORTLib(t), Detector: DetectorBlazeFaceBack,
		Providers: []string{"tensorrt", "cuda", "cpu"}}, logs.Logger().With("camera", "door"))
	if err != nil {
		t.Fatal(err)
	}
	defer det.Close()
	for _, rec := range logs.Records() {
		t.Logf("given logger: %s", rec)
	}
	for _, rec := range def.Records() {
		t.Errorf("logged through slog.Default: %s", rec)
	}
	if len(logs.Find("onnxruntime session", "provider", engine.ProviderCPU))+len(def.Find("onnxruntime session", "provider", engine.ProviderCPU)) == 0 {
		t.Skip("BlazeFace did not fall back to CPU on this machine")
	}
	if len(logs.Find("onnxruntime session", "camera", "door", "component", "ort", "provider", engine.ProviderCPU)) == 0 {
		t.Error("the chosen provider was not logged through the given logger")
	}
	for _, p := range []string{engine.ProviderTensorRT, engine.ProviderCUDA} {
		if len(logs.Find("execution provider unavailable, falling back", "provider", p, "camera", "door", "component", "ort")) == 0 {
			t.Errorf("no fallback from %s logged through the given logger", p)
		}
	}
}
