// Package pipeline wires one camera's stages together, top to bottom:
//
//	capture ──frames──▶ detect+track ──crops──▶ window ──windows──▶ engine ──trees──▶ sinks
//
// One goroutine reads frames, detects, tracks, crops and fills the window
// buffers; a second runs the analyzer and publishes. The channel between
// them is bounded: offline runs wait for the engine (every window counts),
// live runs drop the oldest window and count it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/window"
)

// Config is one camera's pipeline.
type Config struct {
	Camera      string
	Source      capture.Config
	Tracker     facetrack.TrackerConfig
	Window      window.Config
	CropSize    int     // aligned crop side in pixels (default 192: facemesh's input, no resampling for the mesh)
	CropMargin  float64 // extra context around the face box, per side, as a fraction of its size (default 0.25)
	DetectEvery int     // run the detector every Nth frame, tracker prediction between (default 1)
	// Schedule: adaptive detection and the motion gate (its Every is
	// DetectEvery). The zero value detects every DetectEvery-th frame, as
	// before; the daemon turns both on by default.
	Schedule facetrack.ScheduleConfig
	Offline  bool // never drop windows: wait for the engine (file analysis)
	QueueLen int  // windows waiting for the engine (default 8)

	// FaceImages is the privacy gate (privacy.face_images). When it is set
	// and reports true, after each tree the JPEG of the latest crop of the
	// tree's window is handed to the sinks that implement
	// publish.FaceImageSink. Nil or false: no face image is encoded at all.
	// A func, so a config reload can flip it without restarting cameras.
	FaceImages func() bool

	// Audience fills each tree's attention and presence fields with the
	// camera's looking cone and keeps the camera's audience figures
	// (engine/audience). The caller may keep one across runs of a camera
	// (a looping file); nil: the pipeline makes one with the defaults.
	Audience *audience.Meter

	// LowLight is the brightness (mean luma, 0..1) below which a window's
	// scene is low light and the face levels' confidences are lowered
	// (engine/scene.Apply); nil: scene.LowLight (0.15), 0: never.
	LowLight *float64

	OnFrame func(f *capture.Frame)      // after each frame is processed (progress); must not keep f
	OnEvent func(ev facetrack.Event)    // track lifecycle
	OnTree  func(t *tree.Tree)          // after each tree is published
	OnError func(stage string, e error) // analyzer or sink failures (also logged)
}

func (c Config) withDefaults() Config {
	if c.Camera == "" {
		c.Camera = "cam"
	}
	if c.CropSize == 0 {
		c.CropSize = 192
	}
	if c.CropMargin == 0 {
		c.CropMargin = 0.25
	}
	if c.DetectEvery == 0 {
		c.DetectEvery = 1
	}
	c.Schedule.Every = c.DetectEvery
	if c.QueueLen == 0 {
		c.QueueLen = 8
	}
	if c.Audience == nil {
		c.Audience = audience.New(audience.Config{})
	}
	return c
}

// Stats are the pipeline's counters; safe to read while it runs.
type Stats struct {
	Frames, Detections, Windows, Trees atomic.Uint64
	WindowsDropped                     atomic.Uint64 // live mode: engine too slow
	AnalyzeErrors, SinkErrors          atomic.Uint64
	Tracks                             atomic.Uint64 // confirmed tracks started

	// Frames by what the detector did (facetrack.Mode): full frame, regions
	// around tracked faces, none (tracker prediction), none because nothing
	// moved and no face was live (the motion gate).
	FullDetect, RegionDetect, Predicted, MotionSkipped atomic.Uint64
	// FullBy counts the full detections by why they ran (facetrack.Reason):
	// what keeps a camera from the cheap modes.
	FullBy [facetrack.NumReasons]atomic.Uint64
}

// FullReasons is FullBy by reason name, without zeros.
func (s *Stats) FullReasons() map[string]uint64 {
	m := map[string]uint64{}
	for r := range facetrack.NumReasons {
		if n := s.FullBy[r].Load(); n > 0 {
			m[r.String()] = n
		}
	}
	return m
}

// ModeCount is the frames counted under mode.
func (s *Stats) ModeCount(m facetrack.Mode) *atomic.Uint64 {
	switch m {
	case facetrack.ModeRegions:
		return &s.RegionDetect
	case facetrack.ModePredict:
		return &s.Predicted
	case facetrack.ModeSkip:
		return &s.MotionSkipped
	}
	return &s.FullDetect
}

