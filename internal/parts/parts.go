// Package parts builds the shared parts of a run — ONNX Runtime, the analyzer,
// the face detector — from user options, so analyze, bench, doctor and the
// daemon assemble them the same way.
package parts

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/facetrack"
)

// Options are the user-facing knobs shared by commands.
type Options struct {
	Manifest    string   // emotion model: a manifest, or a registry.EmotionModels name (default models/emotion.manifest.json)
	ORTLib      string   // libonnxruntime path (default: $EDGEMO_ORT_LIB, then deps/)
	Providers   []string // execution providers in order (default registry.Providers.Defaults())
	Threads     int      // intra-op threads (default 1: the fast head is small, cameras run in parallel)
	Cascade     string   // Haar cascade (default Debian's frontal face)
	DetectWidth int      // frames wider than this are downscaled for detection (default 640; smaller is faster, misses small faces)
	TensorRT    engine.TensorRTOptions
	Engine      string     // fast (default), videmo or tiered; see vlm.go
	VLM         VLMOptions // the VidEmo model, for engine videmo or tiered

	// Detector is a registry.Detectors name; empty: its default, or haar
	// with a Cascade set (naming a cascade asks for it).
	Detector string
	// ModelsDir holds the face models' manifests (default: the directory
	// of DefaultManifest(), i.e. models/).
	ModelsDir string
	// Heads are the fast analyzer's face heads (registry.Heads names).
	// nil: all of them; empty: none.
	Heads []string
	// OptionalHeads: a head whose model is missing, truncated or does not
	// match its manifest is disabled with a warning instead of failing
	// start-up.
	OptionalHeads bool
	// Precision is a registry.Precisions name (empty: auto): whether the
	// models with an int8 variant (the emotion head, faceres, antispoof) run it.
	Precision string
}

// Detector names (engine/registry holds the one list, with help).
const (
	DetectorBlazeFaceBack  = registry.DetectorBlazeFaceBack
	DetectorBlazeFaceFront = registry.DetectorBlazeFaceFront
	DetectorHaar           = registry.DetectorHaar
)

// AllHeads are the face heads in the order they run.
var AllHeads = registry.Heads.Defaults()

func (o Options) modelsDir() string {
	if o.ModelsDir != "" {
		return o.ModelsDir
	}
	return filepath.Dir(DefaultManifest())
}

// FaceManifest is the path of a face model's manifest (e.g. "facemesh"):
// <models>/<GOARCH>/<name>.manifest.json where the models directory holds
// a variant converted for this architecture (models/arm64: BlazeFace
// without the channel padding that only AVX-512 gains from), else
// <models>/<name>.manifest.json. A release archive carries its own
// architecture's variant in models/ itself.
func (o Options) FaceManifest(name string) string {
	return FaceManifestFor(o.modelsDir(), runtime.GOARCH, name)
}

// FaceManifestFor is FaceManifest for architecture goarch.
func FaceManifestFor(dir, goarch, name string) string {
	if p := filepath.Join(dir, goarch, name+".manifest.json"); fileExists(p) {
		return p
	}
	return filepath.Join(dir, name+".manifest.json")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// DefaultManifest is models/emotion.manifest.json in $EDGEMO_MODELS, the
// working directory, the source checkout it is in (engine.CheckoutRoot),
// or beside the executable (bin/../models, or models/ next to it in a
// release archive); the first that exists.
func DefaultManifest() string {
	const name = "emotion.manifest.json"
	rel := filepath.Join("models", name)
	var cands []string
	if d := os.Getenv("EDGEMO_MODELS"); d != "" {
		cands = append(cands, filepath.Join(d, name))
	}
	cands = append(cands, rel)
	if root := engine.CheckoutRoot(); root != "" {
		cands = append(cands, filepath.Join(root, rel))
	}
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), "..", rel), filepath.Join(filepath.Dir(exe), rel))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return rel
}

// EmotionManifest is the emotion head's manifest for v, a models.emotion or
// --model value: a registry.EmotionModels name ("emotion-int8") stands for
// its manifest beside DefaultManifest(), anything else is a path, empty is
// DefaultManifest() itself.
func EmotionManifest(v string) string {
	if v == "" {
		return DefaultManifest()
	}
	if p, ok := registry.EmotionModels.Get(v); ok {
		return filepath.Join(filepath.Dir(DefaultManifest()), p.Manifest+".manifest.json")
	}
	return v
}

