// Command int8calib records the activation ranges scripts/quantize_int8.py
// quantises with: each model's float activations, run through ONNX Runtime
// on the inputs the product gives it.
//
//	go run ./scripts/int8calib [-out models/int8] [-every 3] [-percentile 99.999]
//
// For each of blazeface-back, blazeface-front and the crop heads (emotion,
// faceres, antispoof) it has quantize_int8.py expose write the model with
// every tensor a quantised op reads or writes as an extra output, opens
// that through engine.FaceModel (the manifest's input and preprocessing,
// the extra outputs added) and feeds it:
//   - blazeface-back: frames of the calibration media, letterboxed by
//     facetrack.BlazeFace itself (the detector's own input path);
//   - blazeface-front: the same frames (front as the detector) and, per
//     face blazeface-back finds (score >= 0.5), the region a region check
//     looks in (facetrack.Region), letterboxed likewise;
//   - emotion, faceres and antispoof: those faces' aligned crops
//     (facetrack.CropAligned, the pipeline's margin 0.25 and size 192)
//     through each head's own preprocessing (gray 64x64, RGB 224x224 and
//     128x128).
//
// -only names the models whose tables are written (the others still run:
// the detectors find the crops), so a new model is calibrated without
// rewriting the committed tables of the others.
//
// Two passes: the first finds each tensor's min and max, the second fills a
// histogram between them, from which the lo and hi percentiles come. Both
// are written, per tensor, to <out>/<model>.ranges.json; quantize_int8.py
// --ranges picks one. Percentile is its default: a tensor's max is up to
// 3.6 times its 99.99th percentile here (a few activations on letterbox
// padding and crop edges), and a min/max scale spends most of the 256
// levels on them; on the emotion head 99.999 gave the smallest mean
// probability error of min/max, 99.9, 99.99 and 99.999 (docs/int8.md).
// The output depends only on the models, the media and
// ONNX Runtime's float results, and is committed: scripts/models.sh
// quantises from the committed table, so its bytes do not depend on the
// machine that runs it.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/facetrack"
)

// The calibration media: the bench clip and the two sample photos. vtest.avi
// is left out, so the accuracy test has one clip the ranges never saw.
var media = []string{"deps/streams/megamind-720p.mp4", "deps/media/astronaut.png", "deps/media/messi5.jpg"}

const (
	cropMargin = 0.25 // config.DefaultCropMargin
	cropSize   = 192  // config.DefaultCropSize
	minFace    = 0.5  // the tracker's high threshold: faces it would track
)

func main() {
	root := engine.CheckoutRoot()
	out := flag.String("out", filepath.Join(root, "models", "int8"), "directory for <model>.ranges.json")
	models := flag.String("models", filepath.Join(root, "models"), "directory of the fp32 manifests")
	every := flag.Int("every", 3, "use one video frame in this many")
	pct := flag.Float64("percentile", 99.999, "hi = this percentile of a tensor's values, lo = 100 minus it")
	lib := flag.String("ort", "", "libonnxruntime.so (default: as edgemo finds it)")
	only := flag.String("only", "", "comma-separated models whose ranges to write (default: all of "+strings.Join(allModels(), ", ")+")")
	flag.Parse()
	write, err := selectModels(*only)
	if err == nil {
		err = run(root, *models, *out, *lib, *every, *pct, write)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "int8calib:", err)
		os.Exit(1)
	}
}

// cropModels are the heads calibrated on aligned face crops.
var cropModels = []string{"emotion", "faceres", "antispoof"}

func allModels() []string {
	return append([]string{"blazeface-back", "blazeface-front"}, cropModels...)
}

// selectModels parses -only: the named models, each one int8calib knows.
func selectModels(only string) (map[string]bool, error) {
	all := allModels()
	write := map[string]bool{}
	if only == "" {
		for _, m := range all {
			write[m] = true
		}
		return write, nil
	}
	for _, m := range strings.Split(only, ",") {
		if !slices.Contains(all, m) {
			return nil, fmt.Errorf("-only %s: no model %q; the models are %s", only, m, strings.Join(all, ", "))
		}
		write[m] = true
	}
	return write, nil
}

