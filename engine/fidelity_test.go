package engine

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/internal/testenv"
)

type refTensor struct {
	Shape []int64   `json:"shape"`
	Data  []float64 `json:"data"`
}

type refImage struct {
	W   int   `json:"w"`
	H   int   `json:"h"`
	RGB []int `json:"rgb"`
}

type refResponse struct {
	Backend     string   `json:"backend"`
	Version     string   `json:"version"`
	OutputNames []string `json:"output_names"`
	Tensors     []struct {
		refTensor
		Outputs []refTensor `json:"outputs"`
	} `json:"tensors"`
	Images []struct {
		Input   []float64   `json:"input"`
		Output  []float64   `json:"output"`
		Outputs [][]float64 `json:"outputs"`
	} `json:"images"`
}

// runReference runs scripts/tfjs_reference.mjs (the ORIGINAL TF.js model on
// the TF.js CPU backend) on the request.
func runReference(t *testing.T, req map[string]any) refResponse {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not on PATH: install nodejs (scripts/setup.sh): %v", err)
	}
	testenv.Path(t, "deps/node/node_modules/@tensorflow/tfjs/package.json")
	dir := t.TempDir()
	reqPath, respPath := filepath.Join(dir, "req.json"), filepath.Join(dir, "resp.json")
	b, _ := json.Marshal(req)
	if err := os.WriteFile(reqPath, b, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, filepath.Join(testenv.Root(), "scripts", "tfjs_reference.mjs"), reqPath, respPath)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("tfjs_reference.mjs: %v\n%s", err, out)
	}
	var resp refResponse
	b, err = os.ReadFile(respPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestConversionFidelity compares the converted ONNX model (through ORT)
// with the original TF.js graph model on random tensors and on real face
// crops preprocessed by TF.js the way @vladmandic/human does; it also checks
// the Go preprocessing against TF.js's.
func TestConversionFidelity(t *testing.T) {
	m := emotionManifest(t)
	head := newTestHead(t)

	// deterministic random inputs: normal and uniform[-1, 1], batch 3 each
	rng := rand.New(rand.NewPCG(42, 7))
	var tensors []refTensor
	for kind := range 2 {
		rt := refTensor{Shape: []int64{3, 64, 64, 1}}
		for range 3 * 64 * 64 {
			if kind == 0 {
				rt.Data = append(rt.Data, float64(float32(rng.NormFloat64())))
			} else {
				rt.Data = append(rt.Data, float64(float32(rng.Float64()*2-1)))
			}
		}
		tensors = append(tensors, rt)
	}
	// real crops: astronaut (tight and loose) and messi
	c1, _ := faceCrops(t, "astronaut.png", 0.1, 1)
	c2, _ := faceCrops(t, "astronaut.png", 0.4, 1)
	c3, _ := faceCrops(t, "messi5.jpg", 0.1, 1)
	crops := append(append(c1, c2...), c3...)
	var images []refImage
	for _, c := range crops {
		im := refImage{W: c.W, H: c.H, RGB: make([]int, 0, c.W*c.H*3)}
		for i := 0; i < c.W*c.H; i++ {
			im.RGB = append(im.RGB, int(c.Pix[3*i+2]), int(c.Pix[3*i+1]), int(c.Pix[3*i]))
		}
		images = append(images, im)
	}
	p := m.Preprocessing
	resp := runReference(t, map[string]any{
		"model":   filepath.Join(testenv.Root(), "deps", "human-models", m.Source.Path),
		"tensors": tensors,
		"images":  images,
		"preprocess": map[string]any{
			"size": []int64{m.Input.Shape[1], m.Input.Shape[2]}, "rgb": p.ColorWeights, "sub": -p.Offset, "mul": p.Scale,
		},
	})
	t.Logf("reference: TF.js %s, backend %s", resp.Version, resp.Backend)
	if len(resp.Tensors) != len(tensors) || len(resp.Images) != len(images) {
		t.Fatalf("reference returned %d tensors, %d images", len(resp.Tensors), len(resp.Images))
	}

	run := func(shape []int64, data []float32) []float32 {
		t.Helper()
		in, err := ort.NewTensor(ort.NewShape(shape...), data)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Destroy()
		out, err := ort.NewEmptyTensor[float32](ort.NewShape(shape[0], int64(len(m.Output.Labels))))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Destroy()
		if err := head.sess.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
			t.Fatal(err)
		}
		return append([]float32(nil), out.GetData()...)
	}
	const tol = 1e-4
	worst := 0.0
	for i, rt := range tensors {
		data := make([]float32, len(rt.Data))
		for j, v := range rt.Data {
			data[j] = float32(v)
		}
		d := maxAbsDiff(t, run(rt.Shape, data), resp.Tensors[i].Data)
		t.Logf("random tensor %d (batch 3): max |ONNX - TF.js| = %.3g", i, d)
		worst = math.Max(worst, d)
	}
	worstPre, worstE2E := 0.0, 0.0
	for i, c := range crops {
		ref := resp.Images[i]
		in := make([]float32, len(ref.Input))
		for j, v := range ref.Input {
			in[j] = float32(v)
		}
		d := maxAbsDiff(t, run([]int64{1, 64, 64, 1}, in), ref.Output)
		worst = math.Max(worst, d)
		// Go preprocessing vs TF.js preprocessing
		goIn := make([]float32, head.pp.size())
		if err := head.pp.run(c, goIn); err != nil {
			t.Fatal(err)
		}
		dp := maxAbsDiff(t, goIn, ref.Input)
		worstPre = math.Max(worstPre, dp)
		// whole Go path (preprocess + ORT) vs whole TF.js path
		probs, err := head.Predict(crops[i : i+1])
		if err != nil {
			t.Fatal(err)
		}
		de := maxAbsDiff(t, probs[0], ref.Output)
		worstE2E = math.Max(worstE2E, de)
		t.Logf("crop %d (%dx%d): model diff %.3g, preprocessing diff %.3g, end-to-end diff %.3g", i, c.W, c.H, d, dp, de)
	}
	t.Logf("max abs diff ONNX vs TF.js: model %.3g, preprocessing %.3g, end-to-end %.3g", worst, worstPre, worstE2E)
	if worst > tol {
		t.Errorf("converted model differs from TF.js by %.3g > %g", worst, tol)
	}
	if worstPre > 1e-5 {
		t.Errorf("Go preprocessing differs from TF.js by %.3g > 1e-5", worstPre)
	}
	if worstE2E > tol {
		t.Errorf("Go preprocessing + ONNX differs from TF.js end to end by %.3g > %g", worstE2E, tol)
	}
}
