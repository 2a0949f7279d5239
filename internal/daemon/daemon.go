// Package daemon is `edgemo run`: several cameras, each a pipeline, feeding
// shared sinks (MQTT, WebRTC + dashboard), with metrics and health on their
// own listener. The config is reloaded when its file changes and on SIGHUP;
// a reload is a transaction (see apply): the new parts are built first, and
// only the cameras, models, listeners and sinks whose settings changed are
// replaced; if anything fails, the running parts stay and reload_failed is
// reported.
package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/parts"
)

// ShutdownTimeout bounds a clean stop (drain, publish "stopped", exit).
const ShutdownTimeout = 5 * time.Second

// Daemon owns the running parts. Fields are guarded by mu; apply and
// shutdown are the only writers.
type Daemon struct {
	log     *slog.Logger
	path    string
	version string
	fan     *fanout
	metrics *metrics
	lat     *latencies
	ids     *trackIDs // next track ID per camera, across its restarts
	// faceImages is privacy.face_images, read by every pipeline after each
	// tree: a reload flips it without restarting cameras.
	faceImages atomic.Bool

	mu       sync.Mutex
	cfg      *config.Config // what is running (not always the file: see apply)
	models   *parts.Models
	cams     map[string]*camera
	mqtt     *mqttPart
	rtc      *rtcPart
	httpSrv  *server
	metSrv   *server
	ready    bool
	stopping bool // set by shutdown: a late reload must not start anything
	reloads  int

	// The outcome of config reloads, for /readyz, the stats topic and
	// metrics. reloadErr is "" after a good reload (or none yet).
	reloadsOK, reloadsFailed atomic.Uint64
	reloadErr                atomic.Value // string

	view      atomic.Value  // *view, see stats.go
	finalCams []CameraStats // the cameras' totals at shutdown
	statMu    sync.Mutex
	lastStat  statSample
}

// Options for New.
type Options struct {
	ConfigPath string // "" uses the embedded default
	Version    string
	Logger     *slog.Logger
}

// New makes a daemon; Run starts it.
func New(o Options) *Daemon {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Daemon{log: log, path: o.ConfigPath, version: o.Version, fan: newFanout(), cams: map[string]*camera{}, lat: newLatencies(256), ids: newTrackIDs()}
	d.reloadErr.Store("")
	d.metrics = newMetrics(d)
	d.publishView()
	return d
}

// LoadConfig reads the configured file, or the embedded default.
func (d *Daemon) LoadConfig() (*config.Config, error) {
	if d.path == "" {
		return config.Default()
	}
	return config.Load(d.path)
}

// Run starts everything from the config and runs until ctx ends, then stops
// within ShutdownTimeout. A config that cannot be loaded or a listener that
// cannot bind at start is an error; after start, a bad reload is logged,
// reported as reload_failed, and the running config kept. The config is
// reloaded when the file changes and on SIGHUP.
func (d *Daemon) Run(ctx context.Context) error {
	// SIGHUP is the operator's "reload now" (also after an edit the watcher
	// cannot see, or to retry a reload that failed on something outside the
	// file, such as a busy port). Taken before anything starts, so from here
	// on it never kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	cfg, err := d.LoadConfig()
	if err != nil {
		return err
	}
	if d.path == "" {
		d.log.Info("no --config given: using the embedded default (sample video on a loop, embedded MQTT broker, dashboard); see edgemo.example.yaml")
	}
	runCtx, cancel := context.WithCancel(context.Background()) // outlives ctx until shutdown is done
	defer cancel()
	if err := d.apply(runCtx, cfg); err != nil {
		d.shutdown()
		return err
	}
	d.mu.Lock()
	d.ready = true
	d.publishView()
	d.mu.Unlock()
	d.logURLs(cfg)
	go d.audienceLoop(runCtx)

	var changed <-chan struct{}
	if d.path != "" {
		w, err := watch(runCtx, d.path, 300*time.Millisecond, d.log.With("component", "config"))
		if err != nil {
			d.log.Warn("config hot reload off (SIGHUP still reloads)", "err", err)
		} else {
			changed = w
		}
	}
	// One goroutine applies reloads, one at a time; it ends with ctx, and
	// shutdown waits for a reload in progress to finish first.
	reloader := make(chan struct{})
	go func() {
		defer close(reloader)
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-changed:
				if !ok {
					changed = nil
					continue
				}
				_ = d.reload(runCtx) // logged, counted and shown on /readyz inside
			case <-hup:
				d.log.Info("SIGHUP: reloading the config", "path", d.path)
				_ = d.reload(runCtx) // logged, counted and shown on /readyz inside
			}
		}
	}()
	<-ctx.Done()
	d.log.Info("stopping")
	done := make(chan struct{})
	go func() { <-reloader; d.shutdown(); close(done) }()
	select {
	case <-done:
		d.log.Info("stopped")
		return nil
	case <-time.After(ShutdownTimeout):
		return fmt.Errorf("shutdown took longer than %v; exiting anyway", ShutdownTimeout)
	}
}

