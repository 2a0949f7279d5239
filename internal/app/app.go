// Package app builds the shared parts of a run — ONNX Runtime, the analyzer,
// the face detector — from user options, so every command (analyze, bench,
// later the daemon) assembles them the same way.
package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/facetrack"
)

// Options are the user-facing knobs shared by commands.
type Options struct {
	Manifest    string   // emotion model manifest (default models/emotion.manifest.json)
	ORTLib      string   // libonnxruntime path (default: $EDGEMO_ORT_LIB, then deps/)
	Providers   []string // execution providers in order (default tensorrt, cuda, cpu)
	Threads     int      // intra-op threads (default 1: the fast head is small, cameras run in parallel)
	Cascade     string   // Haar cascade (default Debian's frontal face)
	DetectWidth int      // frames wider than this are downscaled for detection (default 640; smaller is faster, misses small faces)
	TensorRT    engine.TensorRTOptions
	Engine      string     // fast (default), videmo or tiered; see vlm.go
	VLM         VLMOptions // the VidEmo model, for engine videmo or tiered
}

// DefaultManifest finds models/emotion.manifest.json in the working
// directory or a parent of it (tests run in package dirs), or next to the
// executable (bin/../models).
func DefaultManifest() string {
	rel := filepath.Join("models", "emotion.manifest.json")
	var cands []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			cands = append(cands, filepath.Join(d, rel))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), "..", rel))
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return rel
}

// NewDetector opens the face detector the options name. Each camera gets
// its own, so cameras detect in parallel.
func NewDetector(o Options) (facetrack.Detector, error) {
	return facetrack.NewHaar(facetrack.HaarConfig{Cascade: o.Cascade, MaxWidth: o.DetectWidth})
}

// Models is the ONNX Runtime and the analyzer, shared by all cameras.
type Models struct {
	Runtime  *engine.Runtime
	Analyzer engine.Analyzer // the fast head, VidEmo, or both (tiered)
	Manifest *engine.Manifest
	Provider string
}

// LoadModels loads the runtime and the analyzer, or nothing.
func LoadModels(o Options, log *slog.Logger) (ms *Models, err error) {
	if o.Manifest == "" {
		o.Manifest = DefaultManifest()
	}
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
	m, err := engine.LoadManifest(o.Manifest)
	if err != nil {
		return ms, err
	}
	ms.Manifest = m
	rt, err := engine.NewRuntime(engine.RuntimeConfig{
		LibraryPath: o.ORTLib, Providers: o.Providers, IntraOpThreads: o.Threads, TensorRT: o.TensorRT,
		Logger: log.With("component", "ort"),
	})
	if err != nil {
		return ms, err
	}
	ms.Runtime = rt
	head, err := engine.NewEmotionHead(rt, m)
	if err != nil {
		return ms, err
	}
	ms.Provider = head.Provider()
	if ms.Analyzer, err = withVLM(rt, engine.NewFastAnalyzer(head, engine.FastConfig{}), o, log); err != nil {
		return ms, err
	}
	log.Info("models ready", "model", m.Ref(), "provider", ms.Provider)
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
	det, err := NewDetector(o)
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