// WithPrecision is the manifest to load for path under p: path itself,
// or, where p is int8 and path is the float32 manifest of a part with an
// int8 variant (models/faceres.manifest.json for age-gender), that
// variant's manifest beside it. A manifest under any other name is the
// user's own model and runs as named. Under auto, a variant that is not
// there (a trimmed models/ folder) leaves the float32 model, with a
// warning; asked for outright, it is an error at load.
func WithPrecision(path string, part registry.Part, p engine.Precision, log *slog.Logger) string {
	if !p.Int8 || part.Int8 == "" || filepath.Base(path) != part.Manifest+".manifest.json" {
		return path
	}
	q := filepath.Join(filepath.Dir(path), part.Int8+".manifest.json")
	if p.Auto && !fileExists(q) {
		if log != nil {
			log.Warn("int8 variant missing: running float32", "model", part.Manifest, "want", q, "fix", "run scripts/setup.sh (scripts/models.sh makes it)")
		}
		return path
	}
	return q
}

// NewDetector opens the face detector the options name. Each camera gets
// its own, so cameras detect in parallel; BlazeFace's sessions are shared
// between them (shareRunner), one intra-op thread each unless Threads says
// otherwise. The first detector's log (nil: slog.Default()) receives the
// sessions' provider choice and fallbacks.
func NewDetector(o Options, log *slog.Logger) (facetrack.Detector, error) {
	if o.Detector == "" && o.Cascade != "" {
		o.Detector = DetectorHaar
	}
	name := o.Detector
	if name == "" {
		name = registry.Detectors.Default()
	}
	part, ok := registry.Detectors.Get(name)
	if !ok {
		return nil, registry.Detectors.Check(name)
	}
	if part.Manifest == "" { // haar: OpenCV's cascade, no ONNX model
		return facetrack.NewHaar(facetrack.HaarConfig{Cascade: o.Cascade, MaxWidth: o.DetectWidth})
	}
	m, err := engine.LoadManifest(o.FaceManifest(part.Manifest))
	if err != nil {
		return nil, fmt.Errorf("detector %s: %w (or choose --detector haar)", name, err)
	}
	threads := o.Threads
	if threads == 0 {
		threads = 1
	}
	if log != nil {
		log = log.With("component", "ort")
	}
	run, release, err := shareRunner(o, m, threads, log)
	if err != nil {
		return nil, err
	}
	shapes, release, err := openShapes(o, part, threads, log, release)
	if err != nil {
		return nil, err
	}
	bf, err := facetrack.NewBlazeFace(run, facetrack.BlazeFaceConfig{Name: name}, shapes...)
	if err != nil {
		return nil, errors.Join(err, release())
	}
	d := &blazeDetector{Detector: bf, bf: bf, release: release}
	if name == DetectorBlazeFaceFront {
		// Its own regions would cost a full frame's Run each: between full
		// detections the tracker predicts instead.
		return d, nil
	}
	// Regions around tracked faces are verified with the front model: a
	// face fills about half of a region, the scale it was trained for, at
	// a quarter of the back model's input.
	if err := d.openRegions(o, threads, log); err != nil {
		return nil, errors.Join(err, d.Close())
	}
	return &regionDetector{d}, nil
}

// openShapes opens part's other input shapes (registry.Part.Shapes) on
// shared sessions and returns them with a release that also calls
// release. A shape whose manifest is missing (a models/ folder from before
// it, or the user's own) is left out with a warning: the square input
// detects the same faces, at a larger Run.
func openShapes(o Options, part registry.Part, threads int, log *slog.Logger, release func() error) ([]facetrack.BlazeFaceModel, func() error, error) {
	var shapes []facetrack.BlazeFaceModel
	releases := []func() error{release}
	all := func() error {
		var errs []error
		for _, r := range releases {
			errs = append(errs, r())
		}
		return errors.Join(errs...)
	}
	for _, name := range part.Shapes {
		path := o.FaceManifest(name)
		if !fileExists(path) {
			l := log
			if l == nil {
				l = slog.Default()
			}
			l.Warn("detector input shape missing: every frame runs on the square input", "detector", part.Name, "want", path, "fix", "run scripts/setup.sh (scripts/models.sh makes it)")
			continue
		}
		m, err := engine.LoadManifest(path)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("detector %s: %w", part.Name, err), all())
		}
		run, rel, err := shareRunner(o, m, threads, log)
		if err != nil {
			return nil, nil, errors.Join(fmt.Errorf("detector %s: %w", part.Name, err), all())
		}
		shapes, releases = append(shapes, run), append(releases, rel)
	}
	return shapes, all, nil
}

// blazeDetector owns one camera's BlazeFace detectors and its hold on
// their shared sessions.
type blazeDetector struct {
	facetrack.Detector // bf, without its DetectRegions
	bf                 *facetrack.BlazeFace
	release            func() error

	regions        *facetrack.BlazeFace // verifies regions (the front model), or nil
	regionsRelease func() error
}

func (d *blazeDetector) Close() error {
	errs := []error{d.bf.Close(), d.release()}
	if d.regions != nil {
		errs = append(errs, d.regions.Close(), d.regionsRelease())
	}
	return errors.Join(errs...)
}

