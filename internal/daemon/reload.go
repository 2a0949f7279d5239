package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"sync"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/parts"
)

// Reload as a transaction: stage builds every new part beside the running
// ones, commit swaps them in; a failure discards what was staged and
// leaves the running parts as they are.

// Reload re-reads the config and applies it, as SIGHUP does. On error the
// running config stays and the daemon reports reload_failed until a
// reload succeeds.
func (d *Daemon) Reload(ctx context.Context) error { return d.reload(ctx) }

func (d *Daemon) reload(ctx context.Context) error {
	cfg, err := d.LoadConfig()
	if err == nil {
		err = d.apply(ctx, cfg)
	}
	if err != nil {
		d.reloadsFailed.Add(1)
		d.reloadErr.Store(err.Error())
		d.log.Error("config reload failed: the running config stays; fix the file (or what it names) and save it again, or send SIGHUP", "err", err)
		return err
	}
	d.reloadsOK.Add(1)
	d.reloadErr.Store("")
	d.mu.Lock()
	d.reloads++
	d.mu.Unlock()
	d.log.Info("config reloaded")
	return nil
}

// Reloads is how many config reloads were applied (for tests and stats).
func (d *Daemon) Reloads() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reloads
}

// ReloadError is the error of the latest reload, "" when it succeeded.
func (d *Daemon) ReloadError() string { return d.reloadErr.Load().(string) }

// errStopping refuses a reload that arrives during shutdown.
var errStopping = errors.New("the daemon is stopping")

// staged is what a reload builds before it touches anything running. Each
// field is nil (or empty) when that part stays as it is.
type staged struct {
	models     *parts.Models      // new models: every camera restarts on them
	metSrv     *server            // bound, not yet serving (metrics.listen moved)
	metOff     bool               // metrics.listen became "off"
	metHandler http.Handler       // for the running metrics listener (pprof changed)
	rtc        *rtcPart           // new WebRTC sink (webrtc settings changed)
	rtcOff     bool               // webrtc disabled
	httpSrv    *server            // bound, not yet serving (http.listen moved)
	httpH      http.Handler       // for the running HTTP listener
	cams       map[string]*camera // prepared, not started (new, changed, or all on a model change)
	stop       []string           // running cameras to stop: changed, removed, or all on a model change
}

// discard frees what a reload built when it is abandoned.
func (s *staged) discard() {
	s.models.Close()
	s.metSrv.close()
	s.httpSrv.close()
	s.rtc.close()
	for _, c := range s.cams {
		c.discard()
	}
}

// apply moves the running state to cfg as one transaction, restarting only
// what changed (as MediaMTX does):
//
//   - models (models.*, engine.*): loaded anew only when their settings
//     change; then every camera restarts on the new ones.
//   - a camera: restarts when its own settings change (or the models do);
//     the others keep their pipelines.
//   - a listener: rebinds only when its address changes; a change in what
//     it serves (dashboard, WebRTC, pprof, the Host check) swaps the handler
//     on the same socket.
//   - WebRTC: a new sink when webrtc.* changes.
//   - MQTT: restarts when mqtt.* or privacy.* changes.
//
// First everything that can fail is built beside the running parts (models
// loaded, detectors made, listeners bound, the WebRTC sink made); if any of
// it fails, all of it is discarded and nothing running is touched. Only then
// are the parts swapped. MQTT cannot run twice side by side (the embedded
// broker's port, the client ID, the retained "online"/"stopped"), so it is
// restarted last, in place; if the new settings fail to start, the previous
// ones are started again and the error is returned, with the rest of the
// reload applied.
func (d *Daemon) apply(ctx context.Context, cfg *config.Config) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopping {
		return errStopping
	}
	old := d.cfg
	if old == nil {
		old = &config.Config{}
	}
	st, err := d.stage(old, cfg)
	if err != nil {
		st.discard()
		return err
	}
	err = d.commit(ctx, old, cfg, st)
	d.publishView()
	return err
}

