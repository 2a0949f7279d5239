package daemon

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/parts"
	"github.com/edgemo/edgemo/internal/pipeline"
	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/window"
)

// camera runs one camera's pipeline until stopped, looping files that ask
// for it and retrying failures with backoff.
type camera struct {
	name   string
	cfg    config.Camera
	log    *slog.Logger       // with camera=name
	base   *slog.Logger       // without: for the pipeline, which names its camera itself
	cancel context.CancelFunc // set by start
	done   chan struct{}
	det    facetrack.Detector // owned: closed when the loop ends, or by discard
	deps   cameraDeps

	pipe   atomic.Pointer[pipeline.Pipeline] // the current run, for metrics
	aud    *audience.Meter                   // attention and audience, kept across runs (looping files)
	prev   CameraStats                       // totals of finished runs (looping files); written under mu
	status atomic.Value                      // string

	mu      sync.Mutex
	visible map[int]bool // track id -> seen in the latest detection frame
	faces   int
}

type cameraDeps struct {
	models  *parts.Models
	opts    parts.Options // detector options (cascade, width) come from the camera
	sink    *fanout
	metrics *metrics
	// faceImages is the privacy gate (privacy.face_images), read per tree.
	faceImages func() bool
	// ids carries each camera's next track ID across its restarts.
	ids *trackIDs
	// decodeThreads is each video file's decoder threads: the cores shared
	// among the cameras configured when the camera starts.
	decodeThreads int
}

// trackIDs is the next track ID per camera name, kept by the daemon for the
// life of the process: a camera restarted by a reload (or removed and added
// again) goes on numbering where its predecessor stopped, so tree ids
// (<camera>-<track>-<window>) never repeat within a process.
type trackIDs struct {
	mu   sync.Mutex
	next map[string]int
}

func newTrackIDs() *trackIDs { return &trackIDs{next: map[string]int{}} }

// A nil *trackIDs (a camera built without a daemon, in tests) numbers each
// pipeline run from 1.
func (t *trackIDs) get(camera string) int {
	if t == nil {
		return 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(1, t.next[camera])
}

// advance never goes back: a run that saw no track reports where it began.
func (t *trackIDs) advance(camera string, next int) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.next[camera] = max(t.next[camera], next)
}

// prepareCamera builds what a camera needs that can fail (its detector)
// without starting it, so a reload can refuse a bad camera before it stops
// the running one. Either start or discard it.
func prepareCamera(name string, cfg config.Camera, deps cameraDeps, log *slog.Logger) (*camera, error) {
	o := deps.opts
	o.Detector, o.Cascade, o.DetectWidth = cfg.Detector, cfg.Cascade, cfg.DetectWidth
	det, err := parts.NewDetector(o, log.With("camera", name))
	if err != nil {
		return nil, err
	}
	c := &camera{name: name, cfg: cfg, log: log.With("camera", name), base: log, det: det, deps: deps, done: make(chan struct{}), visible: map[int]bool{},
		aud: newMeter(cfg)}
	c.status.Store(publish.StatusOffline)
	return c, nil
}

// start runs the camera until stop or parent ends. deps.models may have
// changed since prepare (a reload that also loads new models): the
// caller passes the ones to use.
func (c *camera) start(parent context.Context, models *parts.Models) {
	ctx, cancel := context.WithCancel(parent)
	c.cancel = cancel
	c.deps.models = models
	go func() {
		defer close(c.done)
		defer c.det.Close()
		c.loop(ctx, c.det, c.deps)
	}()
}

// discard frees a prepared camera that is not going to start.
func (c *camera) discard() { c.det.Close() }

// stop ends the pipeline and waits for it. The camera is then offline in
// metrics and /readyz (a camera with no pipeline is not up); the sinks are
// not told: a replaced camera's successor reports its own state, a removed
// one is cleared by CameraRemoved, and at shutdown the MQTT sink's
// "stopped" availability covers every camera.
func (c *camera) stop() {
	c.cancel()
	<-c.done
	c.status.Store(publish.StatusOffline)
}

func (c *camera) Status() string { return c.status.Load().(string) }

func (c *camera) setStatus(sink *fanout, s string) {
	if c.status.Swap(s) != s {
		sink.CameraStatus(c.name, s)
	}
}

func (c *camera) loop(ctx context.Context, det facetrack.Detector, deps cameraDeps) {
	backoff := time.Second
	for ctx.Err() == nil {
		pc := c.pipelineConfig(deps)
		// IDs continue across loops, retries and restarts of this camera:
		// tree ids stay unique.
		pc.Tracker.FirstID = deps.ids.get(c.name)
		p := pipeline.New(pc, det, deps.models.Analyzer, []publish.Sink{deps.sink}, c.base) // the pipeline adds camera=
		c.mu.Lock()
		c.pipe.Store(p)
		c.mu.Unlock()
		start := time.Now()
		err := p.Run(ctx)
		c.accumulate(p)
		deps.ids.advance(c.name, p.NextTrackID())
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			c.resetFaces(deps.sink)
			c.log.Error("camera failed; retrying", "err", err, "in", backoff)
			c.setStatus(deps.sink, publish.StatusOffline)
			if time.Since(start) > time.Minute {
				backoff = time.Second
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 30*time.Second)
		case c.cfg.Loop:
			// The next run's tracker starts over; forget its tracks without
			// announcing 0 faces for the instant between runs.
			c.mu.Lock()
			c.visible = map[int]bool{}
			c.mu.Unlock()
			c.log.Debug("end of file; looping")
			continue
		default:
			c.log.Info("source ended")
			c.resetFaces(deps.sink)
			c.setStatus(deps.sink, publish.StatusOffline)
			return
		}
	}
}

