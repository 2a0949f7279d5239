package engine

import (
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// faceModelNames are the converted face-tier models (scripts/models.sh).
var faceModelNames = []string{"blazeface-front", "blazeface-back", "facemesh", "faceres", "antispoof"}

func faceManifest(t testing.TB, name string) *Manifest {
	t.Helper()
	m, err := LoadManifest(filepath.Join(testenv.Root(), "models", name+".manifest.json"))
	if err != nil {
		t.Fatalf("%v (run `scripts/setup.sh --test` first)", err)
	}
	return m
}

func newTestFaceModel(t testing.TB, name string) *FaceModel {
	t.Helper()
	rt := newTestRuntime(t, quietLogger())
	f, err := NewFaceModel(rt, faceManifest(t, name), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// TestFaceModelFidelity compares every converted face model (through ORT)
// with its original TF.js graph on random tensors and on real face crops
// preprocessed by TF.js as @vladmandic/human does, output by output; it also
// checks the Go preprocessing against TF.js's and the whole Go path end to
// end. Tolerance: max abs diff <= 1e-4 on every output.
func TestFaceModelFidelity(t *testing.T) {
	c1, _ := faceCrops(t, "astronaut.png", 0.25, 1)
	c2, _ := faceCrops(t, "messi5.jpg", 0.25, 1)
	crops := append(c1, c2...)
	var images []refImage
	for _, c := range crops {
		im := refImage{W: c.W, H: c.H, RGB: make([]int, 0, c.W*c.H*3)}
		for i := 0; i < c.W*c.H; i++ {
			im.RGB = append(im.RGB, int(c.Pix[3*i+2]), int(c.Pix[3*i+1]), int(c.Pix[3*i]))
		}
		images = append(images, im)
	}
	for _, name := range faceModelNames {
		t.Run(name, func(t *testing.T) {
			f := newTestFaceModel(t, name)
			m := f.Manifest()
			p := m.Preprocessing
			batch := int64(2)
			if m.Input.Shape[0] > 0 {
				batch = m.Input.Shape[0]
			}
			shape := append([]int64{batch}, m.Input.Shape[1:]...)
			per := int(shape[1] * shape[2] * shape[3])
			lo, hi := (p.InputRange[0]+p.Offset)*p.Scale, (p.InputRange[1]+p.Offset)*p.Scale
			rng := rand.New(rand.NewPCG(42, 7))
			rt := refTensor{Shape: shape}
			for range int(batch) * per {
				rt.Data = append(rt.Data, float64(float32(lo+rng.Float64()*(hi-lo))))
			}
			resp := runReference(t, map[string]any{
				"model":   filepath.Join(testenv.Root(), "deps", "human-models", m.Source.Path),
				"tensors": []refTensor{rt},
				"images":  images,
				"preprocess": map[string]any{
					"size": []int64{m.Input.Shape[1], m.Input.Shape[2]}, "rgb": nil, "sub": -p.Offset, "mul": p.Scale,
				},
			})
			refIdx := map[string]int{}
			for i, n := range resp.OutputNames {
				refIdx[n] = i
			}
			outs := m.OutputSpecs()
			pick := func(all [][]float64) [][]float64 {
				t.Helper()
				var r [][]float64
				for _, o := range outs {
					i, ok := refIdx[o.Name]
					if !ok {
						t.Fatalf("TF.js model has no output %q (has %v)", o.Name, resp.OutputNames)
					}
					r = append(r, all[i])
				}
				return r
			}
			worst := map[string]float64{}
			// random tensor: every output
			data := make([]float32, len(rt.Data))
			for i, v := range rt.Data {
				data[i] = float32(v)
			}
			got, err := f.RunInputs(int(batch), func(i int, dst []float32) error {
				copy(dst, data[i*per:(i+1)*per])
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			var refAll [][]float64
			for _, o := range resp.Tensors[0].Outputs {
				refAll = append(refAll, o.Data)
			}
			// per output: max abs diff, and max abs diff over max(1, max |ref|)
			// (outputs in pixels of the model input, e.g. BlazeFace boxes and
			// mesh points up to ~250, are compared relative to their scale)
			absD := make([]float64, len(outs))
			relD := make([]float64, len(outs))
			note := func(o int, got []float32, ref []float64) {
				d := maxAbsDiff(t, got, ref)
				s := 1.0
				for _, v := range ref {
					s = math.Max(s, math.Abs(v))
				}
				absD[o] = math.Max(absD[o], d)
				relD[o] = math.Max(relD[o], d/s)
			}
			for o, ref := range pick(refAll) {
				note(o, got[o], ref)
			}
			// real crops: model on TF.js's input, Go preprocessing, end to end
			for i, c := range crops {
				ref := resp.Images[i]
				if m.Input.Shape[0] == 1 && i > 0 {
					break
				}
				in := make([]float32, len(ref.Input))
				for j, v := range ref.Input {
					in[j] = float32(v)
				}
				got, err := f.RunInputs(1, func(_ int, dst []float32) error { copy(dst, in); return nil })
				if err != nil {
					t.Fatal(err)
				}
				e2e, err := f.Predict([]facetrack.Crop{c})
				if err != nil {
					t.Fatal(err)
				}
				for o, r := range pick(ref.Outputs) {
					note(o, got[o], r)
					note(o, e2e[o], r)
				}
				goIn := make([]float32, f.pp.size())
				if err := f.pp.run(c, goIn); err != nil {
					t.Fatal(err)
				}
				worst["preprocessing"] = math.Max(worst["preprocessing"], maxAbsDiff(t, goIn, ref.Input)/math.Abs(p.Scale))
			}
			for o, spec := range outs {
				t.Logf("%s %s %v vs TF.js %s: max abs diff %.3g, relative to output scale %.3g", name, spec.Name, spec.Shape, resp.Version, absD[o], relD[o])
				if relD[o] > 1e-4 {
					t.Errorf("%s output %s differs from TF.js by %.3g (abs %.3g) > 1e-4", name, spec.Name, relD[o], absD[o])
				}
			}
			t.Logf("%s: Go preprocessing vs TF.js %.3g (relative to scale)", name, worst["preprocessing"])
			if worst["preprocessing"] > 1e-5 {
				t.Errorf("%s: Go preprocessing differs from TF.js by %.3g > 1e-5", name, worst["preprocessing"])
			}
		})
	}
}

func maxAbsDiff(t testing.TB, a []float32, b []float64) float64 {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("length %d vs %d", len(a), len(b))
	}
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-b[i]))
	}
	return d
}

// TestFaceConverterDeterministic: converting each pinned source again gives
// the exact bytes its manifest names (scripts/models.sh relies on it).
func TestFaceConverterDeterministic(t *testing.T) {
	for _, name := range faceModelNames {
		m := faceManifest(t, name)
		out := filepath.Join(t.TempDir(), name+".onnx")
		src := testenv.Path(t, filepath.Join("deps", "human-models", m.Source.Path))
		if b, err := exec.Command("/usr/bin/python3", filepath.Join(testenv.Root(), "scripts", "tfjs2onnx.py"), src, out).CombinedOutput(); err != nil {
			t.Fatalf("tfjs2onnx.py %s: %v\n%s", name, err, b)
		}
		sum, err := FileSHA256(out)
		if err != nil {
			t.Fatal(err)
		}
		if sum != m.Files[0].SHA256 {
			t.Errorf("%s: converted sha256 %s, manifest pins %s", name, sum, m.Files[0].SHA256)
		}
	}
}