// Pipeline runs one camera.
type Pipeline struct {
	cfg      Config
	det      facetrack.Detector
	analyzer engine.Analyzer
	sinks    []publish.Sink
	log      *slog.Logger
	Stats    Stats

	src    atomic.Pointer[capture.FrameSource] // from a run's start, for CaptureStats and DecodeCPU
	queue  atomic.Pointer[chan item]           // while running, for QueueLen
	scene  atomic.Pointer[sceneState]          // from a run's start, for Scene and StageCosts
	nextID atomic.Int64                        // the tracker's next track ID, after a run
}

// NextTrackID is the first track ID a following run of the same camera
// should use (Config.Tracker.FirstID), so tree ids never repeat.
func (p *Pipeline) NextTrackID() int { return int(p.nextID.Load()) }

// QueueLen is the number of windows waiting for the engine.
func (p *Pipeline) QueueLen() int {
	if q := p.queue.Load(); q != nil {
		return len(*q)
	}
	return 0
}

// New assembles a pipeline. The detector, analyzer and sinks stay owned by
// the caller (they may be shared between cameras).
func New(cfg Config, det facetrack.Detector, an engine.Analyzer, sinks []publish.Sink, log *slog.Logger) *Pipeline {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	return &Pipeline{cfg: cfg, det: det, analyzer: an, sinks: sinks, log: log.With("camera", cfg.Camera)}
}

// item is what travels to the engine goroutine: a window, or the news that a
// track ended (after its last window, so per-track engine state can go).
type item struct {
	w     window.Window
	ended int
	scene *tree.Scene // the camera's scene over w's span
}

// Run processes the source until it ends (files), ctx is cancelled, or it
// fails. A clean end of file returns nil.
func (p *Pipeline) Run(ctx context.Context) error {
	sc := p.cfg.Source
	if p.cfg.Schedule.MeasuresMotion() { // the decoder makes the motion grid from its luma plane
		sc.LumaGrid = capture.GridSpec{Cells: facetrack.MotionCells, Taps: facetrack.MotionTaps}
	}
	src, err := capture.Open(ctx, sc, p.log.With("component", "capture"))
	if err != nil {
		return err
	}
	defer src.Close()
	return p.RunSource(ctx, src)
}

// RunSource is Run on an already opened source: a *capture.Source (so callers
// can read its Info first) or any other capture.FrameSource (go2rtc, a
// GStreamer appsink binding, a test generator). It reads src.Frames until the
// channel closes or ctx is cancelled, closes every frame it receives, and
// returns src.Err after a clean end. It does not close src.
func (p *Pipeline) RunSource(ctx context.Context, src capture.FrameSource) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bufs, err := window.New(p.cfg.Camera, p.cfg.Window)
	if err != nil {
		return fmt.Errorf("camera %s: %w", p.cfg.Camera, err)
	}
	trk, err := facetrack.NewTracker(p.cfg.Tracker)
	if err != nil {
		return fmt.Errorf("camera %s: %w", p.cfg.Camera, err)
	}
	sched, err := facetrack.NewScheduler(p.cfg.Schedule)
	if err != nil {
		return fmt.Errorf("camera %s: %w", p.cfg.Camera, err)
	}
	defer sched.Close()
	queue := make(chan item, p.cfg.QueueLen)
	p.src.Store(&src)
	p.queue.Store(&queue)
	sc := newSceneState(p.cfg.Window, p.cfg.LowLight)
	p.scene.Store(sc)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := lowerThisThread(engineNice); err != nil {
			p.log.Debug("engine loop keeps the process's priority", "err", err)
		}
		p.engineLoop(ctx, queue)
	}()

	ferr := p.frameLoop(ctx, src, &tracking{trk, sched}, bufs, queue, sc)
	p.nextID.Store(int64(trk.NextID()))
	close(queue)
	wg.Wait()
	if ferr != nil {
		return ferr
	}
	if err := src.Err(); err != nil {
		return err
	}
	return ctx.Err()
}

// tracking is one run's tracker and its detection schedule.
type tracking struct {
	*facetrack.Tracker
	sched *facetrack.Scheduler
}