func (d *Daemon) logURLs(c *config.Config) {
	if config.On(c.HTTP.Dashboard, true) {
		d.log.Info("dashboard", "url", "http://"+c.HTTP.Listen+"/")
	}
	if c.Metrics.Listen != "off" {
		d.log.Info("metrics", "url", "http://"+c.Metrics.Listen+"/metrics")
	}
}

// modelOptions are the engine settings every model load uses (the shared
// analyzer and each camera's detector).
func modelOptions(cfg *config.Config) parts.Options {
	trt := cfg.Engine.TensorRT
	o := parts.Options{
		Manifest: cfg.Models.Emotion, ORTLib: cfg.Engine.ORTLib,
		Providers: cfg.Engine.Providers, Threads: cfg.Engine.Threads,
		TensorRT:      engine.TensorRTOptions{FP16: config.On(trt.FP16, true), EngineCacheDir: trt.EngineCache, INT8CalibrationTable: trt.INT8Calibration},
		OptionalHeads: cfg.Engine.OptionalHeads,
		Precision:     cfg.Models.Precision,
		Engine:        engineMode(cfg),
		// VidEmo's own trees are not published: the merged trees carry its
		// levels from the next window on, and a late tree of an older
		// window must not flip the retained emotion topic.
		VLM: parts.VLMOptions{Manifest: cfg.Models.VidEmo, Tokenizer: cfg.Models.Tokenizer, QuestionBatch: cfg.Models.VidEmoQuestionBatch, CaptionTokens: cfg.Models.VidEmoCaptionTokens,
			Remote: remoteOptions(cfg.Models.VidEmoRemote), RemoteInference: cfg.Privacy.RemoteInference},
	}
	if cfg.Engine.Heads != nil {
		o.Heads = append([]string{}, *cfg.Engine.Heads...)
	}
	return o
}

func remoteOptions(r config.VidEmoRemote) parts.RemoteOptions {
	return parts.RemoteOptions{URL: r.URL, Model: r.Model, APIKey: r.APIKey, Timeout: time.Duration(r.Timeout), MaxInFlight: r.MaxInFlight, TopLogprobs: r.TopLogprobs}
}

// engineMode is tiered when a VidEmo model is configured: the fast head
// keeps every track live and VidEmo is scheduled across tracks.
func engineMode(c *config.Config) string {
	if c.Models.VidEmo != "" {
		return parts.EngineTiered
	}
	return parts.EngineFast
}

// shutdown stops cameras (their queued windows are analysed and published
// first), then sinks (MQTT publishes "stopped"), then listeners.
func (d *Daemon) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopping = true
	var wg sync.WaitGroup
	for name, c := range d.cams {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop() }()
		delete(d.cams, name)
	}
	wg.Wait()
	d.finalCams = d.snapshot(true).Cameras
	d.fan.set("mqtt", nil)
	d.fan.set("webrtc", nil)
	d.mqtt.close()
	d.rtc.close()
	d.httpSrv.close()
	d.metSrv.close()
	d.models.Close()
	d.mqtt, d.rtc, d.httpSrv, d.metSrv, d.models = nil, nil, nil, nil, nil
	d.ready = false
	d.publishView()
}

// HTTPAddr and MetricsAddr report the bound addresses.
func (d *Daemon) HTTPAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.httpSrv.Addr()
}

func (d *Daemon) MetricsAddr() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.metSrv.Addr()
}

// CameraNames lists running cameras.
func (d *Daemon) CameraNames() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var n []string
	for k := range d.cams {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}
