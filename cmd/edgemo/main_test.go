package main

// End-to-end tests of the CLI, in process, on real media with real ONNX
// Runtime sessions. Run with -tags matprofile (make test does) so the Mat
// leak check is real.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/internal/testenv"
)

func TestMain(m *testing.M) {
	// os/signal starts one process-wide goroutine on first use; start it now
	// so the leak checks below only see goroutines edgemo itself left.
	_, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	stop()
	os.Exit(m.Run())
}

// edgemo runs the CLI and returns its exit code, stdout and stderr.
func edgemo(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// readTrees parses and schema-validates every line of JSON Lines output.
func readTrees(t *testing.T, jsonl string) []tree.Tree {
	t.Helper()
	var trees []tree.Tree
	sc := bufio.NewScanner(strings.NewReader(jsonl))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if err := tree.ValidateJSON(sc.Bytes()); err != nil {
			t.Fatalf("tree %d invalid: %v\n%s", len(trees)+1, err, sc.Bytes())
		}
		var tr tree.Tree
		if err := json.Unmarshal(sc.Bytes(), &tr); err != nil {
			t.Fatal(err)
		}
		trees = append(trees, tr)
	}
	return trees
}

// noLeaks fails t if goroutines started during the test are still running
// (after a grace period for exiting ones) or Mats are still open.
func noLeaks(t *testing.T) func() {
	t.Helper()
	g0 := runtime.NumGoroutine()
	m0 := testenv.MatCount(t)
	return func() {
		t.Helper()
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > g0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > g0 {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines: %d before, %d after\n%s", g0, n, buf[:runtime.Stack(buf, true)])
		}
		if n := testenv.MatCount(t); n != m0 {
			t.Errorf("Mat leak: %d open before, %d after\n%s", m0, n, testenv.MatLeaks())
		}
	}
}

func TestAnalyzeMegamindWritesValidTreesWithoutLeaks(t *testing.T) {
	check := noLeaks(t)
	out := filepath.Join(t.TempDir(), "trees.jsonl")
	code, _, stderr := edgemo(t, "analyze", testenv.Media(t, "Megamind.avi"), "--out", out, "--progress", "on")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	check()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	trees := readTrees(t, string(b))
	if len(trees) < 3 {
		t.Fatalf("only %d trees from Megamind.avi\n%s", len(trees), stderr)
	}
	ids := map[string]bool{}
	for _, tr := range trees {
		if ids[tr.ID] {
			t.Fatalf("duplicate tree id %s", tr.ID)
		}
		ids[tr.ID] = true
		if tr.Expression == nil || tr.Expression.Label == "" || tr.Emotion == nil || tr.Face == nil {
			t.Fatalf("tree %s lacks a level: %+v", tr.ID, tr)
		}
		// the emotion head's float32 or int8 variant, as models.precision
		// auto decides on this machine (TestLoadModelsPrecision pins each)
		if tr.Source.Engine != "fast-head" || !strings.HasPrefix(tr.Source.Model, "emotion@") && !strings.HasPrefix(tr.Source.Model, "emotion-int8@") || tr.Source.Provider == "" {
			t.Fatalf("tree %s source %+v", tr.ID, tr.Source)
		}
	}
	if !strings.Contains(stderr, "270/270 frames") {
		t.Errorf("progress bar did not reach 270/270:\n%s", stderr)
	}
	t.Logf("%d trees, first: %s %s %.2f", len(trees), trees[0].ID, trees[0].Expression.Label, trees[0].Expression.Confidence)
}

func TestAnalyzeAstronautIsHappy(t *testing.T) {
	code, stdout, stderr := edgemo(t, "analyze", testenv.Media(t, "astronaut.png"))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	trees := readTrees(t, stdout)
	if len(trees) == 0 {
		t.Fatalf("no tree for astronaut.png\n%s", stderr)
	}
	for _, tr := range trees {
		e := tr.Expression
		best := ""
		for l, p := range e.Scores {
			if best == "" || p > e.Scores[best] {
				best = l
			}
		}
		if e.Label != "happy" || best != "happy" {
			t.Fatalf("tree %s: label %q, top score %q (%v)", tr.ID, e.Label, best, e.Scores)
		}
		if tr.Emotion.Label != "happiness" {
			t.Fatalf("emotion %q", tr.Emotion.Label)
		}
		t.Logf("%s: happy %.3f; %s", tr.ID, e.Confidence, tr.Emotion.Rationale)
	}
}

