package engine

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/internal/testenv"
)

func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
	t.Logf("error: %v", err)
}

func TestMissingORTLibrary(t *testing.T) {
	checkGoroutines(t)
	missing := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	_, err := NewRuntime(RuntimeConfig{LibraryPath: missing})
	wantErr(t, err, "ONNX Runtime library not found at "+missing, "scripts/setup.sh", EnvORTLib)

	// the environment variable is used (and checked) when the config is empty
	t.Setenv(EnvORTLib, missing)
	_, err = NewRuntime(RuntimeConfig{})
	wantErr(t, err, missing, EnvORTLib)

	// a directory is not a library
	_, err = NewRuntime(RuntimeConfig{LibraryPath: t.TempDir()})
	wantErr(t, err, "not found at")

	t.Setenv(EnvORTLib, testenv.ORTLib(t))
	rt, err := NewRuntime(RuntimeConfig{Providers: []string{"cpu"}})
	if err != nil {
		t.Fatal(err)
	}
	if rt.Library() != testenv.ORTLib(t) {
		t.Errorf("library %s, want $%s", rt.Library(), EnvORTLib)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
}

// copyManifest writes the emotion manifest into dir with edit applied and
// returns its path.
func copyManifest(t *testing.T, dir string, edit func(m map[string]any)) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(), "models", "emotion.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	b, _ = json.MarshalIndent(m, "", "  ")
	p := filepath.Join(dir, "emotion.manifest.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestManifestMissingModel(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	_, err := LoadManifest(copyManifest(t, dir, nil))
	wantErr(t, err, filepath.Join(dir, "emotion.onnx")+": missing", "run scripts/setup.sh")

	_, err = LoadManifest(filepath.Join(dir, "nope.manifest.json"))
	wantErr(t, err, "nope.manifest.json", "missing")
}

func TestManifestSHA256Mismatch(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	p := copyManifest(t, dir, nil)
	if err := os.WriteFile(filepath.Join(dir, "emotion.onnx"), []byte("not the model"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadManifest(p)
	wantErr(t, err, filepath.Join(dir, "emotion.onnx"), "sha256", "does not match", "delete it and run scripts/setup.sh")
}

func TestManifestValidation(t *testing.T) {
	m := emotionManifest(t)
	if !regexp.MustCompile(`^emotion@[0-9a-f]{12}$`).MatchString(m.Ref()) || !strings.HasSuffix(m.Ref(), m.Files[0].SHA256[:12]) {
		t.Errorf("Ref %q", m.Ref())
	}
	if len(m.Output.Labels) != 7 || m.Output.Labels[3] != "happy" || m.Input.Name != "input_1" {
		t.Errorf("manifest %+v", m)
	}
	dir := t.TempDir()
	p := copyManifest(t, dir, func(m map[string]any) {
		m["name"] = "bad name"
		m["input"].(map[string]any)["layout"] = "HWC"
		m["output"].(map[string]any)["labels"] = []string{"a", "b"}
	})
	_, err := LoadManifest(p)
	wantErr(t, err, p, "name", "input.layout", "output.shape")
	p = copyManifest(t, dir, func(m map[string]any) { m["surprise"] = 1 })
	_, err = LoadManifest(p)
	wantErr(t, err, p, "surprise")
}

// wrongShapeModel writes a tiny valid ONNX model with input input_1
// [N, 32, 32, 1] (not 64x64) and output Identity [N, 7], generated with
// /usr/bin/python3 + onnx, and a manifest naming it with its real sha256.
func wrongShapeModel(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	onnxPath := filepath.Join(dir, "emotion.onnx")
	const gen = `
import sys, numpy as np, onnx
from onnx import helper, TensorProto, numpy_helper
x = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["batch", 32, 32, 1])
y = helper.make_tensor_value_info("Identity", TensorProto.FLOAT, ["batch", 7])
shape = numpy_helper.from_array(np.array([-1, 1024], np.int64), "shape")
w = numpy_helper.from_array(np.zeros((1024, 7), np.float32), "w")
g = helper.make_graph([
    helper.make_node("Reshape", ["input_1", "shape"], ["flat"]),
    helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    helper.make_node("Softmax", ["logits"], ["Identity"], axis=-1),
], "wrong_shape", [x], [y], initializer=[shape, w])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.checker.check_model(m)
open(sys.argv[1], "wb").write(m.SerializeToString())
`
	if out, err := exec.Command("/usr/bin/python3", "-c", gen, onnxPath).CombinedOutput(); err != nil {
		t.Fatalf("generate wrong-shape model with /usr/bin/python3 + onnx (apt install python3-onnx): %v\n%s", err, out)
	}
	sum, err := fileSHA256(onnxPath)
	if err != nil {
		t.Fatal(err)
	}
	return copyManifest(t, dir, func(m map[string]any) {
		m["files"] = []map[string]any{{"path": "emotion.onnx", "sha256": sum}}
	})
}

func TestWrongInputShape(t *testing.T) {
	checkGoroutines(t)
	p := wrongShapeModel(t)
	m, err := LoadManifest(p)
	if err != nil {
		t.Fatal(err) // the manifest itself is fine: the sha matches
	}
	rt := newTestRuntime(t, quietLogger())
	_, err = NewEmotionHead(rt, m)
	wantErr(t, err, m.ModelPath(), `input "input_1"`, "[-1 64 64 1]", "rerun scripts/setup.sh")
}

func TestProviderFallback(t *testing.T) {
	checkGoroutines(t)
	var logs syncBuffer
	log := slogText(&logs)
	rt := newTestRuntime(t, log, "tensorrt", "cuda", "cpu")
	h, err := NewEmotionHead(rt, emotionManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	out := logs.String()
	t.Logf("log:\n%s", out)
	for _, p := range []string{ProviderTensorRT, ProviderCUDA} {
		if !regexp.MustCompile(`level=WARN msg="execution provider unavailable, falling back" provider=` + p).MatchString(out) {
			t.Errorf("no fallback logged for %s", p)
		}
	}
	if h.Provider() != ProviderCPU {
		t.Fatalf("provider %s, want %s", h.Provider(), ProviderCPU)
	}
	crops, _ := faceCrops(t, "astronaut.png", 0.1, 2)
	probs, err := h.Predict(crops)
	if err != nil || len(probs) != 2 {
		t.Fatalf("predict after fallback: %v", err)
	}

	// unknown provider names are a config error
	_, err = NewRuntime(RuntimeConfig{LibraryPath: testenv.ORTLib(t), Providers: []string{"rocm"}})
	wantErr(t, err, "rocm", "tensorrt, cuda or cpu")
}

func TestORTInfo(t *testing.T) {
	checkGoroutines(t)
	rep, err := ORTInfo(RuntimeConfig{LibraryPath: testenv.ORTLib(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", rep)
	if !strings.HasPrefix(rep.Version, "1.24") {
		t.Errorf("version %q", rep.Version)
	}
	var cpu bool
	for _, p := range rep.Providers {
		if p.Name == ProviderCPU {
			cpu = p.Available
		}
	}
	if !cpu || len(rep.Providers) != 3 {
		t.Errorf("providers %+v", rep.Providers)
	}
}