func run(root, models, out, lib string, every int, pct float64, write map[string]bool) error {
	if every < 1 || !(pct > 50 && pct <= 100) {
		return fmt.Errorf("-every %d must be >= 1 and -percentile %g in (50, 100]", every, pct)
	}
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: lib, Providers: []string{"cpu"}, IntraOpThreads: 1})
	if err != nil {
		return err
	}
	defer rt.Close()
	tmp, err := os.MkdirTemp("", "int8calib")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	open := func(name string) (*tapped, error) {
		return openTapped(rt, root, filepath.Join(models, name+".manifest.json"), tmp)
	}
	back, err := open("blazeface-back")
	if err != nil {
		return err
	}
	defer back.f.Close()
	front, err := open("blazeface-front")
	if err != nil {
		return err
	}
	defer front.f.Close()
	var heads []*tapped
	for _, name := range cropModels {
		h, err := open(name)
		if err != nil {
			return err
		}
		defer h.f.Close()
		heads = append(heads, h)
	}
	backDet, err := facetrack.NewBlazeFace(back, facetrack.BlazeFaceConfig{Name: "blazeface-back"})
	if err != nil {
		return err
	}
	defer backDet.Close()
	frontDet, err := facetrack.NewBlazeFace(front, facetrack.BlazeFaceConfig{Name: "blazeface-front"})
	if err != nil {
		return err
	}
	defer frontDet.Close()

	// pass 1: the real inputs, each tensor's min and max
	var crops []facetrack.Crop
	frames := 0
	for _, m := range media {
		err := eachFrame(filepath.Join(root, m), every, func(img gocv.Mat) error {
			frames++
			dets, err := backDet.Detect(img)
			if err != nil {
				return err
			}
			if _, err := frontDet.Detect(img); err != nil {
				return err
			}
			for _, d := range dets {
				if d.Score < minFace {
					continue
				}
				if _, err := frontDet.DetectRegions(img, []facetrack.Rect{facetrack.Region(facetrack.Track{Box: d.Box})}); err != nil {
					return err
				}
				c, err := facetrack.CropAligned(img, d, cropMargin, cropSize)
				if err != nil {
					return err
				}
				crops = append(crops, c)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
	}
	if len(crops) == 0 {
		return errors.New("no face in the calibration media: nothing to calibrate the crop heads on")
	}
	for _, h := range heads {
		if err := h.predictAll(crops, (*stats).minmax); err != nil {
			return err
		}
	}
	// pass 2: the same inputs again, into histograms
	for _, t := range []*tapped{back, front} {
		for _, in := range t.inputs {
			if err := t.replay(in); err != nil {
				return err
			}
		}
	}
	for _, h := range heads {
		if err := h.predictAll(crops, (*stats).hist); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	for _, t := range append([]*tapped{back, front}, heads...) {
		if !write[t.m.Name] {
			continue
		}
		n := len(t.inputs)
		if slices.Contains(heads, t) {
			n = len(crops)
		}
		p := filepath.Join(out, t.m.Name+".ranges.json")
		if err := t.write(p, n, frames, every, pct); err != nil {
			return err
		}
		fmt.Printf("%s: %d inputs, %d tensors\n", p, n, len(t.stats))
	}
	return nil
}

// eachFrame calls fn on every every-th frame of a video, or once for an image.
func eachFrame(path string, every int, fn func(gocv.Mat) error) error {
	if ext := filepath.Ext(path); ext == ".png" || ext == ".jpg" {
		img := gocv.IMRead(path, gocv.IMReadColor)
		defer img.Close()
		if img.Empty() {
			return errors.New("cannot decode")
		}
		return fn(img)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return err
	}
	defer vc.Close()
	img := gocv.NewMat()
	defer img.Close()
	for i := 0; vc.Read(&img) && !img.Empty(); i++ {
		if i%every == 0 {
			if err := fn(img); err != nil {
				return fmt.Errorf("frame %d: %w", i, err)
			}
		}
	}
	return nil
}

// tapped is one model with its exposed tensors as extra outputs. For
// BlazeFace it is the detector's model (facetrack.BlazeFaceFiller): it
// keeps each input the detector writes and answers with the real outputs.
type tapped struct {
	m      *engine.Manifest
	f      *engine.FaceModel
	own    int      // the model's own outputs, first
	stats  []*stats // per extra output
	names  []string
	sha    string
	inputs [][]float32 // BlazeFace inputs, for pass 2
	pass   func(*stats, []float32)

	size         int
	k, bias      float32
	logits, regs []float32
}

func openTapped(rt *engine.Runtime, root, manifest, tmp string) (*tapped, error) {
	m, err := engine.LoadManifest(manifest)
	if err != nil {
		return nil, err
	}
	exposed := filepath.Join(tmp, m.Name+".onnx")
	cmd := exec.Command("/usr/bin/python3", filepath.Join(root, "scripts", "quantize_int8.py"), "expose", m.ModelPath(), exposed)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: expose: %w\n%s", m.Name, err, b)
	}
	_, outs, err := ort.GetInputOutputInfo(exposed)
	if err != nil {
		return nil, err
	}
	own := m.OutputSpecs()
	t := &tapped{m: m, own: len(own), pass: (*stats).minmax}
	t.sha, err = engine.FileSHA256(m.ModelPath())
	if err != nil {
		return nil, err
	}
	x := *m // the manifest with the exposed model and its outputs
	x.Path = filepath.Join(tmp, m.Name+".manifest.json")
	x.Files = []engine.ModelFile{{Path: m.Name + ".onnx"}}
	x.Output, x.Outputs = engine.OutputSpec{}, slices.Clone(own)
	for _, o := range outs {
		if slices.ContainsFunc(own, func(s engine.OutputSpec) bool { return s.Name == o.Name }) {
			continue
		}
		shape := slices.Clone([]int64(o.Dimensions))
		x.Outputs = append(x.Outputs, engine.OutputSpec{Name: o.Name, Shape: shape})
		t.names = append(t.names, o.Name)
		t.stats = append(t.stats, &stats{lo: float32(math.Inf(1)), hi: float32(math.Inf(-1))})
	}
	if t.f, err = engine.NewFaceModel(rt, &x, 16); err != nil {
		return nil, err
	}
	if s := m.Input.Shape; s[0] == 1 && s[1] == s[2] && s[3] == 3 {
		p := m.Preprocessing // as engine.BlazeFaceRunner maps bytes to values
		t.size = int(s[1])
		t.k = float32((p.InputRange[1] - p.InputRange[0]) / 255 * p.Scale)
		t.bias = float32((p.InputRange[0] + p.Offset) * p.Scale)
	}
	return t, nil
}

func (t *tapped) record(outs [][]float32) {
	for i, s := range t.stats {
		t.pass(s, outs[t.own+i])
	}
}

// InputSize implements facetrack.BlazeFaceModel.
func (t *tapped) InputSize() (w, h int) { return t.size, t.size }

// Infer implements facetrack.BlazeFaceModel (unused: InferFill is taken).
func (t *tapped) Infer([]byte) ([]float32, []float32, error) {
	return nil, nil, errors.New("int8calib: the detector fills its input itself")
}

// InferFill implements facetrack.BlazeFaceFiller: the detector's input is
// kept for pass 2 and its outputs returned as engine.BlazeFaceRunner does
// (score and regressor pairs, the fine grid first).
func (t *tapped) InferFill(fill func(dst []float32, k, bias float32) error) ([]float32, []float32, error) {
	err := t.f.RunOne(func(dst []float32) error {
		if err := fill(dst, t.k, t.bias); err != nil {
			return err
		}
		t.inputs = append(t.inputs, slices.Clone(dst))
		return nil
	}, func(outs [][]float32) error {
		t.logits, t.regs = t.logits[:0], t.regs[:0]
		for i := 0; i < t.own; i += 2 {
			t.logits = append(t.logits, outs[i]...)
			t.regs = append(t.regs, outs[i+1]...)
		}
		t.record(outs)
		return nil
	})
	return t.logits, t.regs, err
}

// replay runs a kept input again, into the histograms.
func (t *tapped) replay(in []float32) error {
	t.pass = (*stats).hist
	return t.f.RunOne(func(dst []float32) error { copy(dst, in); return nil }, func(outs [][]float32) error {
		t.record(outs)
		return nil
	})
}

// predictAll runs every crop through the head, 16 at a time, into pass.
func (t *tapped) predictAll(crops []facetrack.Crop, pass func(*stats, []float32)) error {
	t.pass = pass
	for i := 0; i < len(crops); i += 16 {
		outs, err := t.f.Predict(crops[i:min(i+16, len(crops))])
		if err != nil {
			return fmt.Errorf("%s: %w", t.m.Name, err)
		}
		t.record(outs)
	}
	return nil
}

// rangesFile is <model>.ranges.json, read by quantize_int8.py.
type rangesFile struct {
	Model        string            `json:"model"`
	Source       string            `json:"source"`
	SourceSHA256 string            `json:"source_sha256"`
	Media        []string          `json:"media"`
	Every        int               `json:"every"`
	Frames       int               `json:"frames"`
	Inputs       int               `json:"inputs"`
	Percentile   float64           `json:"percentile"`
	Tensors      map[string]tRange `json:"tensors"`
}

type tRange struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
	Lo  float64 `json:"lo"`
	Hi  float64 `json:"hi"`
}

func (t *tapped) write(path string, inputs, frames, every int, pct float64) error {
	f := rangesFile{Model: t.m.Name, Source: filepath.Base(t.m.ModelPath()), SourceSHA256: t.sha, Media: media,
		Every: every, Frames: frames, Inputs: inputs, Percentile: pct, Tensors: map[string]tRange{}}
	for i, s := range t.stats {
		if s.n == 0 {
			return fmt.Errorf("%s: tensor %s: no values recorded", t.m.Name, t.names[i])
		}
		lo, hi := s.percentile(1-pct/100), s.percentile(pct/100)
		f.Tensors[t.names[i]] = tRange{Min: float64(s.lo), Max: float64(s.hi), Lo: float64(lo), Hi: float64(hi)}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