// VidEmo on the tiny fixture (random weights, the real contract): every
// window gets a schema-valid tree from the VLM alone, and in tiered mode the
// fast head's trees carry the VLM's levels once they land.
func TestAnalyzeWithVidEmo(t *testing.T) {
	manifest := testenv.Path(t, "models/videmo-tiny/videmo.manifest.json")
	code, stdout, stderr := edgemo(t, "analyze", testenv.Media(t, "astronaut.png"), "--engine", "videmo", "--model", manifest)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	trees := readTrees(t, stdout)
	if len(trees) == 0 {
		t.Fatal("no tree")
	}
	for _, tr := range trees {
		if tr.Source.Engine == "fast-head" || !strings.HasPrefix(tr.Source.Model, "videmo-tiny@") || tr.Emotion == nil || tr.Expression == nil {
			t.Fatalf("tree %s is not VidEmo's: %+v", tr.ID, tr.Source)
		}
	}
	// Paced like a camera, so windows come a second apart and VidEmo's runs
	// land between them (offline, all fast trees can come out first).
	code, stdout, stderr = edgemo(t, "analyze", testenv.Media(t, "astronaut.png"), "--engine", "tiered", "--model", manifest, "--realtime")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	merged := 0
	for _, tr := range readTrees(t, stdout) {
		if tr.Expression.Label != "happy" {
			t.Fatalf("tiered tree %s: the fast head's expression should stay (got %q)", tr.ID, tr.Expression.Label)
		}
		if strings.Contains(tr.Source.Engine, "+") {
			merged++
		}
	}
	if merged == 0 {
		t.Fatal("no tiered tree carries VidEmo's levels")
	}
	// A missing VidEmo manifest names the file.
	code, _, stderr = edgemo(t, "analyze", testenv.Media(t, "astronaut.png"), "--engine", "videmo", "--model", "/nonexistent/videmo.manifest.json")
	if code != 1 || !strings.Contains(stderr, "/nonexistent/videmo.manifest.json") {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
}

// Bad input gives a clear error that names the thing and the fix; nothing
// crashes and nothing is left running.
func TestBadInputsFailClearly(t *testing.T) {
	dir := t.TempDir()
	truncated := filepath.Join(dir, "truncated.avi")
	b, err := os.ReadFile(testenv.Media(t, "Megamind.avi"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, b[:20<<10], 0o644); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage.mp4")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a video "), 4000), 0o644); err != nil {
		t.Fatal(err)
	}
	missingModel := filepath.Join(dir, "nope.manifest.json")
	wrongShape := wrongShapeManifest(t, dir)

	cases := []struct {
		name string
		args []string
		want []string // substrings of the error
	}{
		{"missing video", []string{"analyze", filepath.Join(dir, "nope.avi")}, []string{"nope.avi"}},
		{"garbage video", []string{"analyze", garbage}, []string{"garbage.mp4"}},
		{"truncated video", []string{"analyze", truncated}, []string{"truncated.avi"}},
		{"missing model", []string{"analyze", testenv.Media(t, "astronaut.png"), "--model", missingModel}, []string{"nope.manifest.json", "setup.sh"}},
		{"wrong input shape", []string{"analyze", testenv.Media(t, "astronaut.png"), "--model", wrongShape}, []string{"wrong.onnx", "shape"}},
		{"missing ORT library", []string{"analyze", testenv.Media(t, "astronaut.png"), "--ort-lib", filepath.Join(dir, "libonnxruntime.so.1")}, []string{"libonnxruntime.so.1", "setup.sh"}},
		{"missing cascade", []string{"analyze", testenv.Media(t, "astronaut.png"), "--cascade", filepath.Join(dir, "cascade.xml")}, []string{"cascade.xml"}},
		{"missing streams clip", []string{"bench", "streams", filepath.Join(dir, "cams.mp4")}, []string{"cams.mp4", "setup.sh"}},
		{"bad streams max", []string{"bench", "streams", garbage, "--max", "0"}, []string{"--max 0"}},
		{"bad motion threshold", []string{"analyze", testenv.Media(t, "astronaut.png"), "--motion-threshold", "2"}, []string{"--motion-threshold 2", "(0, 0.99]"}},
		{"bad detect-max-every", []string{"bench", testenv.Media(t, "astronaut.png"), "--detect-every", "4", "--detect-max-every", "2"}, []string{"--detect-max-every 2", "--detect-every (4)"}},
		{"bad detect-region-every", []string{"analyze", testenv.Media(t, "astronaut.png"), "--detect-region-every", "0"}, []string{"--detect-region-every 0", "between 1 and 300"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := noLeaks(t)
			code, _, stderr := edgemo(t, c.args...)
			check()
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s", code, stderr)
			}
			for _, w := range c.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("error does not mention %q:\n%s", w, stderr)
				}
			}
			t.Logf("%s", lastLine(stderr))
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// wrongShapeManifest writes a copy of the emotion manifest whose model file
// is a valid ONNX graph with a 3-channel 32×32 input, i.e. the wrong model.
func wrongShapeManifest(t *testing.T, dir string) string {
	t.Helper()
	onnx := filepath.Join(dir, "wrong.onnx")
	script := testenv.Path(t, "testdata/make_wrong_shape_model.py")
	if out, err := execCommand("/usr/bin/python3", script, onnx); err != nil {
		t.Fatalf("make wrong-shape model: %v\n%s", err, out)
	}
	var m map[string]any
	b, err := os.ReadFile(testenv.Path(t, "models/emotion.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	sum, err := sha256File(onnx)
	if err != nil {
		t.Fatal(err)
	}
	m["files"] = []map[string]string{{"path": "wrong.onnx", "sha256": sum}}
	b, _ = json.MarshalIndent(m, "", "  ")
	p := filepath.Join(dir, "wrong.manifest.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDoctorReportsEverything(t *testing.T) {
	code, stdout, stderr := edgemo(t, "doctor")
	if code != 0 {
		t.Fatalf("doctor failed on a set-up machine: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"opencv", "4.6", "ffmpeg", "libavcodec", "onnxruntime", "1.24", "CPUExecutionProvider", "CUDAExecutionProvider", "model emotion", "emotion@"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, stdout)
		}
	}
	// And a broken setting is reported with its fix, not a crash.
	code, stdout, _ = edgemo(t, "doctor", "--ort-lib", "/nonexistent/libonnxruntime.so")
	if code != 1 || !strings.Contains(stdout, "FAIL") || !strings.Contains(stdout, "fix:") {
		t.Fatalf("doctor with a missing ORT library: exit %d\n%s", code, stdout)
	}
}

// Ctrl-C during a live-paced run stops within a second, exits cleanly, and
// keeps every tree already written.
func TestInterruptKeepsTreesWritten(t *testing.T) {
	check := noLeaks(t)
	out := filepath.Join(t.TempDir(), "trees.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- cmdAnalyze(ctx, []string{testenv.Media(t, "Megamind.avi"), "--realtime", "--out", out, "--progress", "off"}, io.Discard, io.Discard)
	}()
	time.Sleep(7 * time.Second) // Megamind plays for 10.8 s; the first window closes after ~4 s
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("interrupted analyze returned %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("analyze did not stop within 3 s of the interrupt")
	}
	check()
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(readTrees(t, string(b))); n == 0 {
		t.Fatal("no tree kept from the first 7 s")
	} else {
		t.Logf("%d trees kept", n)
	}
}

func execCommand(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

func sha256File(p string) (string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return "", err
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:]), nil
}

func TestBenchVLMOnTheFixture(t *testing.T) {
	t.Chdir(testenv.Root())
	code, stdout, stderr := edgemo(t, "bench", "vlm", "--providers", "cpu", "--tokens", "8", "--frames", "8", "--json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var r struct {
		PrefixTokens  int     `json:"prefix_tokens"`
		PrefillMS     float64 `json:"prefill_ms"`
		DecodeTokens  int     `json:"decode_tokens"`
		DecodeTokPerS float64 `json:"decode_tokens_per_s"`
		LoopOverhead  float64 `json:"loop_overhead"`
	}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	if r.PrefixTokens == 0 || r.PrefillMS <= 0 || r.DecodeTokens != 8 || r.DecodeTokPerS <= 0 || r.LoopOverhead < 1 {
		t.Fatalf("implausible bench result %+v", r)
	}
	t.Logf("%+v", r)
}

func TestVersionNamesEveryComponent(t *testing.T) {
	code, stdout, stderr := edgemo(t, "version")
	if code != 0 {
		t.Fatalf("version: exit %d\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"edgemo       " + version, "commit ", runtime.Version(), runtime.GOARCH, "opencv       4.6.0 (gocv 0.31.0)", "onnxruntime  1.24.1 (" + testenv.ORTLib(t) + ")"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("version output lacks %q:\n%s", want, stdout)
		}
	}
	// A library that does not load is reported on its line; version still works.
	code, stdout, _ = edgemo(t, "version", "--ort-lib", "/nonexistent/libonnxruntime.so")
	if code != 0 || !strings.Contains(stdout, "onnxruntime  not loaded: ") || !strings.Contains(stdout, "/nonexistent/libonnxruntime.so") {
		t.Fatalf("version with a missing ORT library: exit %d\n%s", code, stdout)
	}
}
