package engine

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gocv.io/x/gocv"

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
// with its original TF.js graph, output by output, on
//   - real inputs, what the product feeds: face crops (astronaut, messi,
//     Megamind frames) preprocessed by TF.js as @vladmandic/human does, the
//     same crops through the Go preprocessing (end to end), and for the
//     BlazeFace detectors whole frames of the sample media letterboxed by
//     facetrack.BlazeFace itself. Tolerance: max ABS diff <= 1e-4 (issue 5).
//     Elements of unit scale (probabilities, the face flag, BlazeFace scores
//     after the decoder's sigmoid) must be within 1e-4 absolute; larger
//     elements (BlazeFace logits reach ~2400 on letterbox padding, boxes and
//     mesh points are input pixels up to ~260) within 1e-4 of their own
//     magnitude, since float32 alone cannot hold 1e-4 absolute there (one
//     ulp at 2048 is 2.4e-4).
//   - a random tensor spanning the input range: max abs diff over
//     max(1, max |ref|) <= 1e-4 (outputs reach thousands here too).
//
// It also checks the Go preprocessing against TF.js's.
func TestFaceModelFidelity(t *testing.T) {
	c1, _ := faceCrops(t, "astronaut.png", 0.25, 1)
	c2, _ := faceCrops(t, "messi5.jpg", 0.25, 1)
	crops := append(c1, c2...)
	crops = append(crops, megamindCrops(t, []int{0, 100, 200})...)
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
			tensors := []refTensor{rt}
			// BlazeFace: real frames, letterboxed as the detector does
			frames := 0
			if strings.HasPrefix(name, "blazeface") {
				for _, in := range letterboxedFrames(t, name) {
					tensors = append(tensors, refTensor{Shape: append([]int64{1}, m.Input.Shape[1:]...), Data: in})
					frames++
				}
			}
			resp := runReference(t, map[string]any{
				"model":   filepath.Join(testenv.Root(), "deps", "human-models", m.Source.Path),
				"tensors": tensors,
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
			run := func(b int, data []float32) [][]float32 {
				t.Helper()
				got, err := f.RunInputs(b, func(i int, dst []float32) error {
					copy(dst, data[i*per:(i+1)*per])
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				return got
			}
			toF32 := func(v []float64) []float32 {
				r := make([]float32, len(v))
				for i, x := range v {
					r[i] = float32(x)
				}
				return r
			}
			refOuts := func(i int) [][]float64 {
				var all [][]float64
				for _, o := range resp.Tensors[i].Outputs {
					all = append(all, o.Data)
				}
				return pick(all)
			}
			absReal := make([]float64, len(outs)) // real inputs: abs
			absRand := make([]float64, len(outs)) // random tensor: abs
			relRand := make([]float64, len(outs)) // random tensor: relative to output scale
			scaleReal := make([]float64, len(outs))
			elemReal := make([]float64, len(outs)) // real inputs: max |diff| / max(1, |ref|) per element
			sigReal := make([]float64, len(outs))  // BlazeFace scores after the sigmoid the decoder applies
			compare := func(o int, got []float32, ref []float64) {
				if len(got) != len(ref) {
					t.Fatalf("length %d vs %d", len(got), len(ref))
				}
				for i, v := range ref {
					d := math.Abs(float64(got[i]) - v)
					scaleReal[o] = math.Max(scaleReal[o], math.Abs(v))
					absReal[o] = math.Max(absReal[o], d)
					elemReal[o] = math.Max(elemReal[o], d/math.Max(1, math.Abs(v)))
					if frames > 0 && outs[o].Shape[len(outs[o].Shape)-1] == 1 {
						sig := func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
						sigReal[o] = math.Max(sigReal[o], math.Abs(sig(float64(got[i]))-sig(v)))
					}
				}
			}
			// random tensor: every output
			got := run(int(batch), toF32(rt.Data))
			for o, ref := range refOuts(0) {
				d := maxAbsDiff(t, got[o], ref)
				s := 1.0
				for _, v := range ref {
					s = math.Max(s, math.Abs(v))
				}
				absRand[o] = math.Max(absRand[o], d)
				relRand[o] = math.Max(relRand[o], d/s)
			}
			// BlazeFace: every real input also goes through the graph in
			// float64 (exact arithmetic), below
			var exact []exactCase
			// real frames (BlazeFace)
			for i := 1; i <= frames; i++ {
				in := toF32(tensors[i].Data)
				got := run(1, in)
				for o, ref := range refOuts(i) {
					compare(o, got[o], ref)
				}
				exact = append(exact, exactCase{in: in, ort: got, tfjs: refOuts(i)})
			}
			// real crops: model on TF.js's input, Go preprocessing, end to end
			worstPre := 0.0
			for i, c := range crops {
				ref := resp.Images[i]
				got := run(1, toF32(ref.Input))
				if frames > 0 {
					exact = append(exact, exactCase{in: toF32(ref.Input), ort: got, tfjs: pick(ref.Outputs)})
				}
				e2e, err := f.Predict([]facetrack.Crop{c})
				if err != nil {
					t.Fatal(err)
				}
				for o, r := range pick(ref.Outputs) {
					compare(o, got[o], r)
					compare(o, e2e[o], r)
				}
				goIn := make([]float32, f.pp.size())
				if err := f.pp.run(c, goIn); err != nil {
					t.Fatal(err)
				}
				worstPre = math.Max(worstPre, maxAbsDiff(t, goIn, ref.Input)/math.Abs(p.Scale))
			}
			var ortExact, tfjsExact, sameGap []float64
			if len(exact) > 0 {
				ortExact, tfjsExact, sameGap = compareExact(t, m, outs, exact)
			}
			for o, spec := range outs {
				if ortExact != nil {
					t.Logf("%s %s vs float64 evaluation of the graph on the same inputs (%d): ONNX Runtime %.3g, TF.js %.3g (per element |diff|/max(1,|exact|)); ONNX Runtime vs TF.js on them %.3g", name, spec.Name, len(exact), ortExact[o], tfjsExact[o], sameGap[o])
					// ONNX Runtime is as exact as TF.js: both run float32
					// with their own summation order, and both round every
					// activation to float32 between layers
					if lim := max(1e-4, 1.5*tfjsExact[o]); ortExact[o] > lim {
						t.Errorf("%s output %s: ONNX Runtime is %.3g from the exact (float64) value of the graph, TF.js %.3g", name, spec.Name, ortExact[o], tfjsExact[o])
					}
					// a gap to TF.js beyond 1e-4 is only allowed where TF.js
					// itself is that far from the exact value
					if sameGap[o] > 1e-4 && tfjsExact[o] <= 1e-4 {
						t.Errorf("%s output %s: %.3g from TF.js on the same inputs while TF.js is within %.3g of the exact value: the conversion, not float32, is off", name, spec.Name, sameGap[o], tfjsExact[o])
					}
				}
				t.Logf("%s %s %v vs TF.js %s: real inputs (%d crops, %d frames, max |ref| %.3g): max abs diff %.3g, per element |diff|/max(1,|ref|) %.3g, after sigmoid %.3g; random tensor: abs %.3g, relative to output scale %.3g",
					name, spec.Name, spec.Shape, resp.Version, len(crops), frames, scaleReal[o], absReal[o], elemReal[o], sigReal[o], absRand[o], relRand[o])
				// Real inputs: abs <= 1e-4 wherever the values are of unit
				// scale (probabilities, the face flag, BlazeFace scores after
				// the sigmoid, every element with |ref| <= 1); elements beyond
				// (BlazeFace logits up to ~2400 on letterbox padding, boxes and
				// mesh points in input pixels up to ~260) to 1e-4 of their own
				// magnitude, since one float32 ulp at 2048 is 2.4e-4.
				if lim := max(1e-4, knownFidelityGap[name]); elemReal[o] > lim || sigReal[o] > 1e-4 {
					t.Errorf("%s output %s differs from TF.js on real inputs: %.3g per element (abs %.3g, after sigmoid %.3g) > 1e-4", name, spec.Name, elemReal[o], absReal[o], sigReal[o])
				}
				if relRand[o] > 1e-4 {
					t.Errorf("%s output %s differs from TF.js on a random tensor by %.3g of its scale > 1e-4 (abs %.3g)", name, spec.Name, relRand[o], absRand[o])
				}
			}
			t.Logf("%s: Go preprocessing vs TF.js %.3g (relative to scale)", name, worstPre)
			if worstPre > 1e-5 {
				t.Errorf("%s: Go preprocessing differs from TF.js by %.3g > 1e-5", name, worstPre)
			}
		})
	}
}

// exactCase is one real input with what ONNX Runtime and TF.js computed
// from it.
type exactCase struct {
	in   []float32
	ort  [][]float32
	tfjs [][]float64
}

// compareExact evaluates the model's graph in float64 (scripts/onnx_f64.py)
// on every case's input and returns, per output, the worst per element
// |diff|/max(1,|exact|) of ONNX Runtime and of TF.js.
// It also returns ONNX Runtime vs TF.js on these same inputs.
func compareExact(t *testing.T, m *Manifest, outs []OutputSpec, cases []exactCase) (ortErr, tfjsErr, gap []float64) {
	t.Helper()
	dir := t.TempDir()
	req := map[string]any{"shape": append([]int64{1}, m.Input.Shape[1:]...)}
	var inputs [][]float32
	for _, c := range cases {
		inputs = append(inputs, c.in)
	}
	req["inputs"] = inputs
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	in, out := filepath.Join(dir, "in.json"), filepath.Join(dir, "out.json")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(filepath.Dir(m.Path), m.Files[0].Path)
	if b, err := exec.Command("/usr/bin/python3", filepath.Join(testenv.Root(), "scripts", "onnx_f64.py"), model, in, out).CombinedOutput(); err != nil {
		t.Fatalf("onnx_f64.py: %v\n%s", err, b)
	}
	var resp struct {
		Outputs map[string][][]float64 `json:"outputs"`
	}
	b, err = os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	ortErr, tfjsErr, gap = make([]float64, len(outs)), make([]float64, len(outs)), make([]float64, len(outs))
	for o, spec := range outs {
		ex, ok := resp.Outputs[spec.Name]
		if !ok {
			ex, ok = resp.Outputs[spec.Name+":0"]
		}
		if !ok || len(ex) != len(cases) {
			t.Fatalf("onnx_f64.py gave no output %s for every input", spec.Name)
		}
		for i, c := range cases {
			for j, e := range ex[i] {
				s := math.Max(1, math.Abs(e))
				ortErr[o] = math.Max(ortErr[o], math.Abs(float64(c.ort[o][j])-e)/s)
				tfjsErr[o] = math.Max(tfjsErr[o], math.Abs(c.tfjs[o][j]-e)/s)
				gap[o] = math.Max(gap[o], math.Abs(float64(c.ort[o][j])-c.tfjs[o][j])/math.Max(1, math.Abs(c.tfjs[o][j])))
			}
		}
	}
	return ortErr, tfjsErr, gap
}

// knownFidelityGap: per element |diff|/max(1,|ref|) a model reaches on real
// inputs beyond the 1e-4 issue 5 asks for. blazeface-back reaches 1.4e-4 on
// regressors and 1.45e-4 on a score logit (1.4e-5 after the sigmoid). The
// float64 evaluation above says whose error that is: on the same inputs
// ONNX Runtime is within 9.9e-5 of the exact value and TF.js 1.42e-4 from
// it (activations of 100-500 in the stride-16 branch cancel into small
// outputs, so float32 summation order alone moves them ~1e-4), and the score
// logit's 1.45e-4 appears only end to end, where the Go and TF.js resizes
// differ by 6e-8 before the same cancellation. This bound keeps it from
// growing; the exact-value checks above catch a real conversion error.
var knownFidelityGap = map[string]float64{"blazeface-back": 1.5e-4}

// megamindCrops: the Haar face crops (margin 0.25, 192 px, as the product
// cuts them) of the given frames of Megamind.avi.
func megamindCrops(t testing.TB, frames []int) []facetrack.Crop {
	t.Helper()
	haar, err := facetrack.NewHaar(facetrack.HaarConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer haar.Close()
	var out []facetrack.Crop
	forEachFrame(t, "Megamind.avi", func(i int, img gocv.Mat) {
		if !slices.Contains(frames, i) {
			return
		}
		dets, err := haar.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dets {
			if d.Score < 0.5 {
				continue
			}
			c, err := facetrack.CropFace(img, d.Box, 0.25, 192)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, c)
		}
	})
	if len(out) == 0 {
		t.Fatal("no Haar face in the chosen Megamind.avi frames")
	}
	return out
}

// recordingModel passes Infer through and keeps each letterboxed input.
type recordingModel struct {
	facetrack.BlazeFaceModel
	inputs [][]byte
}

func (r *recordingModel) Infer(rgb []byte) ([]float32, []float32, error) {
	r.inputs = append(r.inputs, slices.Clone(rgb))
	return r.BlazeFaceModel.Infer(rgb)
}

// letterboxedFrames: the model inputs (preprocessed floats) facetrack.BlazeFace
// builds for the sample images and a few frames of each clip.
func letterboxedFrames(t testing.TB, name string) [][]float64 {
	t.Helper()
	rt := newTestRuntime(t, quietLogger())
	r, err := NewBlazeFaceRunner(rt, faceManifest(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rec := &recordingModel{BlazeFaceModel: r}
	d, err := facetrack.NewBlazeFace(rec, facetrack.BlazeFaceConfig{Name: name})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pick := map[string][]int{"astronaut.png": {0}, "messi5.jpg": {0}, "Megamind.avi": {0, 100, 200}, "vtest.avi": {0}}
	for _, media := range []string{"astronaut.png", "messi5.jpg", "Megamind.avi", "vtest.avi"} {
		forEachFrame(t, media, func(i int, img gocv.Mat) {
			if !slices.Contains(pick[media], i) {
				return
			}
			if _, err := d.Detect(img); err != nil {
				t.Fatal(err)
			}
		})
	}
	var out [][]float64
	for _, in := range rec.inputs {
		v := make([]float64, len(in))
		for i, b := range in {
			v[i] = float64(float32(b)*r.k + r.bias)
		}
		out = append(out, v)
	}
	return out
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

// arm64ModelNames are the face models converted again for arm64
// (models/arm64/: without the AVX-512 channel padding and PRelu rewrite).
var arm64ModelNames = []string{"arm64/blazeface-front", "arm64/blazeface-back", "arm64/facemesh"}

// TestConverterDeterministic: converting each pinned source again (the
// emotion head and every face model, with the converter options its
// manifest lists, and the arm64 variants with theirs) gives the exact bytes
// its manifest names (scripts/models.sh relies on it).
func TestConverterDeterministic(t *testing.T) {
	for _, name := range append(append([]string{"emotion"}, faceModelNames...), arm64ModelNames...) {
		m := faceManifest(t, name)
		out := filepath.Join(t.TempDir(), filepath.Base(name)+".onnx")
		src := testenv.Path(t, filepath.Join("deps", "human-models", m.Source.Path))
		args := append([]string{filepath.Join(testenv.Root(), "scripts", "tfjs2onnx.py"), src, out}, m.Source.ConverterArgs...)
		if b, err := exec.Command("/usr/bin/python3", args...).CombinedOutput(); err != nil {
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
