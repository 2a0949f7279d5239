package daemon

import (
	"encoding/json"
	"sort"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/ring"
	"github.com/edgemo/edgemo/engine/schedule"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/engine/videmo/openai"
)

// view is what readers (metrics, /readyz, MQTT stats) see: a copy published
// by apply, so they never wait on apply's lock (apply may be closing the
// very MQTT sink whose stats timer is asking).
type view struct {
	cams      []*camera
	tiered    *schedule.Tiered // nil without VidEmo
	provider  string
	model     string
	precision string // "int8" or "fp32": models.precision resolved
	mqtt      *mqttPart
	rtc       *rtcPart
	ready     bool
}

// publishView must be called with d.mu held.
func (d *Daemon) publishView() {
	v := &view{mqtt: d.mqtt, rtc: d.rtc, ready: d.ready}
	for _, c := range d.cams {
		v.cams = append(v.cams, c)
	}
	sort.Slice(v.cams, func(i, j int) bool { return v.cams[i].name < v.cams[j].name })
	if d.models != nil {
		v.provider, v.model, v.precision = d.models.Provider, d.models.Manifest.Ref(), registry.PrecisionFP32
		if d.models.Precision.Int8 {
			v.precision = registry.PrecisionInt8
		}
		v.tiered, _ = d.models.Analyzer.(*schedule.Tiered)
	}
	d.view.Store(v)
}

// CameraStats is one camera in a snapshot.
type CameraStats struct {
	Name           string  `json:"name"`
	Status         string  `json:"status"`
	Faces          int     `json:"faces"`
	Frames         uint64  `json:"frames"`
	CaptureRead    uint64  `json:"capture_read"`
	DecodeCPUS     float64 `json:"decode_cpu_s"` // CPU seconds spent decoding the source
	Detections     uint64  `json:"detections"`
	Windows        uint64  `json:"windows"`
	Trees          uint64  `json:"trees"`
	DroppedSlow    uint64  `json:"dropped_capture_slow"`
	DroppedRate    uint64  `json:"dropped_capture_fps_cap"`
	WindowsDropped uint64  `json:"dropped_windows"`
	EngineQueue    int     `json:"engine_queue"`
	FPS            float64 `json:"fps"`            // frames/s since the previous stats message
	TreesPerSec    float64 `json:"trees_per_s"`    // likewise
	LatencyP50     float64 `json:"latency_p50_ms"` // capture → tree, recent trees
	LatencyP95     float64 `json:"latency_p95_ms"`
	// Scene is the camera's picture over the last window span (tree.Scene;
	// absent before its first frame).
	Scene *tree.Scene `json:"scene,omitempty"`

	// Frames by what the detector did: full frame, regions around tracked
	// faces (adaptive detection), nothing (tracker prediction), nothing
	// because no face was tracked and nothing moved (the motion gate).
	DetectFull    uint64 `json:"detect_full"`
	DetectRegions uint64 `json:"detect_regions"`
	DetectNone    uint64 `json:"detect_predicted"`
	MotionSkipped uint64 `json:"detect_motion_skipped"`
	// DetectFullBy counts the full detections by why they ran
	// (facetrack.Reason names: interval, motion, new_track, lost_track,
	// unsteady, recheck): what keeps a camera off the cheap modes.
	DetectFullBy map[string]uint64 `json:"detect_full_by,omitempty"`
}

// addCounts adds b's counts into a (allocated when nil) and returns it.
func addCounts(a, b map[string]uint64) map[string]uint64 {
	if len(b) == 0 {
		return a
	}
	if a == nil {
		a = make(map[string]uint64, len(b))
	}
	for k, v := range b {
		a[k] += v
	}
	return a
}

// Snapshot is the daemon's state for stats and metrics.
type Snapshot struct {
	Time     time.Time `json:"time"`
	Ready    bool      `json:"ready"`
	Provider string    `json:"provider,omitempty"`
	Model    string    `json:"model,omitempty"`
	// Precision is "int8" where the emotion head, faceres and antispoof run their
	// int8 variants (models.precision), else "fp32".
	Precision string        `json:"precision,omitempty"`
	Cameras   []CameraStats `json:"cameras"`
	MQTT      *MQTTStats    `json:"mqtt,omitempty"`
	WebRTC    *WebRTCStats  `json:"webrtc,omitempty"`
	VLM       *VLMStats     `json:"vlm,omitempty"` // when VidEmo is configured (tiered engine)
	Reload    ReloadStats   `json:"reload"`
}

// ReloadStats is the outcome of config reloads (file changes and SIGHUP).
type ReloadStats struct {
	// State is "ok", or "reload_failed" from a failed reload until a good
	// one: the daemon then runs the previous config (see Daemon.apply).
	State  string `json:"state"`
	Error  string `json:"error,omitempty"` // the failed reload's error
	OK     uint64 `json:"ok"`              // reloads applied
	Failed uint64 `json:"failed"`          // reloads refused
}