func (p *Pipeline) frameLoop(ctx context.Context, src capture.FrameSource, trk *tracking, bufs *window.Buffers, queue chan item, sc *sceneState) error {
	send := func(it item) bool {
		if it.w.Samples != nil {
			it.scene = sc.window(it.w)
		}
		if p.cfg.Offline || it.w.Samples == nil {
			select {
			case queue <- it:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for {
			select {
			case queue <- it:
				return true
			default:
			}
			select { // full: drop the oldest waiting window
			case old := <-queue:
				if old.w.Samples == nil {
					queue <- old // never drop a track-end marker; there is room for it again
					continue
				}
				p.Stats.WindowsDropped.Add(1)
			default:
			}
		}
	}
	endTrack := func(id int) {
		if w, ok := bufs.End(id); ok {
			send(item{w: w})
		}
		send(item{ended: id})
	}

	// Every frame received is closed here; frames left on the channel when
	// ctx ends are the source's to close (capture.FrameSource). ctx is
	// watched too, so a source opened with another context cannot keep the
	// pipeline waiting for a frame after a stop.
	frames := src.Frames()
read:
	for ctx.Err() == nil {
		var f *capture.Frame
		select {
		case got, ok := <-frames:
			if !ok {
				break read
			}
			f = got
		case <-ctx.Done():
			break read
		}
		sc.frame(f, p) // scene light and colour, on every detector schedule
		err := p.frame(f, trk, bufs, send, endTrack)
		if p.cfg.OnFrame != nil {
			p.cfg.OnFrame(f)
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	// End of input: flush every track still open so its tail gets a tree.
	for _, id := range bufs.Tracks() {
		endTrack(id)
	}
	return nil
}

func (p *Pipeline) frame(f *capture.Frame, trk *tracking, bufs *window.Buffers,
	send func(item) bool, endTrack func(int)) error {
	p.Stats.Frames.Add(1)
	rd, regions := p.det.(facetrack.RegionDetector)
	live := trk.Tracks()
	var grey *facetrack.Grey
	if !f.Luma.Empty() {
		grey = &facetrack.Grey{W: f.Luma.W, H: f.Luma.H, Pix: f.Luma.Pix}
	}
	mode, err := trk.sched.Plan(f.Mat, grey, live, trk.Tentative(), regions)
	if err != nil {
		return fmt.Errorf("camera %s: frame %d: %w", p.cfg.Camera, f.Seq, err)
	}
	p.Stats.ModeCount(mode).Add(1)
	if mode == facetrack.ModeFull {
		p.Stats.FullBy[trk.sched.LastReason()].Add(1)
	}
	var dets []facetrack.Detection
	switch mode {
	case facetrack.ModeSkip, facetrack.ModePredict:
		trk.Predict(f.Time) // keep boxes moving, no new evidence
		return nil
	case facetrack.ModeRegions:
		dets, err = trk.sched.VerifyRegions(rd, f.Mat, live)
	default:
		dets, err = p.det.Detect(f.Mat)
	}
	if err != nil {
		return fmt.Errorf("camera %s: detect (%s) frame %d: %w", p.cfg.Camera, mode, f.Seq, err)
	}
	p.Stats.Detections.Add(uint64(len(dets)))
	tracks, events := trk.Update(dets, f.Time)
	trk.sched.Observe(mode, tracks, events)
	for _, ev := range events {
		if ev.Type == facetrack.EventNew {
			p.Stats.Tracks.Add(1)
		}
		p.cfg.Audience.Event(ev)
		if p.cfg.OnEvent != nil {
			p.cfg.OnEvent(ev)
		}
	}
	for _, t := range tracks {
		// Only crops of faces seen in this very frame go into windows;
		// predicted boxes would blur the evidence.
		if t.State != facetrack.Tracked || t.FramesSinceUpdate > 0 {
			continue
		}
		if !bufs.Observe(t.ID, f.Time) {
			continue
		}
		// Roll-corrected by the detection's eye keypoints when it has them
		// (BlazeFace); Haar's boxes give a plain square crop.
		det := facetrack.Detection{Box: t.Box, Keypoints: t.Det.Keypoints}
		crop, err := facetrack.CropAligned(f.Mat, det, p.cfg.CropMargin, p.cfg.CropSize)
		if err != nil {
			p.log.Warn("crop failed", "track", t.ID, "frame", f.Seq, "err", err)
			continue
		}
		s := window.Sample{FrameSeq: f.Seq, Time: f.Time, Box: t.Box, Score: t.Score, Crop: crop, Roll: facetrack.EyeRollDegrees(det.Keypoints)}
		if w, ok := bufs.Add(t.ID, s); ok {
			send(item{w: w})
		}
	}
	for _, ev := range events {
		if ev.Type == facetrack.EventEnd {
			endTrack(ev.Track.ID)
		}
	}
	return nil
}

// maxBatch bounds the windows analysed together.
const maxBatch = 8

func (p *Pipeline) engineLoop(ctx context.Context, queue <-chan item) {
	// Optional features (engine.BatchAnalyzer, engine.TrackForgetter): a
	// wrapping analyzer keeps them only by implementing them itself.
	ba, batching := p.analyzer.(engine.BatchAnalyzer)
	var ws []window.Window
	for it := range queue {
		if it.w.Samples == nil {
			p.forget(it.ended)
			continue
		}
		// Windows of other tracks (or a backlog) already waiting are
		// analysed together; a track-end marker stops the batch so the
		// track's last window is analysed before its state is forgotten.
		ws, scenes := append(ws[:0], it.w), []*tree.Scene{it.scene}
		var end *item
	gather:
		for batching && len(ws) < maxBatch {
			select {
			case more, ok := <-queue:
				if !ok {
					break gather
				}
				if more.w.Samples == nil {
					end = &more
					break gather
				}
				ws, scenes = append(ws, more.w), append(scenes, more.scene)
			default:
				break gather
			}
		}
		p.Stats.Windows.Add(uint64(len(ws)))
		var trees []*tree.Tree
		var err error
		if batching {
			trees, err = ba.AnalyzeBatch(ctx, ws)
		} else {
			var t *tree.Tree
			if t, err = p.analyzer.Analyze(ctx, ws[0]); err == nil {
				trees = []*tree.Tree{t}
			}
		}
		if err != nil && !errors.Is(err, context.Canceled) {
			p.Stats.AnalyzeErrors.Add(uint64(len(ws)))
			p.fail("engine", fmt.Errorf("camera %s track %d window %d (+%d more): %w", p.cfg.Camera, ws[0].TrackID, ws[0].Seq, len(ws)-1, err))
		}
		// trees[i] is the tree of ws[i] (engine.BatchAnalyzer's contract);
		// a count that breaks it cannot pair trees with their windows'
		// crops, so their face images are left out.
		paired := len(trees) == len(ws)
		if err == nil && !paired {
			p.fail("engine", fmt.Errorf("camera %s track %d window %d (+%d more): analyzer returned %d trees for %d windows; their face images are skipped", p.cfg.Camera, ws[0].TrackID, ws[0].Seq, len(ws)-1, len(trees), len(ws)))
		}
		for i, t := range trees {
			var seen time.Time // zero: the audience meter's latest
			if paired {
				p.withScene(t, scenes[i])
				seen = ws[i].LastSeen
			} else {
				p.withScene(t, scenes[len(scenes)-1]) // the camera's latest
			}
			p.publish(ctx, t, seen)
			if paired {
				p.faceImage(t, ws[i])
			}
		}
		if end != nil {
			p.forget(end.ended)
		}
	}
}

// forget drops an ended track's state, after its last tree.
func (p *Pipeline) forget(id int) {
	if f, ok := p.analyzer.(engine.TrackForgetter); ok {
		f.Forget(p.cfg.Camera, id)
	}
	p.cfg.Audience.Forget(id)
}

// publish fills t's presence as of its window (seen: the track's latest
// detection when the window was made, so an offline run's trees do not
// depend on how far the frame loop ran ahead of the engine) and sends it.
func (p *Pipeline) publish(ctx context.Context, t *tree.Tree, seen time.Time) {
	p.cfg.Audience.ApplySeen(t, seen)
	for _, s := range p.sinks {
		if err := s.Publish(ctx, t); err != nil {
			p.Stats.SinkErrors.Add(1)
			p.fail("sink", err)
		}
	}
	p.Stats.Trees.Add(1)
	if p.cfg.OnTree != nil {
		p.cfg.OnTree(t)
	}
}

func (p *Pipeline) fail(stage string, err error) {
	p.log.Error(stage+" failed", "err", err)
	if p.cfg.OnError != nil {
		p.cfg.OnError(stage, err)
	}
}
