package engine

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/engine/registry"
)

// EnvORTLib names the environment variable that overrides the ONNX Runtime
// shared library path when the config does not set one.
const EnvORTLib = "EDGEMO_ORT_LIB"

// ORT execution provider names, as ONNX Runtime spells them.
const (
	ProviderTensorRT = "TensorrtExecutionProvider"
	ProviderCUDA     = "CUDAExecutionProvider"
	ProviderCPU      = "CPUExecutionProvider"
)

// DefaultProviders is tried in order when RuntimeConfig.Providers is empty
// (engine/registry holds the one list of providers).
var DefaultProviders = registry.Providers.Defaults()

// ProviderName maps a configured provider ("tensorrt", "cuda", "cpu", an
// alias or ORT's own name) to ORT's name.
func ProviderName(p string) (string, error) {
	if part, ok := registry.Providers.Get(p); ok {
		return part.ORT, nil
	}
	return "", fmt.Errorf("unknown execution provider %q (want %s)", p, registry.Providers.OrNames())
}

// RuntimeConfig configures the ONNX Runtime.
type RuntimeConfig struct {
	// LibraryPath is libonnxruntime.so; empty: $EDGEMO_ORT_LIB, then
	// deps/onnxruntime/libonnxruntime.so.1 under the repository root (found
	// from the working directory upwards), next to the executable or in
	// ../lib beside it (the release archive).
	LibraryPath string
	// Providers in order of preference; each one that cannot be appended or
	// cannot create the session is logged and the next is tried. Empty:
	// DefaultProviders. The list should end in "cpu".
	Providers []string
	// IntraOpThreads per session; 0 lets ORT choose.
	IntraOpThreads int
	// TensorRT tunes the TensorRT provider when it is in Providers.
	TensorRT TensorRTOptions
	// Logger receives fallbacks; nil: slog.Default().
	Logger *slog.Logger
}

// ResolveLibrary returns the ONNX Runtime library to load for configured
// (which may be empty), checking that the file exists.
func ResolveLibrary(configured string) (string, error) {
	notFound := func(p string) error {
		return fmt.Errorf("ONNX Runtime library not found at %s: run scripts/setup.sh or set %s", p, EnvORTLib)
	}
	for _, p := range []string{configured, os.Getenv(EnvORTLib)} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err != nil || st.IsDir() {
			return "", notFound(p)
		}
		return p, nil
	}
	cands := libraryCandidates()
	for _, p := range cands {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", notFound(strings.Join(cands, " or "))
}

// CheckoutRoot is the source checkout the working directory is in (the
// nearest directory above it with a go.mod), or "". Commands run from a
// package directory (go test) or a subdirectory find the checkout's deps/
// and models/ there; an installed binary looks beside itself instead.
func CheckoutRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func libraryCandidates() []string {
	const rel = "deps/onnxruntime/libonnxruntime.so.1"
	var out []string
	if root := CheckoutRoot(); root != "" {
		out = append(out, filepath.Join(root, rel))
	}
	if exe, err := os.Executable(); err == nil {
		d := filepath.Dir(exe)
		// bin/../lib: the release archive's layout (scripts/dist.sh).
		out = append(out, filepath.Join(d, "libonnxruntime.so.1"), filepath.Join(d, "..", "lib", "libonnxruntime.so.1"), filepath.Join(d, rel), filepath.Join(d, "..", rel))
	}
	return out
}

// The onnxruntime_go environment is process-global: one library, one
// OrtEnv. Runtimes share it with a reference count.
var ortEnv struct {
	sync.Mutex
	refs int
	lib  string
}