// VLMStats are the VidEmo scheduler's counters.
type VLMStats struct {
	Queue      int     `json:"queue"`
	InFlight   int     `json:"in_flight"`
	Completed  uint64  `json:"completed"`
	Errors     uint64  `json:"errors"`
	Stale      uint64  `json:"dropped_stale"`
	Superseded uint64  `json:"dropped_superseded"`
	Overflow   uint64  `json:"dropped_overflow"`
	Merged     uint64  `json:"merged_trees"`
	RunP50     float64 `json:"run_p50_ms"`
	RunP95     float64 `json:"run_p95_ms"`
	WaitP95    float64 `json:"wait_p95_ms"`
	// Remote: the remote VidEmo engine's health (models.videmo_remote).
	Remote *VLMRemoteStats `json:"remote,omitempty"`
}

// VLMRemoteStats are the remote VidEmo engine's client counters: requests
// (one per question), their failures after retries by kind, the circuit
// breaker's state and the round trip and server times.
type VLMRemoteStats struct {
	URL       string           `json:"url"`
	Up        bool             `json:"up"`    // the last request succeeded (or none was sent yet)
	State     string           `json:"state"` // circuit: closed, open, half_open
	Requests  int64            `json:"requests"`
	OK        int64            `json:"ok"`
	Failures  int64            `json:"failures"`
	Retries   int64            `json:"retries"`
	Rejected  int64            `json:"rejected"` // refused at once by the open circuit
	Errors    map[string]int64 `json:"errors,omitempty"`
	LastError string           `json:"last_error,omitempty"`
	RTTP50    float64          `json:"round_trip_p50_ms"`
	RTTP95    float64          `json:"round_trip_p95_ms"`
	ServerP50 float64          `json:"server_p50_ms"`
}

type MQTTStats struct {
	Connected bool   `json:"connected"`
	Queue     int    `json:"queue"`
	Dropped   uint64 `json:"dropped"`
	Sent      uint64 `json:"sent"`
	// Face images (privacy.face_images): sent, and dropped when the
	// connection could not keep up (images are never queued).
	FaceImagesSent    uint64 `json:"face_images_sent"`
	FaceImagesDropped uint64 `json:"face_images_dropped"`
}

type WebRTCStats struct {
	Viewers int    `json:"viewers"`
	Dropped uint64 `json:"dropped"`
}

// snapshot is the daemon's counters now. decode: with DecodeCPUS, which
// reads /proc for each running camera's decoder threads; without, 0, for
// readers that do not report it (/readyz may be probed every second).
func (d *Daemon) snapshot(decode bool) Snapshot {
	s := Snapshot{Time: time.Now()}
	s.Reload = ReloadStats{State: "ok", OK: d.reloadsOK.Load(), Failed: d.reloadsFailed.Load()}
	if e, _ := d.reloadErr.Load().(string); e != "" {
		s.Reload.State, s.Reload.Error = "reload_failed", e
	}
	v, _ := d.view.Load().(*view)
	if v == nil {
		return s
	}
	s.Ready, s.Provider, s.Model, s.Precision = v.ready, v.provider, v.model, v.precision
	for _, c := range v.cams {
		cs := CameraStats{Name: c.name, Status: c.Status(), Faces: c.Faces()}
		p, prev := c.counters()
		if p != nil {
			cs.Frames, cs.Detections = p.Stats.Frames.Load(), p.Stats.Detections.Load()
			cs.Windows, cs.Trees, cs.WindowsDropped = p.Stats.Windows.Load(), p.Stats.Trees.Load(), p.Stats.WindowsDropped.Load()
			cs.EngineQueue = p.QueueLen()
			cs.DetectFull, cs.DetectRegions = p.Stats.FullDetect.Load(), p.Stats.RegionDetect.Load()
			cs.DetectNone, cs.MotionSkipped = p.Stats.Predicted.Load(), p.Stats.MotionSkipped.Load()
			cs.DetectFullBy = p.Stats.FullReasons()
			cs.Scene = p.Scene()
			st := p.CaptureStats()
			cs.CaptureRead, cs.DroppedSlow, cs.DroppedRate = st.Read, st.DroppedSlow, st.DroppedRate
			if decode {
				cs.DecodeCPUS = p.DecodeCPU().Seconds()
			}
		}
		// Counters restart when a looping file restarts its pipeline; the
		// camera keeps totals across runs.
		cs.Frames += prev.Frames
		cs.Detections += prev.Detections
		cs.Windows += prev.Windows
		cs.Trees += prev.Trees
		cs.WindowsDropped += prev.WindowsDropped
		cs.CaptureRead += prev.CaptureRead
		if decode {
			cs.DecodeCPUS += prev.DecodeCPUS
		}
		cs.DroppedSlow += prev.DroppedSlow
		cs.DroppedRate += prev.DroppedRate
		cs.DetectFull += prev.DetectFull
		cs.DetectRegions += prev.DetectRegions
		cs.DetectNone += prev.DetectNone
		cs.MotionSkipped += prev.MotionSkipped
		cs.DetectFullBy = addCounts(cs.DetectFullBy, prev.DetectFullBy)
		cs.LatencyP50, cs.LatencyP95 = d.lat.percentiles(c.name)
		s.Cameras = append(s.Cameras, cs)
	}
	if m := v.mqtt; m != nil {
		s.MQTT = &MQTTStats{Connected: m.sink.Connected(), Queue: m.sink.QueueLen(), Dropped: m.sink.Dropped(), Sent: m.sink.Sent(),
			FaceImagesSent: m.sink.FacesSent(), FaceImagesDropped: m.sink.FacesDropped()}
	}
	if r := v.rtc; r != nil {
		s.WebRTC = &WebRTCStats{Viewers: r.sink.Viewers(), Dropped: r.sink.Dropped()}
	}
	if v.tiered != nil {
		ts := v.tiered.Stats()
		sc := ts.Scheduler
		ms := func(d time.Duration) float64 { return round1(float64(d.Microseconds()) / 1000) }
		s.VLM = &VLMStats{Queue: sc.QueueLen, InFlight: sc.InFlight, Completed: sc.Completed, Errors: sc.Errors,
			Stale: sc.Stale, Superseded: sc.Superseded, Overflow: sc.Overflow, Merged: ts.Merged,
			RunP50: ms(sc.Run.P50), RunP95: ms(sc.Run.P95), WaitP95: ms(sc.Wait.P95)}
		if rem, ok := v.tiered.Slow().(*openai.Remote); ok {
			c := rem.Client()
			cs := c.Stats()
			s.VLM.Remote = &VLMRemoteStats{URL: c.Endpoint(), Up: cs.Up, State: cs.State, Requests: cs.Requests, OK: cs.OK, Failures: cs.Failures,
				Retries: cs.Retries, Rejected: cs.Rejected, Errors: cs.Errors, LastError: cs.LastError,
				RTTP50: ms(cs.Latency.P50), RTTP95: ms(cs.Latency.P95), ServerP50: ms(cs.Server.P50)}
		}
	}
	return s
}

