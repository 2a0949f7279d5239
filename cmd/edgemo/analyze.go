package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/parts"
	"github.com/edgemo/edgemo/internal/pipeline"
	"github.com/edgemo/edgemo/internal/progress"
	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/window"
)

// modelFlags are shared by analyze and bench.
type modelFlags struct {
	manifest, ortLib, providers, cascade, logLevel string
	engine, tokenizer                              string
	threads, detectWidth, questionBatch            int
	captionTokens                                  int
	detector, heads, precision                     string
	optionalHeads                                  bool
	remote, remoteModel                            string
	remoteTopLogprobs                              int
	remoteInference                                bool
}

func (m *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&m.engine, "engine", "fast", "fast (emotion head), videmo (VidEmo on every window) or tiered (both, VidEmo scheduled)")
	fs.StringVar(&m.manifest, "model", "", "model manifest: the emotion head's for --engine fast (default models/emotion.manifest.json), or its name: "+registry.EmotionModels.Help()+"; VidEmo's for videmo/tiered")
	fs.StringVar(&m.tokenizer, "tokenizer", "", "VidEmo: tokenizer.json (default: beside the manifest)")
	fs.IntVar(&m.questionBatch, "question-batch", 1, "VidEmo: closed-set questions per decoder Run (1: one each; more pays on a GPU, see `edgemo bench vlm`)")
	fs.IntVar(&m.captionTokens, "caption-tokens", 0, "VidEmo: the caption's (rationale's) budget in new tokens, up to 4096 (0: the manifest's max_new_tokens; VidEmo's evaluation uses up to 2048)")
	fs.StringVar(&m.remote, "remote", "", "VidEmo: run it on this OpenAI-compatible server (http://host:port/v1: vLLM, SGLang, edgemo serve) instead of here; --model is then the served model's manifest; needs --remote-inference")
	fs.StringVar(&m.remoteModel, "remote-model", "", "VidEmo --remote: the served model's name (default: the manifest's name); the bearer token comes from $EDGEMO_VIDEMO_API_KEY")
	fs.IntVar(&m.remoteTopLogprobs, "remote-top-logprobs", 20, "VidEmo --remote: first-token logprobs asked per closed-set question (the option letters must be among them to be read exactly)")
	fs.BoolVar(&m.remoteInference, "remote-inference", false, "allow --remote to send face crops to the server (privacy.remote_inference)")
	fs.StringVar(&m.ortLib, "ort-lib", "", "ONNX Runtime library (default $EDGEMO_ORT_LIB, then deps/onnxruntime/libonnxruntime.so.1)")
	m.providers = strings.Join(registry.Providers.Defaults(), ",")
	fs.Var(partFlag{&m.providers, registry.Providers, true}, "providers", "execution `providers`, in order of preference: "+registry.Providers.Help())
	fs.IntVar(&m.threads, "threads", 1, "ONNX Runtime intra-op threads")
	fs.StringVar(&m.cascade, "cascade", "", "Haar cascade file (default Debian opencv-data's frontal face)")
	fs.IntVar(&m.detectWidth, "detect-width", 640, "downscale wider frames to this width for face detection (smaller: faster, misses small faces)")
	fs.StringVar(&m.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.Var(partFlag{&m.detector, registry.Detectors, false}, "detector", "face `detector`: "+registry.Detectors.Help())
	m.heads = strings.Join(registry.Heads.Defaults(), ",")
	fs.Var(partFlag{&m.heads, registry.Heads, true}, "heads", "face `heads` beside the emotion head, comma-separated (none for no heads): "+registry.Heads.Help())
	m.precision = registry.Precisions.Default()
	fs.Var(partFlag{&m.precision, registry.Precisions, false}, "precision", "`precision` of the emotion head, faceres and antispoof: "+registry.Precisions.Help())
	fs.BoolVar(&m.optionalHeads, "optional-heads", false, "disable a face head whose model is missing or broken (with a warning) instead of failing")
}

// partFlag is a flag naming registered parts (one, or a comma-separated
// list): an unknown name fails flag parsing, for every command that shares
// modelFlags, with the known names and their help.
type partFlag struct {
	p     *string
	list  registry.List
	multi bool // comma-separated; "none" for no parts
}

func (f partFlag) String() string {
	if f.p == nil {
		return ""
	}
	return *f.p
}

func (f partFlag) Set(v string) error {
	names := []string{v}
	if f.multi {
		names = splitList(v)
	}
	for _, n := range names {
		if f.multi && n == "none" {
			continue
		}
		if err := f.list.Check(n); err != nil {
			return err
		}
	}
	*f.p = v
	return nil
}

