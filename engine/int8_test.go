package engine

import (
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// int8 variants of the converted models (scripts/quantize_int8.py,
// docs/int8.md). emotion-int8, faceres-int8 and antispoof-int8 are made by
// scripts/models.sh and pinned in their manifests; BlazeFace int8 was not
// adopted, so these tests quantise it themselves from the committed
// calibration table, as models.sh would.

var int8Media = []string{"astronaut.png", "messi5.jpg", "Megamind.avi", "vtest.avi"}

// int8Manifest is name's int8 variant: the registry's Int8 manifest for a
// model that has one (the emotion head, faceres, antispoof), else the fp32 manifest pointed at a model quantised
// into a temporary directory.
func int8Manifest(t testing.TB, name string) *Manifest {
	t.Helper()
	for _, part := range append(append([]registry.Part{}, registry.EmotionModels.Parts...), registry.Heads.Parts...) {
		if part.Manifest == name && part.Int8 != "" { // made by scripts/models.sh
			return faceManifest(t, part.Int8)
		}
	}
	fp := faceManifest(t, name)
	dir := t.TempDir()
	out := filepath.Join(dir, name+"-int8.onnx")
	cmd := exec.Command("/usr/bin/python3", testenv.Path(t, "scripts/quantize_int8.py"), "quantize",
		fp.ModelPath(), testenv.Path(t, "models/int8/"+name+".ranges.json"), out, "--ranges", "percentile")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("quantize %s: %v\n%s", name, err, b)
	}
	sum, err := FileSHA256(out)
	if err != nil {
		t.Fatal(err)
	}
	m := *fp
	m.Name, m.Path = name+"-int8", filepath.Join(dir, name+"-int8.manifest.json")
	m.Files = []ModelFile{{Path: filepath.Base(out), SHA256: sum}}
	return &m
}