// lastTrees is the trees count of camera in the latest snapshot, also after
// shutdown (the view then keeps the stopped cameras' totals).
func (d *Daemon) lastTrees(camera string) uint64 {
	for _, c := range d.finalCams {
		if c.Name == camera {
			return c.Trees
		}
	}
	for _, c := range d.snapshot(false).Cameras {
		if c.Name == camera {
			return c.Trees
		}
	}
	return 0
}

// Snapshot is exported for `edgemo run` tests and the stats topic.
func (d *Daemon) Snapshot() Snapshot { return d.snapshot(true) }

type statSample struct {
	at     time.Time
	frames map[string]uint64
	trees  map[string]uint64
}

// statsJSON is the payload of <prefix>/stats: the snapshot plus rates since
// the previous call.
func (d *Daemon) statsJSON() any {
	s := d.snapshot(true)
	d.statMu.Lock()
	prev := d.lastStat
	cur := statSample{at: s.Time, frames: map[string]uint64{}, trees: map[string]uint64{}}
	for i, c := range s.Cameras {
		cur.frames[c.Name], cur.trees[c.Name] = c.Frames, c.Trees
		if dt := s.Time.Sub(prev.at).Seconds(); !prev.at.IsZero() && dt > 0 {
			if f, ok := prev.frames[c.Name]; ok && c.Frames >= f {
				s.Cameras[i].FPS = round1(float64(c.Frames-f) / dt)
				s.Cameras[i].TreesPerSec = round1(float64(c.Trees-prev.trees[c.Name]) / dt)
			}
		}
	}
	d.lastStat = cur
	d.statMu.Unlock()
	b, _ := json.Marshal(s)
	return json.RawMessage(b)
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }

// latencies keeps the last n capture→tree latencies per camera.
type latencies struct {
	mu sync.Mutex
	n  int
	by map[string]*ring.Ring[float64]
}

func newLatencies(n int) *latencies {
	return &latencies{n: n, by: map[string]*ring.Ring[float64]{}}
}

func (l *latencies) add(camera string, ms float64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.by[camera]
	if r == nil {
		r = ring.New[float64](l.n)
		l.by[camera] = r
	}
	r.Add(ms)
}

func (l *latencies) percentiles(camera string) (p50, p95 float64) {
	var r []float64
	l.mu.Lock()
	if x := l.by[camera]; x != nil {
		r = x.Sorted()
	}
	l.mu.Unlock()
	if len(r) == 0 {
		return 0, 0
	}
	at := func(q float64) float64 { return round1(r[min(len(r)-1, int(q*float64(len(r))))]) }
	return at(0.5), at(0.95)
}