func (m *modelFlags) options() parts.Options {
	o := parts.Options{Manifest: m.manifest, ORTLib: m.ortLib, Providers: splitList(m.providers), Threads: m.threads, Cascade: m.cascade, DetectWidth: m.detectWidth, Engine: m.engine,
		Detector: m.detector, Heads: []string{}, OptionalHeads: m.optionalHeads, Precision: m.precision}
	for _, h := range splitList(m.heads) {
		if h != "none" {
			o.Heads = append(o.Heads, h)
		}
	}
	if m.engine != parts.EngineFast {
		o.Manifest, o.VLM = "", parts.VLMOptions{Manifest: m.manifest, Tokenizer: m.tokenizer, QuestionBatch: m.questionBatch, CaptionTokens: m.captionTokens,
			Remote:          parts.RemoteOptions{URL: m.remote, Model: m.remoteModel, APIKey: os.Getenv("EDGEMO_VIDEMO_API_KEY"), TopLogprobs: m.remoteTopLogprobs},
			RemoteInference: m.remoteInference}
	}
	return o
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// pipelineFlags are the per-camera knobs.
type pipelineFlags struct {
	camera                string
	fps, windowFPS        float64
	length, stride, every int
	realtime              bool
	deblock               string
	sched                 facetrack.ScheduleConfig
}

func (p *pipelineFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&p.camera, "camera", "cam", "camera name used in tree ids")
	fs.Float64Var(&p.fps, "fps", 0, "cap on frames/s read from the source (0: native)")
	fs.Float64Var(&p.windowFPS, "window-fps", 4, "crops per second kept per track")
	fs.IntVar(&p.length, "window-length", 8, "crops per window")
	fs.IntVar(&p.stride, "window-stride", 4, "crops between window starts")
	fs.IntVar(&p.every, "detect-every", 1, "run the face detector every Nth frame")
	fs.BoolVar(&p.realtime, "realtime", false, "pace a file at its native rate and drop frames like a live source")
	fs.StringVar(&p.deblock, "deblock", registry.Deblocking.Default(), "H.264/HEVC loop filter: "+registry.Deblocking.Help())
	fs.BoolVar(&p.sched.Adaptive, "adaptive", true, "adaptive detection: full-frame detection less often while faces are steady, regions around them in between")
	fs.IntVar(&p.sched.MaxEvery, "detect-max-every", config.DefaultDetectMaxEvery, "adaptive detection: the longest interval between full detections")
	fs.IntVar(&p.sched.RegionEvery, "detect-region-every", config.DefaultDetectRegionEvery, "adaptive detection: verify tracked faces in their regions on one frame in N between full detections (1: every frame)")
	fs.BoolVar(&p.sched.Motion, "motion-gate", true, "skip detection while no face is tracked and nothing moves")
	fs.Float64Var(&p.sched.MotionThreshold, "motion-threshold", config.DefaultMotionThreshold, "motion gate: fraction of the frame that must change")
	fs.Float64Var(&p.sched.MotionOutside, "motion-outside", config.DefaultMotionOutside, "adaptive detection: fraction of the frame outside tracked faces whose change forces a full detection")
}

// parse parses args into fs (whose flags include p's) and checks p:
// errUsage for what the flag package rejects, a named error for a value out
// of range.
func (p *pipelineFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	return p.check()
}

// check names the flag and its range for the detection-schedule flags, in
// the bounds the config keys have (a wrong value would otherwise be named
// by the scheduler's field, MotionThreshold, not by --motion-threshold).
func (p *pipelineFlags) check() error {
	if err := registry.Deblocking.Check(p.deblock); err != nil {
		return fmt.Errorf("--deblock: %w", err)
	}
	if p.sched.MaxEvery < p.every || p.sched.MaxEvery > config.MaxDetectEvery {
		return fmt.Errorf("--detect-max-every %d: must be between --detect-every (%d) and %d", p.sched.MaxEvery, p.every, config.MaxDetectEvery)
	}
	if p.sched.RegionEvery < 1 || p.sched.RegionEvery > config.MaxDetectEvery {
		return fmt.Errorf("--detect-region-every %d: must be between 1 and %d", p.sched.RegionEvery, config.MaxDetectEvery)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"--motion-threshold", p.sched.MotionThreshold}, {"--motion-outside", p.sched.MotionOutside}} {
		if !(f.v > 0 && f.v <= config.MaxMotionFraction) {
			return fmt.Errorf("%s %g: must be a fraction of the frame in (0, %g]", f.name, f.v, config.MaxMotionFraction)
		}
	}
	return nil
}

func (p *pipelineFlags) config(source string) pipeline.Config {
	return pipeline.Config{
		Camera:      p.camera,
		Source:      capture.Config{Source: source, FPS: p.fps, Realtime: p.realtime, Deblock: p.deblock},
		Window:      window.Config{FPS: p.windowFPS, Length: p.length, Stride: p.stride},
		DetectEvery: p.every,
		Schedule:    p.sched,
	}
}

