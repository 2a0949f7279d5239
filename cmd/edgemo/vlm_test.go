package main

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/edgemo/edgemo/internal/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binOut  []byte
)

// edgemoBinary builds the real binary once per test run, for tests that run
// it the way a user or an external conformance script does.
func edgemoBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgemo-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "edgemo")
		cmd := exec.Command("go", "build", "-o", binPath, ".")
		binOut, binErr = cmd.CombinedOutput()
	})
	if binErr != nil {
		t.Fatalf("go build: %v\n%s", binErr, binOut)
	}
	return binPath
}

// writeNpyU8 writes a uint8 array as NumPy's .npy format 1.0.
func writeNpyU8(t *testing.T, path string, shape []int, data []byte) {
	t.Helper()
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	h := "{'descr': '|u1', 'fortran_order': False, 'shape': (" + strings.Join(dims, ", ") + "), }"
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(append(b, h...), data...)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// refFrames are a reference case's input frames, uint8 [T, H, W, 3] RGB,
// made by the reference's own formula (testdata/qwen2_5_vl/derive.py).
func refFrames(t *testing.T, T, H, W, seed int) []byte {
	t.Helper()
	dir := testenv.Path(t, "testdata/qwen2_5_vl")
	out := filepath.Join(t.TempDir(), "frames.u8")
	script := "import sys; sys.path.insert(0, sys.argv[1]); import derive; " +
		"derive.synth_frames(*map(int, sys.argv[3:7])).tofile(sys.argv[2])"
	if b, err := exec.Command("/usr/bin/python3", "-c", script, dir, out, strconv.Itoa(T), strconv.Itoa(H), strconv.Itoa(W), strconv.Itoa(seed)).CombinedOutput(); err != nil {
		t.Fatalf("derive.synth_frames: %v\n%s (python3-numpy comes with scripts/setup.sh)", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != T*H*W*3 {
		t.Fatalf("%d frame bytes, want %d", len(b), T*H*W*3)
	}
	return b
}

// `edgemo vlm --json`, as a conformance script runs it, prints for every
// reference model case the reference's preprocessing, prompt ids, 16
// greedy tokens and option-letter distribution (fp32 conversion).
func TestVLMConformanceJSON(t *testing.T) {
	bin := edgemoBinary(t)
	manifest := testenv.Path(t, "models/videmo-tiny-fp32/videmo.manifest.json")
	root := testenv.Path(t, "testdata/qwen2_5_vl/golden/model")
	cases, err := os.ReadDir(root)
	if err != nil || len(cases) == 0 {
		t.Fatalf("no reference model cases in %s: %v", root, err)
	}
	for _, c := range cases {
		t.Run(c.Name(), func(t *testing.T) {
			var ref struct {
				Frames    struct{ T, H, W, Seed int } `json:"frames"`
				Processor struct {
					Grid [3]int `json:"video_grid_thw"`
				} `json:"image_processor"`
				Prompts map[string]struct {
					InputIDs  []int `json:"input_ids"`
					RopeDelta int64 `json:"rope_delta"`
					Greedy    struct {
						Tokens []int `json:"tokens"`
					} `json:"greedy"`
					Options *struct {
						Probs []float64 `json:"probs"`
					} `json:"option_letters"`
				} `json:"prompts"`
			}
			b, err := os.ReadFile(filepath.Join(root, c.Name(), "case.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &ref); err != nil {
				t.Fatal(err)
			}
			f := ref.Frames
			npy := filepath.Join(t.TempDir(), "frames.npy")
			writeNpyU8(t, npy, []int{f.T, f.H, f.W, 3}, refFrames(t, f.T, f.H, f.W, f.Seed))
			for _, q := range []string{"caption", "emotion"} {
				want := ref.Prompts[q]
				// the reference's frames go straight to the image processor: its bounds, 2 fps (every frame sampled)
				cmd := exec.Command(bin, "vlm", "--model", manifest, "--frames", npy, "--fps", "2", "--question", q, "--json",
					"--tokens", "16", "--min-pixels", "3136", "--max-pixels", "12845056", "--ort-lib", testenv.ORTLib(t))
				out, err := cmd.Output()
				if err != nil {
					var stderr []byte
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						stderr = ee.Stderr
					}
					t.Fatalf("edgemo vlm: %v\n%s", err, stderr)
				}
				var got vlmReport
				if err := json.Unmarshal(out, &got); err != nil {
					t.Fatalf("not JSON: %v\n%s", err, out)
				}
				if got.GridTHW != ref.Processor.Grid || len(got.SampledIndices) != f.T || got.SecondPerGridT != 1 {
					t.Errorf("%s: grid %v, %d frames sampled, second_per_grid_t %g; the reference %v, all %d, 1.0",
						q, got.GridTHW, len(got.SampledIndices), got.SecondPerGridT, ref.Processor.Grid, f.T)
				}
				if !slices.Equal(got.InputIDs, want.InputIDs) || got.RopeDelta != want.RopeDelta {
					t.Errorf("%s: prompt ids or rope delta (%d) differ from the reference's (%d)", q, got.RopeDelta, want.RopeDelta)
				}
				if !slices.Equal(got.Tokens, want.Greedy.Tokens) {
					t.Errorf("%s: tokens %v, the reference %v", q, got.Tokens, want.Greedy.Tokens)
				}
				if want.Options != nil {
					if got.Options == nil || len(got.Options.Distribution) != len(want.Options.Probs) {
						t.Fatalf("%s: no option distribution in %s", q, out)
					}
					for i, p := range want.Options.Probs {
						if math.Abs(got.Options.Distribution[i]-p) > 1e-4 {
							t.Errorf("%s: option %s probability %.6f, the reference %.6f", q, got.Options.Letters[i], got.Options.Distribution[i], p)
						}
					}
					if !(got.Options.LetterMass > 0 && got.Options.LetterMass <= 1) {
						t.Errorf("%s: letter mass %g outside (0, 1]", q, got.Options.LetterMass)
					}
				}
			}
		})
	}
}

// Bad frame inputs are refused with the file and the expected format.
func TestVLMBadFrames(t *testing.T) {
	manifest := testenv.Path(t, "models/videmo-tiny-fp32/videmo.manifest.json")
	dir := t.TempDir()
	f32 := filepath.Join(dir, "f32.npy")
	os.WriteFile(f32, []byte("\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4, 4, 3), }          \n"), 0o644)
	short := filepath.Join(dir, "short.npy")
	writeNpyU8(t, short, []int{4, 8, 8, 3}, make([]byte, 100))
	gray := filepath.Join(dir, "gray.npy")
	writeNpyU8(t, gray, []int{4, 8, 8}, make([]byte, 4*8*8))
	for _, c := range []struct{ path, want string }{
		{f32, "dtype is not uint8"},
		{short, "truncated at frame"},
		{gray, "shape [4 8 8]"},
		{filepath.Join(dir, "none.npy"), "no such file"},
		{dir, "no .png files"},
	} {
		code, _, stderr := edgemo(t, "vlm", "--model", manifest, "--frames", c.path, "--fps", "2", "--question", "emotion", "--json")
		if code != 1 || !strings.Contains(stderr, c.want) || !strings.Contains(stderr, c.path) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q with the path", filepath.Base(c.path), code, stderr, c.want)
		}
	}
	ok := filepath.Join(dir, "ok.npy")
	writeNpyU8(t, ok, []int{4, 56, 56, 3}, make([]byte, 4*56*56*3))
	code, _, stderr := edgemo(t, "vlm", "--model", manifest, "--frames", ok, "--fps", "2", "--question", "nope", "--json", "--ort-lib", testenv.ORTLib(t))
	if code != 1 || !strings.Contains(stderr, `--question "nope": not in`) || !strings.Contains(stderr, "emotion") {
		t.Errorf("unknown question: exit %d, %s", code, stderr)
	}
}
