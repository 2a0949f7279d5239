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

// Stack is a loaded runtime, analyzer and detector. Close releases all.
type Stack struct {
	Runtime  *engine.Runtime
	Analyzer *engine.FastAnalyzer
	Detector facetrack.Detector
	Manifest *engine.Manifest
	Provider string
}

// Build loads everything, or nothing: on error whatever was opened is closed.
func Build(o Options, log *slog.Logger) (st *Stack, err error) {
	if o.Manifest == "" {
		o.Manifest = DefaultManifest()
	}
	if o.Threads == 0 {
		o.Threads = 1
	}
	st = &Stack{}
	defer func() {
		if err != nil {
			st.Close()
			st = nil
		}
	}()
	// Cheap checks first, so a typo costs no model load.
	det, err := facetrack.NewHaar(facetrack.HaarConfig{Cascade: o.Cascade, MaxWidth: o.DetectWidth})
	if err != nil {
		return st, err
	}
	st.Detector = det
	m, err := engine.LoadManifest(o.Manifest)
	if err != nil {
		return st, err
	}
	st.Manifest = m
	rt, err := engine.NewRuntime(engine.RuntimeConfig{
		LibraryPath: o.ORTLib, Providers: o.Providers, IntraOpThreads: o.Threads,
		Logger: log.With("component", "ort"),
	})
	if err != nil {
		return st, err
	}
	st.Runtime = rt
	head, err := engine.NewEmotionHead(rt, m)
	if err != nil {
		return st, err
	}
	st.Provider = head.Provider()
	st.Analyzer = engine.NewFastAnalyzer(head, engine.FastConfig{})
	log.Info("models ready", "model", m.Ref(), "provider", st.Provider, "detector", det.Name())
	return st, nil
}

// Close releases what Build opened, in reverse order.
func (s *Stack) Close() error {
	if s == nil {
		return nil
	}
	var errs []error
	if s.Analyzer != nil {
		errs = append(errs, s.Analyzer.Close())
	}
	if s.Runtime != nil {
		errs = append(errs, s.Runtime.Close())
	}
	if s.Detector != nil {
		errs = append(errs, s.Detector.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close models: %w", err)
	}
	return nil
}
