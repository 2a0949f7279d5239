// Package daemon is `edgemo run`: several cameras, each a pipeline, feeding
// shared sinks (MQTT, WebRTC + dashboard), with metrics and health on their
// own listener. The config file is watched; a change is applied by diffing
// old and new, so only the cameras and sinks whose settings changed restart.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/internal/app"
	"github.com/edgemo/edgemo/internal/config"
)

// ShutdownTimeout bounds a clean stop (drain, publish "stopped", exit).
const ShutdownTimeout = 5 * time.Second

// Daemon owns the running parts. Fields are guarded by mu; apply is the only
// writer.
type Daemon struct {
	log     *slog.Logger
	path    string
	version string
	fan     *fanout
	metrics *metrics
	lat     *latencies
	// faceImages is privacy.face_images, read by every pipeline after each
	// tree: a reload flips it without restarting cameras.
	faceImages atomic.Bool

	mu      sync.Mutex
	cfg     *config.Config
	models  *app.Models
	cams    map[string]*camera
	mqtt    *mqttPart
	rtc     *rtcPart
	httpSrv *server
	metSrv  *server
	ready   bool
	reloads int

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
	d := &Daemon{log: log, path: o.ConfigPath, version: o.Version, fan: newFanout(), cams: map[string]*camera{}, lat: newLatencies(256)}
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
// cannot bind at start is an error; after start, a bad reload is logged and
// the running config kept.
func (d *Daemon) Run(ctx context.Context) error {
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

	if d.path != "" {
		w, err := watch(runCtx, d.path, 300*time.Millisecond, d.log.With("component", "config"))
		if err != nil {
			d.log.Warn("config hot reload off", "err", err)
		} else {
			go func() {
				for range w {
					d.reload(runCtx)
				}
			}()
		}
	}
	<-ctx.Done()
	d.log.Info("stopping")
	done := make(chan struct{})
	go func() { d.shutdown(); close(done) }()
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

// reload applies the file's new content; on error the running config stays.
func (d *Daemon) reload(ctx context.Context) {
	cfg, err := d.LoadConfig()
	if err != nil {
		d.log.Error("config change ignored: the running config stays", "err", err)
		return
	}
	if err := d.apply(ctx, cfg); err != nil {
		d.log.Error("config change partly applied", "err", err)
	}
	d.mu.Lock()
	d.reloads++
	d.mu.Unlock()
}

// Reloads is how many config changes were applied (for tests and stats).
func (d *Daemon) Reloads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reloads
}

// apply moves the running state to cfg, restarting only what changed.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	old := d.cfg
	if old == nil {
		old = &config.Config{}
	}
	var errs []error
	log := d.log

	// Listeners first: a port in use is the most likely start-up failure.
	if d.metSrv == nil || old.Metrics != cfg.Metrics {
		d.metSrv.close()
		d.metSrv = nil
		if cfg.Metrics.Listen != "off" {
			s, err := listen("metrics.listen", cfg.Metrics.Listen, d.metricsHandler(cfg.Metrics.Pprof), log)
			if err != nil {
				errs = append(errs, err)
			}
			d.metSrv = s
		}
	}

	modelsChanged := d.models == nil || !reflect.DeepEqual(old.Engine, cfg.Engine) || old.Models != cfg.Models
	if modelsChanged {
		for name, c := range d.cams { // cameras hold the old analyzer
			c.stop()
			delete(d.cams, name)
		}
		d.models.Close()
		d.models = nil
		ms, err := app.LoadModels(modelOptions(cfg), log)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		d.models = ms
	}

	// The MQTT sink announces cameras it first sees later by itself, so a
	// changed camera list does not restart it.
	camNames := cfg.CameraNames()
	// Privacy first: images stop (or start) with the next tree. The MQTT
	// sink restarts on a change so its Home Assistant camera entity comes
	// or goes with it.
	d.faceImages.Store(cfg.Privacy.FaceImages)
	if d.mqtt == nil && config.On(cfg.MQTT.Enabled, true) || !reflect.DeepEqual(old.MQTT, cfg.MQTT) || old.Privacy != cfg.Privacy {
		d.fan.set("mqtt", nil)
		d.mqtt.close()
		d.mqtt = nil
		if config.On(cfg.MQTT.Enabled, true) {
			m, err := startMQTT(ctx, cfg.MQTT, cfg.Privacy, camNames, d.version, d.statsJSON, log)
			if err != nil {
				errs = append(errs, err)
			} else {
				d.mqtt = m
				d.fan.set("mqtt", m.sink)
			}
		}
	}
	if d.httpSrv == nil || !reflect.DeepEqual(old.WebRTC, cfg.WebRTC) || old.HTTP != cfg.HTTP {
		d.fan.set("webrtc", nil)
		d.httpSrv.close()
		d.httpSrv = nil
		d.rtc.close()
		d.rtc = nil
		if config.On(cfg.WebRTC.Enabled, true) {
			r, err := startWebRTC(cfg.WebRTC, log.With("component", "webrtc"))
			if err != nil {
				errs = append(errs, err)
			} else {
				d.rtc = r
				d.fan.set("webrtc", r.sink)
			}
		}
		s, err := listen("http.listen", cfg.HTTP.Listen, d.httpHandler(cfg), log)
		if err != nil {
			errs = append(errs, err)
		}
		d.httpSrv = s
	}

	// Cameras: stop removed and changed ones, start new and changed ones;
	// the rest keep running untouched (and keep their track IDs).
	want := map[string]config.Camera{}
	for _, n := range camNames {
		want[n] = cfg.Cameras[n]
	}
	for name, c := range d.cams {
		if w, ok := want[name]; !ok || !reflect.DeepEqual(w, c.cfg) {
			log.Info("camera stopping", "camera", name, "reason", map[bool]string{true: "changed", false: "removed"}[ok])
			c.stop()
			delete(d.cams, name)
		}
	}
	// Cameras that left the running set (removed or disabled): the sinks
	// drop what they keep for them (MQTT clears their retained topics and
	// Home Assistant entities). Their pipelines have stopped, so no event
	// of theirs follows. A changed camera is not removed: it keeps its
	// entities.
	for _, name := range old.CameraNames() {
		if _, ok := want[name]; !ok {
			log.Info("camera removed: clearing its retained state in the sinks", "camera", name)
			d.fan.CameraRemoved(name)
		}
	}
	deps := cameraDeps{models: d.models, opts: modelOptions(cfg), sink: d.fan, metrics: d.metrics, faceImages: d.faceImages.Load}
	for _, name := range camNames {
		if _, running := d.cams[name]; running {
			continue
		}
		c, err := startCamera(ctx, name, want[name], deps, log)
		if err != nil {
			errs = append(errs, fmt.Errorf("cameras.%s: %w", name, err))
			continue
		}
		d.cams[name] = c
		log.Info("camera started", "camera", name, "source", want[name].Source)
	}
	d.cfg = cfg
	d.publishView()
	return errors.Join(errs...)
}