// stage builds the new parts; it changes nothing running. Called with d.mu
// held.
func (d *Daemon) stage(old, cfg *config.Config) (*staged, error) {
	st := &staged{cams: map[string]*camera{}}
	log := d.log

	if d.models == nil || !reflect.DeepEqual(old.Engine, cfg.Engine) || !reflect.DeepEqual(old.Models, cfg.Models) {
		ms, err := parts.LoadModels(modelOptions(cfg), log)
		if err != nil {
			return st, fmt.Errorf("models: %w", err)
		}
		st.models = ms
	}

	switch {
	case cfg.Metrics.Listen == "off":
		st.metOff = d.metSrv != nil
	case d.metSrv == nil || old.Metrics.Listen != cfg.Metrics.Listen:
		s, err := bind("metrics.listen", cfg.Metrics.Listen, d.metricsHandler(cfg.Metrics.Pprof), log)
		if err != nil {
			return st, err
		}
		st.metSrv = s
		warnExposure(log, "metrics.listen", cfg.Metrics.Listen, "", cfg.Metrics.Pprof)
	case old.Metrics.Pprof != cfg.Metrics.Pprof:
		st.metHandler = d.metricsHandler(cfg.Metrics.Pprof)
		warnExposure(log, "metrics.listen", cfg.Metrics.Listen, "", cfg.Metrics.Pprof)
	}

	rtc := d.rtc
	if d.httpSrv == nil || !reflect.DeepEqual(old.WebRTC, cfg.WebRTC) {
		if config.On(cfg.WebRTC.Enabled, true) {
			r, err := startWebRTC(cfg.WebRTC, log.With("component", "webrtc"))
			if err != nil {
				return st, fmt.Errorf("webrtc: %w", err)
			}
			st.rtc, rtc = r, r
		} else {
			st.rtcOff, rtc = d.rtc != nil, nil
		}
	}
	if d.httpSrv == nil || old.HTTP.Listen != cfg.HTTP.Listen {
		s, err := bind("http.listen", cfg.HTTP.Listen, httpHandler(cfg, rtc), log)
		if err != nil {
			return st, err
		}
		st.httpSrv = s
		warnExposure(log, "http.listen", cfg.HTTP.Listen, cfg.WebRTC.Token, false)
	} else if st.rtc != nil || st.rtcOff || !reflect.DeepEqual(old.HTTP, cfg.HTTP) || !reflect.DeepEqual(old.WebRTC, cfg.WebRTC) {
		st.httpH = httpHandler(cfg, rtc)
		if old.WebRTC.Token != cfg.WebRTC.Token {
			warnExposure(log, "http.listen", cfg.HTTP.Listen, cfg.WebRTC.Token, false)
		}
	}

	// Cameras: prepare new and changed ones (and all of them when the
	// models change: they hold the analyzer); the rest keep running
	// untouched.
	want := map[string]config.Camera{}
	for _, n := range cfg.CameraNames() {
		want[n] = cfg.Cameras[n]
	}
	for name, c := range d.cams {
		if w, ok := want[name]; !ok || st.models != nil || !reflect.DeepEqual(w, c.cfg) {
			st.stop = append(st.stop, name)
		}
	}
	sort.Strings(st.stop)
	deps := cameraDeps{models: d.models, opts: modelOptions(cfg), sink: d.fan, metrics: d.metrics, faceImages: d.faceImages.Load, ids: d.ids,
		decodeThreads: capture.DecodeThreads(len(cfg.CameraNames()))}
	for _, name := range cfg.CameraNames() {
		if c, running := d.cams[name]; running && !slices.Contains(st.stop, c.name) {
			continue
		}
		c, err := prepareCamera(name, want[name], deps, log)
		if err != nil {
			return st, fmt.Errorf("cameras.%s: %w", name, err)
		}
		st.cams[name] = c
	}
	return st, nil
}

