package videmo

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/engine"
)

// session is one multi-input ORT session. engine.Runtime.NewSession opens
// single-input/single-output models only, so the runner opens its graphs
// itself, in the environment the runtime loaded, with the same provider
// order and fallback (tried in order, each failure logged).
type session struct {
	s        *ort.DynamicAdvancedSession
	path     string
	provider string
	ins      []ort.InputOutputInfo // in the order Run takes them
	outs     []ort.InputOutputInfo

	runs    int
	runTime time.Duration // summed wall time inside Run
}

func (s *session) run(in, out []ort.Value) error {
	t0 := time.Now()
	err := s.s.Run(in, out)
	s.runTime += time.Since(t0)
	s.runs++
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return nil
}

func (s *session) close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}

// graphInfo reads a graph's declared inputs and outputs.
func graphInfo(path string) (ins, outs []ort.InputOutputInfo, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("%s: missing; run scripts/models.sh", path)
	}
	ins, outs, err = ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a loadable ONNX model: %w", path, err)
	}
	return ins, outs, nil
}

func findIO(list []ort.InputOutputInfo, name string) *ort.InputOutputInfo {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func ioNames(list []ort.InputOutputInfo) string {
	var s []string
	for _, x := range list {
		s = append(s, x.String())
	}
	return strings.Join(s, ", ")
}

// openSession opens path with the named inputs/outputs (in that order),
// trying providers (ORT names) in order.
func openSession(path string, ins, outs []ort.InputOutputInfo, inNames, outNames []string, providers []string, threads int, log *slog.Logger) (*session, error) {
	var inInfo, outInfo []ort.InputOutputInfo
	for _, n := range inNames {
		inInfo = append(inInfo, *findIO(ins, n))
	}
	for _, n := range outNames {
		outInfo = append(outInfo, *findIO(outs, n))
	}
	var errs []error
	for _, p := range providers {
		s, err := trySession(path, inNames, outNames, p, threads)
		if err == nil {
			log.Info("onnxruntime session", "model", path, "provider", p)
			return &session{s: s, path: path, provider: p, ins: inInfo, outs: outInfo}, nil
		}
		log.Warn("execution provider unavailable, falling back", "provider", p, "model", path, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
	}
	return nil, fmt.Errorf("%s: no execution provider could run it (tried %s): %w", path, strings.Join(providers, ", "), errors.Join(errs...))
}

func trySession(path string, inNames, outNames []string, provider string, threads int) (*ort.DynamicAdvancedSession, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if threads > 0 {
		if err := opts.SetIntraOpNumThreads(threads); err != nil {
			return nil, err
		}
	}
	switch provider {
	case engine.ProviderCPU:
	case engine.ProviderCUDA:
		po, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("CUDA provider options: %w", err)
		}
		defer po.Destroy()
		if err := opts.AppendExecutionProviderCUDA(po); err != nil {
			return nil, err
		}
	case engine.ProviderTensorRT:
		po, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return nil, fmt.Errorf("TensorRT provider options: %w", err)
		}
		defer po.Destroy()
		if err := opts.AppendExecutionProviderTensorRT(po); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown provider %s", provider)
	}
	s, err := ort.NewDynamicAdvancedSession(path, inNames, outNames, opts)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return s, nil
}

// shapeSpec checks one declared input/output: element type and rank, and
// each dimension where want >= 0 (a dynamic model dim, -1, matches only a
// negative want).
func checkTensor(path, what string, list []ort.InputOutputInfo, name string, dt ort.TensorElementDataType, want []int64) (*ort.InputOutputInfo, error) {
	x := findIO(list, name)
	if x == nil {
		return nil, fmt.Errorf("%s: model has no %s %q (has %s); the file does not match its manifest", path, what, name, ioNames(list))
	}
	if x.DataType != dt {
		return nil, fmt.Errorf("%s: %s %q is %v, the manifest expects %v", path, what, name, x.DataType, dt)
	}
	if want != nil {
		ok := len(x.Dimensions) == len(want)
		for i := 0; ok && i < len(want); i++ {
			if want[i] >= 0 && x.Dimensions[i] != want[i] {
				ok = false
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s: %s %q has shape %v, the manifest expects %v (-1 = any); the file does not match its manifest", path, what, name, x.Dimensions, want)
		}
	}
	return x, nil
}