func acquireEnv(lib string) error {
	ortEnv.Lock()
	defer ortEnv.Unlock()
	if ortEnv.refs > 0 {
		if ortEnv.lib != lib {
			return fmt.Errorf("ONNX Runtime already loaded from %s in this process; cannot also load %s", ortEnv.lib, lib)
		}
		ortEnv.refs++
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	// ORT's own logger prints straight to stderr; every failure we act on
	// (a provider that cannot load, a bad model) comes back as a status and
	// is logged by edgemo with context, so only fatal lines are let through.
	if err := ort.InitializeEnvironment(ort.WithLogLevelFatal()); err != nil {
		return fmt.Errorf("load ONNX Runtime %s: %w (ORT API 24, i.e. ONNX Runtime >= 1.24, is needed; run scripts/setup.sh or set %s)", lib, err, EnvORTLib)
	}
	ortEnv.refs, ortEnv.lib = 1, lib
	return nil
}

func releaseEnv() error {
	ortEnv.Lock()
	defer ortEnv.Unlock()
	if ortEnv.refs == 0 {
		return nil
	}
	ortEnv.refs--
	if ortEnv.refs > 0 {
		return nil
	}
	ortEnv.lib = ""
	return ort.DestroyEnvironment()
}

// Runtime is a handle on the shared ONNX Runtime environment plus the
// session settings. Safe for concurrent use. Close it when done; the
// environment is destroyed when the last Runtime closes.
type Runtime struct {
	cfg       RuntimeConfig
	lib       string
	providers []string // ORT names
	log       *slog.Logger
	once      sync.Once

	servingOnce sync.Once
	serving     string // ServingProvider
}

// NewRuntime resolves and loads the ONNX Runtime library (once per process).
func NewRuntime(cfg RuntimeConfig) (*Runtime, error) {
	provs := cfg.Providers
	if len(provs) == 0 {
		provs = DefaultProviders
	}
	var names []string
	for _, p := range provs {
		n, err := ProviderName(p)
		if err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	if cfg.IntraOpThreads < 0 {
		return nil, fmt.Errorf("intra-op threads must be >= 0, got %d", cfg.IntraOpThreads)
	}
	lib, err := ResolveLibrary(cfg.LibraryPath)
	if err != nil {
		return nil, err
	}
	if err := acquireEnv(lib); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Runtime{cfg: cfg, lib: lib, providers: names, log: log}, nil
}

// Library is the loaded library path.
func (r *Runtime) Library() string { return r.lib }

// Close releases the runtime's reference on the environment. Sessions must be
// closed first.
func (r *Runtime) Close() error {
	var err error
	r.once.Do(func() { err = releaseEnv() })
	return err
}

// providerDown remembers, per ORT library, the providers whose Append
// failed (their shared libraries are missing), so later sessions skip them.
var providerDown sync.Map // "<lib>|<provider>" -> error

// OpenGraph opens any ONNX graph with the named inputs and outputs (in the
// order Run takes them), trying the runtime's providers in order with its
// options (threads, TensorRT). NewSession calls it after checking a
// manifest; multi-graph models (VidEmo) call it per graph.
func (r *Runtime) OpenGraph(path string, inputs, outputs []string) (*ort.DynamicAdvancedSession, string, error) {
	var errs []error
	for _, p := range r.providers {
		if err, down := providerDown.Load(r.lib + "|" + p); down {
			// Known since an earlier model: say so briefly, without the
			// same long error once per model and camera.
			r.log.Info("execution provider unavailable, falling back", "provider", p, "model", path)
			errs = append(errs, fmt.Errorf("%s: %w", p, err.(error)))
			continue
		}
		s, err := r.tryGraph(path, inputs, outputs, p)
		if err == nil {
			r.log.Info("onnxruntime session", "model", path, "provider", p)
			return s, p, nil
		}
		r.log.Warn("execution provider unavailable, falling back", "provider", p, "model", path, "err", err)
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
	}
	return nil, "", fmt.Errorf("%s: no execution provider could run it (tried %s): %w", path, strings.Join(r.providers, ", "), errors.Join(errs...))
}

func (r *Runtime) tryGraph(path string, inputs, outputs []string, provider string) (*ort.DynamicAdvancedSession, error) {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	if r.cfg.IntraOpThreads > 0 {
		if err := opts.SetIntraOpNumThreads(r.cfg.IntraOpThreads); err != nil {
			return nil, err
		}
	}
	if err := preciseInt8(opts); err != nil {
		return nil, err
	}
	if err := appendProvider(opts, provider, r.cfg.TensorRT); err != nil {
		// The provider's libraries cannot load in this process: that will
		// not change for the next model.
		providerDown.Store(r.lib+"|"+provider, err)
		return nil, err
	}
	s, err := ort.NewDynamicAdvancedSession(path, inputs, outputs, opts)
	if err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return s, nil
}

// preciseInt8 asks ORT's CPU provider for int8 products that cannot
// overflow. Without VNNI (AVX2, AVX-512 before Cascade Lake, AMD before
// Zen 4) MLAS's u8s8 kernels add pairs of products in 16 bits, which
// saturate: measured on a Zen 3 EPYC, the int8 BlazeFace found 2844 boxes
// where fp32 found 121. With this entry ORT rewrites int8 weights to uint8
// on those CPUs only, for its exact, slower u8u8 kernels; with VNNI, and
// for float models, it changes nothing.
func preciseInt8(opts *ort.SessionOptions) error {
	if err := opts.AddSessionConfigEntry("session.x64quantprecision", "1"); err != nil {
		return fmt.Errorf("session.x64quantprecision: %w", err)
	}
	return nil
}

// TensorRTOptions are the TensorRT provider settings edgemo exposes. Engine
// building takes minutes on a Jetson, so the cache matters more than any
// other knob: without it every start rebuilds every engine.
type TensorRTOptions struct {
	FP16           bool   // build fp16 engines (Jetson and every RTX GPU run them at about twice fp32)
	EngineCacheDir string // where built engines are kept between runs ("" : no cache)
	// INT8CalibrationTable enables int8 with this calibration table (from
	// TensorRT's calibrator); empty: no int8, since uncalibrated int8 is wrong.
	INT8CalibrationTable string
}

// providerOptions is the ORT key/value form of o.
func (o TensorRTOptions) providerOptions() map[string]string {
	m := map[string]string{}
	if o.FP16 {
		m["trt_fp16_enable"] = "1"
	}
	if o.EngineCacheDir != "" {
		m["trt_engine_cache_enable"] = "1"
		m["trt_engine_cache_path"] = o.EngineCacheDir
		m["trt_timing_cache_enable"] = "1"
		m["trt_timing_cache_path"] = o.EngineCacheDir
	}
	if o.INT8CalibrationTable != "" {
		m["trt_int8_enable"] = "1"
		m["trt_int8_calibration_table_name"] = o.INT8CalibrationTable
	}
	return m
}

// appendProvider appends one provider to opts; the CPU provider is ORT's
// built-in default and needs no append.
func appendProvider(opts *ort.SessionOptions, provider string, trt TensorRTOptions) error {
	switch provider {
	case ProviderCPU:
		return nil
	case ProviderCUDA:
		po, err := ort.NewCUDAProviderOptions()
		if err != nil {
			return fmt.Errorf("CUDA provider options: %w", err)
		}
		defer po.Destroy()
		return opts.AppendExecutionProviderCUDA(po)
	case ProviderTensorRT:
		po, err := ort.NewTensorRTProviderOptions()
		if err != nil {
			return fmt.Errorf("TensorRT provider options: %w", err)
		}
		defer po.Destroy()
		if kv := trt.providerOptions(); len(kv) > 0 {
			if err := po.Update(kv); err != nil {
				return fmt.Errorf("TensorRT provider options %v: %w", kv, err)
			}
		}
		return opts.AppendExecutionProviderTensorRT(po)
	}
	return fmt.Errorf("unknown provider %s", provider)
}

func checkIO(path string, m *Manifest, ins, outs []ort.InputOutputInfo) error {
	find := func(list []ort.InputOutputInfo, name string) *ort.InputOutputInfo {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
		return nil
	}
	names := func(list []ort.InputOutputInfo) string {
		var s []string
		for _, x := range list {
			s = append(s, x.String())
		}
		return strings.Join(s, ", ")
	}
	in := find(ins, m.Input.Name)
	if in == nil {
		return fmt.Errorf("%s: model has no input %q (has %s); the file does not match %s: rerun scripts/setup.sh", path, m.Input.Name, names(ins), m.Path)
	}
	if in.DataType != ort.TensorElementDataTypeFloat {
		return fmt.Errorf("%s: input %q is %v, %s expects float32", path, in.Name, in.DataType, m.Path)
	}
	if !shapeMatches(in.Dimensions, m.Input.Shape) {
		return fmt.Errorf("%s: input %q has shape %v, %s expects %v (-1 = any); the file does not match its manifest: rerun scripts/setup.sh", path, in.Name, in.Dimensions, m.Path, m.Input.Shape)
	}
	for _, o := range m.OutputSpecs() {
		out := find(outs, o.Name)
		if out == nil {
			return fmt.Errorf("%s: model has no output %q (has %s); the file does not match %s: rerun scripts/setup.sh", path, o.Name, names(outs), m.Path)
		}
		if !shapeMatches(out.Dimensions, o.Shape) {
			return fmt.Errorf("%s: output %q has shape %v, %s expects %v (%d labels); the file does not match its manifest: rerun scripts/setup.sh", path, out.Name, out.Dimensions, m.Path, o.Shape, len(o.Labels))
		}
	}
	return nil
}

// shapeMatches: same rank; a negative manifest dim matches anything, a
// positive one must be equal (a dynamic model dim matches only -1).
func shapeMatches(got ort.Shape, want []int64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range want {
		if want[i] >= 0 && got[i] != want[i] {
			return false
		}
	}
	return true
}

// canAppend is nil when provider can be appended to a session's options
// here, the check this build offers that its libraries load.
func canAppend(provider string, trt TensorRTOptions) error {
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return err
	}
	defer opts.Destroy()
	return appendProvider(opts, provider, trt)
}

// ProviderStatus is one execution provider as seen by `edgemo doctor`.
type ProviderStatus struct {
	Name      string `json:"name"`
	Available bool   `json:"available"`
	Error     string `json:"error,omitempty"`
}

// ORTReport describes the loaded ONNX Runtime.
type ORTReport struct {
	Library   string           `json:"library"`
	Version   string           `json:"version"`
	Providers []ProviderStatus `json:"providers"`
}

// ORTInfo loads the runtime (as NewRuntime would) and reports its version and
// which execution providers can be appended to a session. Appending is the
// real check this build offers; a provider that appends may still fail at
// session creation if its own libraries (CUDA, TensorRT) are missing.
func ORTInfo(cfg RuntimeConfig) (*ORTReport, error) {
	r, err := NewRuntime(RuntimeConfig{LibraryPath: cfg.LibraryPath, Providers: []string{"cpu"}, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	defer r.Close()
	rep := &ORTReport{Library: r.lib, Version: ort.GetVersion()}
	for _, part := range registry.Providers.Parts {
		p := part.ORT
		st := ProviderStatus{Name: p}
		if err := canAppend(p, cfg.TensorRT); err != nil {
			st.Error = err.Error()
		} else {
			st.Available = true
		}
		rep.Providers = append(rep.Providers, st)
	}
	return rep, nil
}