// commit swaps the staged parts in. Called with d.mu held.
func (d *Daemon) commit(ctx context.Context, old, cfg *config.Config, st *staged) error {
	log := d.log
	running := *cfg // what is running when this returns

	// Listeners: the new one serves before the old one closes.
	if st.metSrv != nil || st.metOff {
		if st.metSrv != nil {
			st.metSrv.serve()
		}
		d.metSrv.close()
		d.metSrv = st.metSrv
	} else if st.metHandler != nil {
		d.metSrv.setHandler(st.metHandler)
	}
	if st.rtc != nil || st.rtcOff {
		d.fan.set("webrtc", nil)
	}
	oldRTC := d.rtc
	if st.rtc != nil || st.rtcOff {
		d.rtc = st.rtc
	}
	if st.httpSrv != nil {
		st.httpSrv.serve()
		d.httpSrv.close()
		d.httpSrv = st.httpSrv
	} else if st.httpH != nil {
		d.httpSrv.setHandler(st.httpH)
	}
	if st.rtc != nil || st.rtcOff {
		oldRTC.close() // after the handler that used it is gone
		if d.rtc != nil {
			d.fan.set("webrtc", d.rtc.sink)
		}
	}

	// Cameras that go: stopped together (each drains its queued windows).
	var wg sync.WaitGroup
	for _, name := range st.stop {
		c := d.cams[name]
		reason := "removed"
		switch {
		case st.models != nil:
			reason = "models changed"
		case slices.Contains(cfg.CameraNames(), name):
			reason = "changed"
		}
		log.Info("camera stopping", "camera", name, "reason", reason)
		delete(d.cams, name)
		wg.Add(1)
		go func() { defer wg.Done(); c.stop() }()
	}
	wg.Wait()
	if st.models != nil { // no camera holds the old analyzer any more
		d.models.Close()
		d.models = st.models
	}

	// MQTT. Privacy first: images stop (or start) with the next tree. The
	// sink restarts on a privacy change so its Home Assistant camera entity
	// comes or goes with it. It announces cameras it first sees later by
	// itself, so a changed camera list does not restart it.
	var errs []error
	d.faceImages.Store(cfg.Privacy.FaceImages)
	if d.mqtt == nil && config.On(cfg.MQTT.Enabled, true) || !reflect.DeepEqual(old.MQTT, cfg.MQTT) || old.Privacy != cfg.Privacy {
		d.fan.set("mqtt", nil)
		d.mqtt.close()
		d.mqtt = nil
		if err := d.startMQTT(ctx, cfg); err != nil {
			errs = append(errs, fmt.Errorf("mqtt: %w", err))
			if d.cfg != nil && config.On(old.MQTT.Enabled, true) { // a reload: bring the previous settings back
				log.Error("mqtt: the new settings failed; restarting with the previous ones", "err", err)
				if err := d.startMQTT(ctx, old); err != nil {
					errs = append(errs, fmt.Errorf("mqtt: the previous settings failed too: %w", err))
				}
			}
			running.MQTT, running.Privacy = old.MQTT, old.Privacy
			d.faceImages.Store(old.Privacy.FaceImages)
		}
	}

	// Cameras that left the running set (removed or disabled): the sinks
	// drop what they keep for them (MQTT clears their retained topics and
	// Home Assistant entities). Their pipelines have stopped, so no event
	// of theirs follows. A changed camera is not removed: it keeps its
	// entities.
	want := cfg.CameraNames()
	for _, name := range old.CameraNames() {
		if !slices.Contains(want, name) {
			log.Info("camera removed: clearing its retained state in the sinks", "camera", name)
			d.fan.CameraRemoved(name)
		}
	}
	for _, name := range want {
		c, ok := st.cams[name]
		if !ok {
			continue
		}
		c.start(ctx, d.models)
		d.cams[name] = c
		log.Info("camera started", "camera", name, "source", c.cfg.Source)
	}
	d.cfg = &running
	return errors.Join(errs...)
}

// startMQTT starts the MQTT part for c, when enabled. Called with d.mu held.
func (d *Daemon) startMQTT(ctx context.Context, c *config.Config) error {
	if !config.On(c.MQTT.Enabled, true) {
		return nil
	}
	m, err := startMQTT(ctx, c.MQTT, c.Privacy, c.CameraNames(), d.version, d.statsJSON, d.log)
	if err != nil {
		return err
	}
	d.mqtt = m
	d.fan.set("mqtt", m.sink)
	return nil
}
