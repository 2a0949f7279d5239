package videmo

import (
	"fmt"
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

// openSession opens path with the named inputs/outputs (in that order)
// through the runtime, which tries its providers in order.
func openSession(rt *engine.Runtime, path string, ins, outs []ort.InputOutputInfo, inNames, outNames []string) (*session, error) {
	var inInfo, outInfo []ort.InputOutputInfo
	for _, n := range inNames {
		inInfo = append(inInfo, *findIO(ins, n))
	}
	for _, n := range outNames {
		outInfo = append(outInfo, *findIO(outs, n))
	}
	s, provider, err := rt.OpenGraph(path, inNames, outNames)
	if err != nil {
		return nil, err
	}
	return &session{s: s, path: path, provider: provider, ins: inInfo, outs: outInfo}, nil
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