// newMeter is a camera's attention and audience meter, from its config.
func newMeter(cfg config.Camera) *audience.Meter {
	cone := audience.Cone{Yaw: cfg.Attention.Yaw, Pitch: cfg.Attention.Pitch, YawOffset: cfg.Attention.YawOffset, PitchOffset: audience.DefaultPitchOffset}
	if cfg.Attention.PitchOffset != nil {
		cone.PitchOffset = *cfg.Attention.PitchOffset
	}
	return audience.New(audience.Config{Cone: cone, Period: time.Duration(cfg.Audience.Period)})
}

func (c *camera) pipelineConfig(deps cameraDeps) pipeline.Config {
	cfg := c.cfg
	aud := c.aud
	if aud == nil { // a camera built without prepareCamera (tests)
		aud = newMeter(cfg)
	}
	return pipeline.Config{
		Camera: c.name,
		Source: capture.Config{
			Source:        cfg.Source,
			FPS:           cfg.FPS,
			ReadTimeout:   time.Duration(cfg.ReadTimeout),
			Realtime:      config.On(cfg.Realtime, true),
			DecodeThreads: deps.decodeThreads,
			Deblock:       cfg.Deblock,
			OnState: func(s capture.State) {
				switch s {
				case capture.StateOnline:
					c.setStatus(deps.sink, publish.StatusOnline)
				case capture.StateReconnecting:
					c.setStatus(deps.sink, publish.StatusReconnecting)
				case capture.StateOffline:
					c.setStatus(deps.sink, publish.StatusOffline)
				}
			},
		},
		Window:      window.Config{FPS: cfg.Window.FPS, Length: cfg.Window.Length, Stride: cfg.Window.Stride},
		CropSize:    cfg.CropSize,
		CropMargin:  cfg.CropMargin,
		DetectEvery: cfg.DetectEvery,
		FaceImages:  deps.faceImages,
		Audience:    aud,
		LowLight:    cfg.LowLight,
		OnEvent:     func(ev facetrack.Event) { c.onEvent(deps.sink, ev) },
		OnTree:      func(t *tree.Tree) { deps.metrics.observeTree(t) },
		OnError:     func(stage string, err error) { deps.metrics.error(c.name, stage) },
		Schedule: facetrack.ScheduleConfig{
			Adaptive: config.On(cfg.DetectAdaptive, true), MaxEvery: cfg.DetectMaxEvery, RegionEvery: cfg.DetectRegionEvery,
			Motion: config.On(cfg.MotionGate, true), MotionThreshold: cfg.MotionThreshold, MotionOutside: cfg.MotionOutside,
		},
	}
}

// onEvent forwards track lifecycle and keeps the face count: faces matched
// in the latest detection frame (a lost track is not a face seen now).
func (c *camera) onEvent(sink *fanout, ev facetrack.Event) {
	t := ev.Track
	sink.Track(publish.TrackEvent{
		Type: string(ev.Type), Camera: c.name, TrackID: t.ID,
		Box: [4]float64{t.Box.X, t.Box.Y, t.Box.W, t.Box.H}, Score: float64(t.Score), Time: ev.Time,
	})
	c.mu.Lock()
	switch ev.Type {
	case facetrack.EventNew, facetrack.EventUpdate:
		c.visible[t.ID] = true
	case facetrack.EventLost:
		c.visible[t.ID] = false
	case facetrack.EventEnd:
		delete(c.visible, t.ID)
	}
	n := 0
	for _, v := range c.visible {
		if v {
			n++
		}
	}
	changed := n != c.faces
	c.faces = n
	c.mu.Unlock()
	if changed {
		sink.Faces(c.name, n)
	}
}

func (c *camera) resetFaces(sink *fanout) {
	c.mu.Lock()
	changed := c.faces != 0
	c.visible, c.faces = map[int]bool{}, 0
	c.mu.Unlock()
	if changed {
		sink.Faces(c.name, 0)
	}
}

// accumulate adds a finished run's counters to the camera's totals.
func (c *camera) accumulate(p *pipeline.Pipeline) {
	st := p.CaptureStats()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.prev.Frames += p.Stats.Frames.Load()
	c.prev.Detections += p.Stats.Detections.Load()
	c.prev.Windows += p.Stats.Windows.Load()
	c.prev.Trees += p.Stats.Trees.Load()
	c.prev.WindowsDropped += p.Stats.WindowsDropped.Load()
	c.prev.CaptureRead += st.Read
	c.prev.DecodeCPUS += p.DecodeCPU().Seconds() // once a run: its final figure
	c.prev.DroppedSlow += st.DroppedSlow
	c.prev.DroppedRate += st.DroppedRate
	c.prev.DetectFull += p.Stats.FullDetect.Load()
	c.prev.DetectRegions += p.Stats.RegionDetect.Load()
	c.prev.DetectNone += p.Stats.Predicted.Load()
	c.prev.MotionSkipped += p.Stats.MotionSkipped.Load()
	c.prev.DetectFullBy = addCounts(c.prev.DetectFullBy, p.Stats.FullReasons())
	c.pipe.Store(nil) // under mu, so counters() never counts this run twice
}

// counters returns the running pipeline and the finished runs' totals, as
// one consistent pair.
func (c *camera) counters() (*pipeline.Pipeline, CameraStats) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pipe.Load(), c.prev
}

// Faces is the current face count.
func (c *camera) Faces() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.faces
}