// modelOptions are the engine settings every model load uses (the shared
// analyzer and each camera's detector).
func modelOptions(cfg *config.Config) app.Options {
	trt := cfg.Engine.TensorRT
	o := app.Options{
		Manifest: cfg.Models.Emotion, ORTLib: cfg.Engine.ORTLib,
		Providers: cfg.Engine.Providers, Threads: cfg.Engine.Threads,
		TensorRT:      engine.TensorRTOptions{FP16: config.On(trt.FP16, true), EngineCacheDir: trt.EngineCache, INT8CalibrationTable: trt.INT8Calibration},
		OptionalHeads: cfg.Engine.OptionalHeads,
		Engine:        engineMode(cfg),
		// VidEmo's own trees are not published: the merged trees carry its
		// levels from the next window on, and a late tree of an older
		// window must not flip the retained emotion topic.
		VLM: app.VLMOptions{Manifest: cfg.Models.VidEmo, Tokenizer: cfg.Models.Tokenizer, QuestionBatch: cfg.Models.VidEmoQuestionBatch, CaptionTokens: cfg.Models.VidEmoCaptionTokens},
	}
	if cfg.Engine.Heads != nil {
		o.Heads = append([]string{}, *cfg.Engine.Heads...)
	}
	return o
}

// engineMode is tiered when a VidEmo model is configured: the fast head
// keeps every track live and VidEmo is scheduled across tracks.
func engineMode(c *config.Config) string {
	if c.Models.VidEmo != "" {
		return app.EngineTiered
	}
	return app.EngineFast
}

// shutdown stops cameras (their queued windows are analysed and published
// first), then sinks (MQTT publishes "stopped"), then listeners.
func (d *Daemon) shutdown() {
	d.mu.Lock()
	defer d.mu.Unlock()
	var wg sync.WaitGroup
	for name, c := range d.cams {
		wg.Add(1)
		go func() { defer wg.Done(); c.stop() }()
		delete(d.cams, name)
	}
	wg.Wait()
	d.finalCams = d.snapshot().Cameras
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

func (d *Daemon) metricsHandler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", d.readyz)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// readyz is 200 once models are loaded, listeners bound and every camera is
// online; otherwise 503 with the reasons.
func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	s := d.snapshot()
	var why []string
	if !s.Ready {
		why = append(why, "starting")
	}
	for _, c := range s.Cameras {
		if c.Status != "online" {
			why = append(why, fmt.Sprintf("camera %s is %s", c.Name, c.Status))
		}
	}
	if len(why) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, r := range why {
			fmt.Fprintln(w, r)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}

// server is one HTTP listener.
type server struct {
	srv *http.Server
	ln  net.Listener
}

// listen binds addr now (so a port in use fails at start, naming the key)
// and serves in the background.
func listen(key, addr string, h http.Handler, log *slog.Logger) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: another program (or another edgemo) is using it; stop it or set %s to a free port", key, addr, err, key)
	}
	s := &server{srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("listener failed", "key", key, "addr", addr, "err", err)
		}
	}()
	return s, nil
}

// Addr is where the server listens (useful with port 0).
func (s *server) Addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

func (s *server) close() {
	if s == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.srv.Close()
	}
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
