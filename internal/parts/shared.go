package parts

import (
	"errors"
	"log/slog"
	"strings"
	"sync"

	"github.com/edgemo/edgemo/engine"
)

// BlazeFace sessions are shared: every camera's detector with the same model
// and runtime settings runs on one ONNX Runtime session, with input and
// output tensors of its own, so cameras still detect in parallel (ORT's Run
// is safe for concurrent use) while the weights and the session's memory
// are held once, not once per camera. Batching the cameras' frames into one
// Run was measured and is not faster on a CPU (docs/performance.md).
var runners = struct {
	sync.Mutex
	m map[runnerKey]*sharedRunner
}{m: map[runnerKey]*sharedRunner{}}

// runnerKey is what makes two sessions differ: the model (with its
// manifest's sha256, so a model converted anew opens a new session) and the
// runtime's settings.
type runnerKey struct {
	model, lib, providers string
	threads               int
	trt                   engine.TensorRTOptions
}

type sharedRunner struct {
	rt    *engine.Runtime
	base  *engine.BlazeFaceRunner
	users int
}

// shareRunner returns a runner of m for one detector, on the session every
// detector with the same settings shares, and the release that closes it
// (the session and its runtime go with the last user). The first user's
// log receives the session's provider choice and fallbacks.
func shareRunner(o Options, m *engine.Manifest, threads int, log *slog.Logger) (*engine.BlazeFaceRunner, func() error, error) {
	key := runnerKey{model: m.ModelPath() + "@" + m.Ref(), lib: o.ORTLib, providers: strings.Join(o.Providers, ","), threads: threads, trt: o.TensorRT}
	runners.Lock()
	defer runners.Unlock()
	sr := runners.m[key]
	if sr == nil {
		rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: o.ORTLib, Providers: o.Providers, IntraOpThreads: threads, TensorRT: o.TensorRT, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		base, err := engine.NewBlazeFaceRunner(rt, m)
		if err != nil {
			return nil, nil, errors.Join(err, rt.Close())
		}
		sr = &sharedRunner{rt: rt, base: base}
		runners.m[key] = sr
	}
	r, err := sr.base.Share()
	if err != nil {
		return nil, nil, err
	}
	sr.users++
	release := sync.OnceValue(func() error {
		err := r.Close()
		runners.Lock()
		defer runners.Unlock()
		if sr.users--; sr.users > 0 {
			return err
		}
		delete(runners.m, key)
		return errors.Join(err, sr.base.Close(), sr.rt.Close())
	})
	return r, release, nil
}