// loadHeads opens the face heads o asks for, in that order. A head that
// fails to load is an error naming its file, or, with OptionalHeads, a
// warning and the head stays off.
func loadHeads(rt *engine.Runtime, o Options, prec engine.Precision, log *slog.Logger) ([]engine.Head, error) {
	names := o.Heads
	if names == nil {
		names = AllHeads
	}
	var heads []engine.Head
	for _, name := range names {
		part, ok := registry.Heads.Get(name)
		if !ok {
			return nil, errors.Join(fmt.Errorf("face %w", registry.Heads.Check(name)), engine.CloseHeads(heads))
		}
		h, err := func() (engine.Head, error) {
			if part.Manifest == "" { // a head with no model
				return engine.OpenHead(part.Name, rt, nil)
			}
			m, err := engine.LoadManifest(WithPrecision(o.FaceManifest(part.Manifest), part, prec, log))
			if err != nil {
				return nil, err
			}
			return engine.OpenHead(part.Name, rt, m)
		}()
		if err != nil {
			if o.OptionalHeads {
				log.Warn("face head disabled: its model cannot be loaded", "head", name, "err", err)
				continue
			}
			return nil, errors.Join(fmt.Errorf("face head %s: %w (or mark heads optional)", name, err), engine.CloseHeads(heads))
		}
		heads = append(heads, h)
	}
	return heads, nil
}

// Models is the ONNX Runtime and the analyzer, shared by all cameras.
type Models struct {
	Runtime  *engine.Runtime
	Analyzer engine.Analyzer // the fast head, VidEmo, or both (tiered)
	Manifest *engine.Manifest
	Provider string
	// Precision is models.precision resolved on this machine.
	Precision engine.Precision
}

// LoadModels loads the runtime and the analyzer, or nothing.
func LoadModels(o Options, log *slog.Logger) (ms *Models, err error) {
	_, named := registry.EmotionModels.Get(o.Manifest) // a name is explicit: no precision applies
	o.Manifest = EmotionManifest(o.Manifest)
	if o.Threads == 0 {
		o.Threads = 1
	}
	ms = &Models{}
	defer func() {
		if err != nil {
			ms.Close()
			ms = nil
		}
	}()
	rt, err := engine.NewRuntime(engine.RuntimeConfig{
		LibraryPath: o.ORTLib, Providers: o.Providers, IntraOpThreads: o.Threads, TensorRT: o.TensorRT,
		Logger: log.With("component", "ort"),
	})
	if err != nil {
		return ms, err
	}
	ms.Runtime = rt
	if ms.Precision, err = rt.ChoosePrecision(o.Precision); err != nil {
		return ms, err
	}
	emotion, _ := registry.EmotionModels.Get(registry.EmotionModels.Default())
	if named {
		emotion.Int8 = ""
	}
	m, err := engine.LoadManifest(WithPrecision(o.Manifest, emotion, ms.Precision, log))
	if err != nil {
		return ms, err
	}
	ms.Manifest = m
	head, err := engine.NewEmotionHead(rt, m)
	if err != nil {
		return ms, err
	}
	ms.Provider = head.Provider()
	heads, err := loadHeads(rt, o, ms.Precision, log)
	if err != nil {
		head.Close()
		return ms, err
	}
	if ms.Analyzer, err = withVLM(rt, engine.NewFastAnalyzer(head, engine.FastConfig{Heads: heads}), o, log); err != nil {
		return ms, err
	}
	log.Info("models ready", "model", m.Ref(), "provider", ms.Provider, "precision", ms.Precision.Why)
	return ms, nil
}

// Close releases the analyzer, then the runtime.
func (ms *Models) Close() error {
	if ms == nil {
		return nil
	}
	var errs []error
	if ms.Analyzer != nil {
		errs = append(errs, ms.Analyzer.Close())
	}
	if ms.Runtime != nil {
		errs = append(errs, ms.Runtime.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close models: %w", err)
	}
	return nil
}

// Stack is one detector plus the models: what a single-source command needs.
type Stack struct {
	*Models
	Detector facetrack.Detector
}

// Build opens the detector and loads the models, or nothing. The detector
// comes first: a typo in a cascade path costs no model load.
func Build(o Options, log *slog.Logger) (*Stack, error) {
	det, err := NewDetector(o, log)
	if err != nil {
		return nil, err
	}
	ms, err := LoadModels(o, log)
	if err != nil {
		det.Close()
		return nil, err
	}
	return &Stack{Models: ms, Detector: det}, nil
}

// Close releases the models and the detector.
func (s *Stack) Close() error {
	if s == nil {
		return nil
	}
	return errors.Join(s.Models.Close(), s.Detector.Close())
}
