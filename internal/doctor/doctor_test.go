package doctor

import (
	"runtime"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine"
)

// TestTargetCheck: a face model converted for another architecture loads
// but is a warning naming both and the fix; one for this architecture, or
// for none, is ok. The detail names the target either way.
func TestTargetCheck(t *testing.T) {
	other := "arm64"
	if runtime.GOARCH == "arm64" {
		other = "amd64-avx512"
	}
	mine := map[string]string{"amd64": "amd64-avx512", "arm64": "arm64"}[runtime.GOARCH]
	for _, c := range []struct {
		target string
		want   Status
	}{{"", OK}, {mine, OK}, {other, Warn}} {
		m := &engine.Manifest{Name: "blazeface-back", Target: c.target, Files: []engine.ModelFile{{Path: "blazeface-back.onnx", SHA256: strings.Repeat("a", 64)}}, Path: "models/x/blazeface-back.manifest.json"}
		got := targetCheck(m)
		if got.Status != c.want {
			t.Errorf("target %q on %s: %s, want %s", c.target, runtime.GOARCH, got.Status, c.want)
		}
		if c.target != "" && !strings.Contains(got.Detail, "("+c.target+")") {
			t.Errorf("target %q: detail %q does not name it", c.target, got.Detail)
		}
		if c.want == Warn && (!strings.Contains(got.Fix, c.target) || !strings.Contains(got.Fix, "models/"+runtime.GOARCH+"/")) {
			t.Errorf("target %q: fix %q", c.target, got.Fix)
		}
	}
}