func cmdAnalyze(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analyze", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelFlags
	var pf pipelineFlags
	mf.register(fs)
	pf.register(fs)
	out := fs.String("out", "-", "JSON Lines output file, appended (- for stdout)")
	prog := fs.String("progress", "auto", "progress bar on stderr: auto, on or off")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: edgemo analyze <source> [flags]\n\nsource: video file, image, /dev/videoN or index, rtsp:// or http:// URL, GStreamer pipeline")
		fs.PrintDefaults()
	}
	src, rest := splitSource(args)
	if err := pf.parse(fs, rest); err != nil {
		return err
	}
	if src == "" && fs.NArg() > 0 {
		src = fs.Arg(0)
	}
	if src == "" {
		fs.Usage()
		return errUsage
	}
	log := newLogger(stderr, mf.logLevel)

	opts := mf.options()
	if !pf.realtime {
		opts.VLM.MaxAge = -1 // offline: window times are media times, nothing goes stale
	}
	stack, err := parts.Build(opts, log)
	if err != nil {
		return err
	}
	defer stack.Close()

	var jsonl *publish.JSONL
	if *out == "-" {
		jsonl = publish.NewJSONL(stdout, "stdout")
	} else if jsonl, err = publish.OpenJSONL(*out); err != nil {
		return err
	}
	sink := &lossCounter{JSONL: jsonl}
	defer sink.Close() // again after the explicit close below: a no-op then

	cfg := pf.config(src)
	cfg.Offline = !pf.realtime
	source, err := capture.Open(ctx, cfg.Source, log.With("component", "capture"))
	if err != nil {
		return err
	}
	defer source.Close()
	info := source.Info()

	var bar *progress.Bar
	if *prog == "on" || *prog == "auto" && isTerminal(stderr) {
		bar = progress.New(stderr, cfg.Camera, int64(info.Frames))
		var n int64
		cfg.OnFrame = func(*capture.Frame) { n++; bar.Set(n) }
	}
	p := pipeline.New(cfg, stack.Detector, stack.Analyzer, []publish.Sink{sink}, log)
	start := time.Now()
	err = p.RunSource(ctx, source)
	if bar != nil {
		bar.Finish()
	}
	el := time.Since(start).Seconds()
	log.Info("analyze done", "source", src, "frames", p.Stats.Frames.Load(), "tracks", p.Stats.Tracks.Load(),
		"windows", p.Stats.Windows.Load(), "trees", p.Stats.Trees.Load(),
		"fps", fmt.Sprintf("%.1f", float64(p.Stats.Frames.Load())/el), "out", sink.Name())
	if errors.Is(err, context.Canceled) {
		log.Info("interrupted: trees written so far are kept", "trees", p.Stats.Trees.Load())
		err = nil
	}
	// A tree that did not reach the output is a failed run, whatever else
	// went well: a script must be able to tell (issue 10).
	return errors.Join(err, sink.finish(p.Stats.Trees.Load()))
}

// lossCounter counts the trees the output could not take and keeps the
// first error, so analyze can say how many were lost and why.
type lossCounter struct {
	*publish.JSONL
	lost   atomic.Uint64
	mu     sync.Mutex
	first  error
	closed bool
}

func (l *lossCounter) Publish(ctx context.Context, t *tree.Tree) error {
	err := l.JSONL.Publish(ctx, t)
	if err != nil {
		l.lost.Add(1)
		l.mu.Lock()
		if l.first == nil {
			l.first = err
		}
		l.mu.Unlock()
	}
	return err
}

// Close closes the output once. fsync of a character device or a pipe
// (/dev/null, a FIFO) is EINVAL and loses nothing, so that is not an error.
func (l *lossCounter) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if err := l.JSONL.Close(); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// finish closes the output and reports lost trees: "12 of 40 trees could
// not be written to out.jsonl: no space left on device".
func (l *lossCounter) finish(produced uint64) error {
	cerr := l.Close()
	lost := l.lost.Load()
	if lost == 0 {
		if cerr != nil {
			return fmt.Errorf("%d trees may not have reached %s: %w", produced, l.Name(), cerr)
		}
		return nil
	}
	cause := l.first
	var pe *os.PathError
	if errors.As(cause, &pe) {
		cause = pe.Err // the path is in the message already
	}
	return fmt.Errorf("%d of %d trees could not be written to %s: %w (free space or choose another --out)", lost, produced, l.Name(), cause)
}

// splitSource takes the first non-flag argument as the source so that flags
// may follow it ("analyze video.mp4 --out x.jsonl"), which the flag package
// alone does not allow.
func splitSource(args []string) (string, []string) {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		return args[0], args[1:]
	}
	return "", args
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