func newBlazeFaceFrom(t testing.TB, m *Manifest) (*facetrack.BlazeFace, *BlazeFaceRunner) {
	t.Helper()
	r, err := NewBlazeFaceRunner(newTestRuntime(t, quietLogger()), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	d, err := facetrack.NewBlazeFace(r, facetrack.BlazeFaceConfig{Name: m.Name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d, r
}

// TestInt8ModelsAreFused: ONNX Runtime's CPU provider turns every
// quantised Conv of each int8 model into a QLinearConv and every Add into a
// QLinearAdd (its optimized-model dump, read back by onnx), leaving float
// Convs only where the quantiser kept them (the output heads). A QDQ form
// ORT does not fuse would run every Conv in float between Dequantize and
// Quantize nodes: slower than the fp32 model, however good its ranges.
func TestInt8ModelsAreFused(t *testing.T) {
	newTestRuntime(t, quietLogger()) // loads the ORT library
	for _, name := range []string{"blazeface-back", "blazeface-front", "emotion", "faceres", "antispoof"} {
		t.Run(name, func(t *testing.T) {
			m := int8Manifest(t, name)
			q, o := opCounts(t, m.ModelPath()), optimizedOpCounts(t, m)
			int8Convs, floatConvs := q["int8 weights"], q["Conv"]-q["int8 weights"]
			if int8Convs == 0 || o["QLinearConv"] != int8Convs || o["QLinearAdd"] != q["Add"] || o["Conv"] != floatConvs {
				t.Errorf("quantised model: %d Convs (%d with int8 weights), %d Adds; ORT's optimized graph: %v; want %d QLinearConv, %d QLinearAdd, %d float Conv",
					q["Conv"], int8Convs, q["Add"], o, int8Convs, q["Add"], floatConvs)
			}
			t.Logf("%d QLinearConv, %d QLinearAdd, %d float Conv (heads)", o["QLinearConv"], o["QLinearAdd"], o["Conv"])
		})
	}
}

// optimizedOpCounts is opCounts of the graph ORT's CPU provider runs for
// m (one intra-op thread): its optimized-model dump, after every fusion and
// layout transform.
func optimizedOpCounts(t *testing.T, m *Manifest) map[string]int {
	t.Helper()
	dump := filepath.Join(t.TempDir(), "optimized.onnx")
	opts, err := ort.NewSessionOptions()
	if err != nil {
		t.Fatal(err)
	}
	defer opts.Destroy()
	if err := opts.SetIntraOpNumThreads(1); err != nil {
		t.Fatal(err)
	}
	if err := preciseInt8(opts); err != nil {
		t.Fatal(err)
	}
	if err := opts.SetOptimizedModelFilePath(dump); err != nil {
		t.Fatal(err)
	}
	var outs []string
	for _, o := range m.OutputSpecs() {
		outs = append(outs, o.Name)
	}
	s, err := ort.NewDynamicAdvancedSession(m.ModelPath(), []string{m.Input.Name}, outs, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Destroy()
	return opCounts(t, dump)
}

// opCounts counts an ONNX file's ops by type (any domain: ORT's NCHWc Conv
// counts as Conv), and as "int8 weights" the DequantizeLinear nodes that
// read an int8 initializer, i.e. the quantised Convs.
func opCounts(t *testing.T, path string) map[string]int {
	t.Helper()
	const py = `import collections, json, onnx, sys
m = onnx.load(sys.argv[1]); g = m.graph
i8 = {i.name for i in g.initializer if i.data_type == onnx.TensorProto.INT8}
c = collections.Counter(n.op_type for n in g.node)
c["int8 weights"] = sum(1 for n in g.node if n.op_type == "DequantizeLinear" and n.input[0] in i8)
print(json.dumps(c))`
	b, err := exec.Command("/usr/bin/python3", "-c", py, path).CombinedOutput()
	if err != nil {
		t.Fatalf("count ops of %s: %v\n%s", path, err, b)
	}
	c := map[string]int{}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return c
}

// agreement compares two sets of class probabilities per crop.
type agreement struct {
	n, same      int
	maxLead      float64 // largest lead of a's label over b's where they differ
	maxDiff, sum float64 // largest and summed |a−b| over every class of every crop
}

func compareProbs(a, b [][]float32) agreement {
	var g agreement
	for i := range a {
		g.n++
		ka, kb := argmax32(a[i]), argmax32(b[i])
		if ka == kb {
			g.same++
		} else {
			g.maxLead = max(g.maxLead, float64(a[i][ka]-a[i][kb]))
		}
		for k := range a[i] {
			d := math.Abs(float64(a[i][k] - b[i][k]))
			g.maxDiff, g.sum = max(g.maxDiff, d), g.sum+d
		}
	}
	return g
}

func (g agreement) mean() float64 { return g.sum / float64(g.n*7) }

func (g agreement) String() string {
	return fmt.Sprintf("labels %d/%d the same (largest lead lost %.3f), |Δp| max %.3f mean %.4f", g.same, g.n, g.maxLead, g.maxDiff, g.mean())
}

// cropAndShifted is d's aligned crop of img as the pipeline makes it, and
// the same with the box and keypoints moved one pixel right: the jitter a
// model's or a decoder's change is held against.
func cropAndShifted(t *testing.T, img gocv.Mat, d facetrack.Detection) (crop, shifted facetrack.Crop) {
	t.Helper()
	c, err := facetrack.CropAligned(img, d, 0.25, 192)
	if err != nil {
		t.Fatal(err)
	}
	s, err := facetrack.CropAligned(img, movedRight(d), 0.25, 192)
	if err != nil {
		t.Fatal(err)
	}
	return c, s
}

// movedRight is d with its box and keypoints one pixel to the right.
func movedRight(d facetrack.Detection) facetrack.Detection {
	d.Box.X++
	d.Keypoints = append([]facetrack.Point(nil), d.Keypoints...)
	for k := range d.Keypoints {
		d.Keypoints[k].X++
	}
	return d
}

// int8Crops are the faces blazeface-back finds (score >= 0.5) in every 2nd
// frame of the sample media, aligned as the pipeline aligns them, and the
// same faces with the box and keypoints moved one pixel right: the jitter
// an int8 model's error is held against.
func int8Crops(t *testing.T) (crops, shifted []facetrack.Crop) {
	t.Helper()
	back := newTestBlazeFace(t, "blazeface-back")
	for _, media := range int8Media {
		forEachFrame(t, media, func(i int, img gocv.Mat) {
			if i%2 != 0 {
				return
			}
			dets, err := back.Detect(img)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range dets {
				if d.Score < 0.5 {
					continue
				}
				c, s := cropAndShifted(t, img, d)
				crops, shifted = append(crops, c), append(shifted, s)
			}
		})
	}
	if len(crops) < 50 {
		t.Fatalf("%d faces in the sample media: too few to compare", len(crops))
	}
	return crops, shifted
}

// TestEmotionInt8Agreement: on the faces blazeface-back finds (score >=
// 0.5) in every 2nd frame of the sample media, aligned as the pipeline
// aligns them, the int8 head's class probabilities move less than the fp32
// head's own do when the face box moves by one pixel (a tracker's box moves
// by more between frames): fewer label changes, smaller largest and mean
// |Δp|. The calibration saw megamind-720p.mp4 and the two photos, not
// vtest.avi. Trees over whole windows are compared with scripts/treediff
// (docs/int8.md).
func TestEmotionInt8Agreement(t *testing.T) {
	crops, shifted := int8Crops(t)
	fp := newTestHead(t)
	q, err := NewEmotionHead(newTestRuntime(t, quietLogger()), int8Manifest(t, "emotion"))
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	pf, err := fp.Predict(crops)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := fp.Predict(shifted)
	if err != nil {
		t.Fatal(err)
	}
	pq, err := q.Predict(crops)
	if err != nil {
		t.Fatal(err)
	}
	q8, jitter := compareProbs(pf, pq), compareProbs(pf, ps)
	t.Logf("%d crops; int8 vs fp32: %v", len(crops), q8)
	t.Logf("fp32 vs fp32 on the box moved 1 px: %v", jitter)
	if q8.same < jitter.same || q8.maxDiff >= jitter.maxDiff || q8.mean() >= jitter.mean() {
		t.Errorf("int8 moves the head's answers more than a 1 px box shift does")
	}
}

// TestBlazeFaceInt8Boxes is the check of an int8 detector: on every
// 4th frame of the sample media (and, for the front model, the region of
// each face blazeface-back finds, as region checks run it), the same number
// of detections as fp32 and each box at IoU >= 0.95 with fp32's. Neither
// model meets it (docs/int8.md has the figures, logged here), and both run
// slower in int8 (BenchmarkInt8), so BlazeFace stays fp32; this test keeps
// the measurement repeatable and fails only if it compared nothing.
func TestBlazeFaceInt8Boxes(t *testing.T) {
	back := newTestBlazeFace(t, "blazeface-back")
	for _, name := range []string{"blazeface-back", "blazeface-front"} {
		t.Run(name, func(t *testing.T) {
			fp := newTestBlazeFace(t, name)
			q, _ := newBlazeFaceFrom(t, int8Manifest(t, name))
			var inputs, sameCount, boxes, near, nFP, nQ int
			minIoU := 1.0
			compare := func(a, b []facetrack.Detection) {
				inputs++
				nFP, nQ = nFP+len(a), nQ+len(b)
				if len(a) != len(b) {
					return
				}
				sameCount++
				for j := range a {
					boxes++
					iou := a[j].Box.IoU(b[j].Box)
					minIoU = min(minIoU, iou)
					if iou >= 0.95 {
						near++
					}
				}
			}
			detect := func(d *facetrack.BlazeFace, img gocv.Mat, r []facetrack.Rect) []facetrack.Detection {
				var out []facetrack.Detection
				var err error
				if r == nil {
					out, err = d.Detect(img)
				} else {
					out, err = d.DetectRegions(img, r)
				}
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			for _, media := range int8Media {
				forEachFrame(t, media, func(i int, img gocv.Mat) {
					if i%4 != 0 {
						return
					}
					compare(detect(fp, img, nil), detect(q, img, nil))
					if name != "blazeface-front" {
						return
					}
					for _, d := range detect(back, img, nil) {
						if d.Score >= 0.5 {
							r := []facetrack.Rect{facetrack.Region(facetrack.Track{Box: d.Box})}
							compare(detect(fp, img, r), detect(q, img, r))
						}
					}
				})
			}
			if nFP == 0 {
				t.Fatal("fp32 found no face: nothing compared")
			}
			t.Logf("%d inputs: same count on %d; detections fp32 %d, int8 %d; of %d paired boxes %d at IoU >= 0.95 (min %.2f)",
				inputs, sameCount, nFP, nQ, boxes, near, minIoU)
		})
	}
}

// BenchmarkInt8 times one ORT Run (CPU provider, one intra-op thread) of
// each model in fp32 and int8 on a real input: a letterboxed Megamind
// frame for BlazeFace, aligned crops for the heads at
// batch 1 and 16 (the pipeline batches a window's new crops).
//
//	go test ./engine -run '^$' -bench Int8 -benchtime 2s
func BenchmarkInt8(b *testing.B) {
	var frame gocv.Mat
	forEachFrame(b, "Megamind.avi", func(i int, img gocv.Mat) {
		if i == 100 {
			frame = img.Clone()
		}
	})
	defer frame.Close()
	crops, _ := faceCrops(b, "astronaut.png", 0.25, 16)
	for _, name := range []string{"blazeface-back", "blazeface-front", "emotion", "faceres", "antispoof"} {
		for _, v := range []string{"fp32", "int8"} {
			m := faceManifest(b, name)
			if v == "int8" {
				m = int8Manifest(b, name)
			}
			if strings.HasPrefix(name, "blazeface") {
				b.Run(name+"/"+v, func(b *testing.B) { benchBlazeFaceRun(b, m, frame) })
				continue
			}
			f, err := NewFaceModel(newTestRuntime(b, quietLogger()), m, 16)
			if err != nil {
				b.Fatal(err)
			}
			for _, n := range []int{1, 16} {
				b.Run(fmt.Sprintf("%s/%s/batch%d", name, v, n), func(b *testing.B) {
					in := make([][]float32, n)
					for i := range in {
						in[i] = make([]float32, f.pp.size())
						if err := f.pp.run(crops[i], in[i]); err != nil {
							b.Fatal(err)
						}
					}
					fill := func(i int, dst []float32) error { copy(dst, in[i]); return nil }
					if _, err := f.RunInputs(n, fill); err != nil {
						b.Fatal(err)
					}
					b.ResetTimer()
					for b.Loop() {
						if _, err := f.RunInputs(n, fill); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/run")
				})
			}
			f.Close()
		}
	}
}

// benchBlazeFaceRun times the Run alone: the frame is letterboxed once by
// the detector and the same input tensor is run again each iteration.
func benchBlazeFaceRun(b *testing.B, m *Manifest, frame gocv.Mat) {
	_, r := newBlazeFaceFrom(b, m)
	var in []float32
	rec := &inputRecorder{BlazeFaceRunner: r, keep: func(x []float32) { in = append(in[:0], x...) }}
	bf, err := facetrack.NewBlazeFace(rec, facetrack.BlazeFaceConfig{})
	if err != nil {
		b.Fatal(err)
	}
	defer bf.Close()
	if _, err := bf.Detect(frame); err != nil || len(in) == 0 {
		b.Fatalf("letterbox: %v", err)
	}
	fill := func(dst []float32) error { copy(dst, in); return nil }
	use := func([][]float32) error { return nil }
	b.ResetTimer()
	for b.Loop() {
		if err := r.RunOne(fill, use); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/run")
}

// inputRecorder is a runner that hands each input the detector writes to keep.
type inputRecorder struct {
	*BlazeFaceRunner
	keep func([]float32)
}

func (r *inputRecorder) InferFill(fill func(dst []float32, k, bias float32) error) ([]float32, []float32, error) {
	return r.BlazeFaceRunner.InferFill(func(dst []float32, k, bias float32) error {
		err := fill(dst, k, bias)
		r.keep(dst)
		return err
	})
}
