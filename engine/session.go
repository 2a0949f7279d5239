package engine

import (
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/internal/cpuclock"
)

// Session is one ORT session of one model with the provider that won.
// Run is safe for concurrent use (ORT's Run is), so one Session can serve
// many callers with tensors of their own (FaceModel.Share).
type Session struct {
	sess     *ort.DynamicAdvancedSession
	refs     atomic.Int32 // holders: NewSession's caller and each share; the last Close destroys
	Provider string       // ORT name of the chosen execution provider
	Model    string       // model file
	Inputs   []ort.InputOutputInfo
	Outputs  []ort.InputOutputInfo
}

// Run runs the session with caller-owned tensors.
func (s *Session) Run(inputs, outputs []ort.Value) error {
	runtime.LockOSThread() // one intra-op thread runs on the caller's: its CPU time is the Run's
	t0 := cpuclock.Thread()
	err := s.sess.Run(inputs, outputs)
	runNS.Add(int64(cpuclock.Thread() - t0))
	runtime.UnlockOSThread()
	runCalls.Add(1)
	return err
}

// Every Session.Run of the process, for benchmarks that split CPU time
// into ONNX Runtime and the rest.
var runNS, runCalls atomic.Int64

// RunCPU is the number of Session.Run calls of this process and the CPU
// time of the calling threads in them (with more than one intra-op thread
// the pool's other threads are not counted).
func RunCPU() (calls int64, total time.Duration) {
	return runCalls.Load(), time.Duration(runNS.Load())
}

// share is one more holder of s; each calls Close once.
func (s *Session) share() *Session {
	s.refs.Add(1)
	return s
}

// Close releases the caller's hold and destroys the session with the last
// one.
func (s *Session) Close() error {
	if s == nil || s.sess == nil {
		return nil
	}
	if s.refs.Add(-1) > 0 {
		return nil
	}
	err := s.sess.Destroy()
	s.sess = nil
	return err
}

// NewSession opens m's model file after checking its declared input and
// output against the manifest, trying the configured providers in order.
func (r *Runtime) NewSession(m *Manifest) (*Session, error) {
	path := m.ModelPath()
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("%s: missing; run scripts/setup.sh", path)
	}
	ins, outs, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, fmt.Errorf("%s: not a loadable ONNX model: %w; delete it and run scripts/setup.sh", path, err)
	}
	if err := checkIO(path, m, ins, outs); err != nil {
		return nil, err
	}
	var outNames []string
	for _, o := range m.OutputSpecs() {
		outNames = append(outNames, o.Name)
	}
	sess, provider, err := r.OpenGraph(path, []string{m.Input.Name}, outNames)
	if err != nil {
		return nil, err
	}
	ss := &Session{sess: sess, Provider: provider, Model: path, Inputs: ins, Outputs: outs}
	ss.refs.Store(1)
	return ss, nil
}
