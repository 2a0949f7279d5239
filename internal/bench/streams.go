package bench

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/cpuclock"
	"github.com/edgemo/edgemo/internal/pipeline"
)

// StreamsConfig is one `bench streams` search.
type StreamsConfig struct {
	Source  string
	Max     int           // most cameras tried
	Min     int           // fewest cameras tried, taken as held below it (0: 1; Max: one trial at Max)
	Warmup  time.Duration // before counting (sessions warm, queues filled)
	Measure time.Duration // the interval whose drops count
	// Pipeline is every camera's pipeline (schedule, window); Source,
	// Camera, Realtime are set per camera.
	Pipeline pipeline.Config
	// NewDetector opens one camera's detector (as the daemon does: one each).
	NewDetector func() (facetrack.Detector, error)
	Analyzer    engine.Analyzer // shared by all cameras, as in the daemon
	// Stagger starts camera i of N i/N of the clip later, so the cameras
	// are at different points of it, as independent cameras are; without
	// it every camera hits the clip's busiest second (a cut, new faces:
	// full detections and first looks everywhere) in the same instant.
	Stagger bool
}

// Trial is N cameras looping the clip in real time for the measured interval.
type Trial struct {
	Cameras                     int
	Seconds                     float64
	Frames, Expected            uint64 // processed; N × fps × seconds
	CaptureDrops, WindowDrops   uint64
	Full, Regions, Pred, Skip   uint64 // frames by detection mode
	Trees                       uint64
	CPU                         time.Duration // process user+system time
	Decode, ORT, DetFull, DetRg time.Duration // summed over cameras; Decode measured in the run (pipeline.DecodeCPU)
	ORTRuns                     int64
	Stages                      []engine.StageCost
	// DecodeAlone is the frames read at decode alone's CPU per frame: what
	// Decode would be without the other stages beside it, and its stand-in
	// where the OS does not say.
	DecodeAlone time.Duration
	// RSS is the process's resident memory at the end of the measured
	// interval, in bytes (0: unknown). Trials run in one process, smallest
	// first, so it includes what earlier trials' heap has kept.
	RSS int64
}

// Held: no frame was dropped at capture, and the cameras kept up with the
// clock (a decoder that falls behind drops nothing but delivers late):
// at least 97% of the frames due (a looping file loses a few reopening).
func (t Trial) Held() bool {
	return t.CaptureDrops == 0 && t.Frames > 0 && float64(t.Frames) >= 0.97*float64(t.Expected)
}

// StreamsResult is the search's outcome.
type StreamsResult struct {
	Source    string
	FPS       float64       // the clip's rate
	Clip      time.Duration // the clip's length
	Stagger   bool
	DecodeFPS float64       // OpenCV decode alone, one goroutine, same run
	DecodeCPU time.Duration // process CPU per frame of decode alone
	Cores     int
	Trials    []Trial
	Held      int // most cameras held in a trial (0: none tried held)
}

// decodeCams is the cameras decoding alone would hold: the cores' CPU over
// decode's CPU per camera-second.
func (r StreamsResult) decodeCams() float64 {
	if r.DecodeCPU <= 0 {
		return 0
	}
	return float64(r.Cores) * float64(time.Second) / (float64(r.DecodeCPU) * r.FPS)
}

// best is the trial at Held cameras (the largest held), or the smallest tried.
func (r StreamsResult) best() (Trial, bool) {
	var out Trial
	ok := false
	for _, t := range r.Trials {
		if t.Held() && t.Cameras == r.Held {
			return t, true
		}
		if !ok || t.Cameras < out.Cameras {
			out, ok = t, true
		}
	}
	return out, ok
}

func (r StreamsResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source    %s (%.0f fps, %.1f s)\n", r.Source, r.FPS, r.Clip.Seconds())
	if r.Stagger {
		fmt.Fprintf(&b, "stagger   camera i of N starts i/N of the clip later (--stagger=false: all in step)\n")
	} else {
		fmt.Fprintf(&b, "stagger   off: every camera plays the clip in step\n")
	}
	fmt.Fprintf(&b, "decode    %8.1f fps  OpenCV decode alone (%.2f ms CPU a frame): %.1f cameras on %d cores\n",
		r.DecodeFPS, ms(r.DecodeCPU), r.decodeCams(), r.Cores)
	for _, t := range r.Trials {
		mark := "held"
		if !t.Held() {
			mark = "DROPS"
		}
		fmt.Fprintf(&b, "cameras %3d  %-5s  %6.1f of %6.1f frames/s  capture drops %d  window drops %d  detect full %d regions %d predicted %d motion-skipped %d  CPU %.0f%%  RSS %d MiB\n",
			t.Cameras, mark, float64(t.Frames)/t.Seconds, float64(t.Expected)/t.Seconds, t.CaptureDrops, t.WindowDrops,
			t.Full, t.Regions, t.Pred, t.Skip, 100*t.CPU.Seconds()/t.Seconds, t.RSS>>20)
	}
	if r.Held == 0 && len(r.Trials) > 0 {
		fmt.Fprintf(&b, "held      none: every count tried dropped frames, the fewest %d\n", slices.MinFunc(r.Trials, func(a, b Trial) int { return a.Cameras - b.Cameras }).Cameras)
	} else {
		fmt.Fprintf(&b, "held      %d cameras in real time with zero capture drops: %.2f of the %.1f that decoding alone would hold\n",
			r.Held, float64(r.Held)/r.decodeCams(), r.decodeCams())
	}
	t, ok := r.best()
	if !ok || t.Frames == 0 {
		return b.String()
	}
	f := float64(t.Frames)
	per := func(d time.Duration) float64 { return ms(d) / f }
	fmt.Fprintf(&b, "per frame at %d cameras (CPU %.2f ms/frame):\n", t.Cameras, per(t.CPU))
	fmt.Fprintf(&b, "stage     %-12s %8.2f ms/frame  (in the run: reads and any decoder threads; decode alone %.2f ms/frame, %.2f ms a frame read)\n",
		"decode", per(t.Decode), per(t.DecodeAlone), ms(r.DecodeCPU))
	if n := t.Full; n > 0 {
		fmt.Fprintf(&b, "stage     %-12s %8.2f ms/frame  (%.2f ms per full detection, %d)\n", "detect-full", per(t.DetFull), ms(t.DetFull)/float64(n), n)
	}
	if n := t.Regions; n > 0 {
		fmt.Fprintf(&b, "stage     %-12s %8.2f ms/frame  (%.2f ms per region frame, %d)\n", "detect-rgn", per(t.DetRg), ms(t.DetRg)/float64(n), n)
	}
	for _, s := range t.Stages {
		if s.Items > 0 {
			fmt.Fprintf(&b, "stage     %-12s %8.2f ms/frame  (%.2f ms/face, %d crops)\n", s.Stage, per(s.Time), ms(s.Time)/float64(s.Items), s.Items)
		}
	}
	fmt.Fprintf(&b, "stage     %-12s %8.2f ms/frame  (%d Runs, all models)\n", "ort-run", per(t.ORT), t.ORTRuns)
	wall := t.CPU
	goShare := wall - t.Decode - t.ORT
	// On a machine shared with other work the process may get far less
	// than its cores; its CPU per frame still says what the cores would hold.
	fmt.Fprintf(&b, "cpu-bound %.1f cameras on %d cores at %.0f ms CPU per camera-second (this process had %.0f%% of one core here)\n",
		float64(r.Cores)*1000/(per(t.CPU)*r.FPS), r.Cores, per(t.CPU)*r.FPS, 100*t.CPU.Seconds()/t.Seconds)
	fmt.Fprintf(&b, "go share  %.1f%%  (CPU − decode − ORT Run = %.2f ms/frame of %.2f CPU)\n", 100*goShare.Seconds()/wall.Seconds(), per(goShare), per(wall))
	return b.String()
}

// Streams finds the most cameras looping cfg.Source in real time that the
// machine holds with zero capture drops: a binary search over Min..Max.
func Streams(ctx context.Context, cfg StreamsConfig, log *slog.Logger) (StreamsResult, error) {
	r := StreamsResult{Source: cfg.Source, Cores: runtime.GOMAXPROCS(0)}
	n, d, dcpu, err := decodeCPU(cfg.Source)
	if err != nil {
		return r, err
	}
	r.DecodeFPS = float64(n) / d.Seconds()
	r.DecodeCPU = dcpu / time.Duration(n)
	vc, err := gocv.VideoCaptureFile(cfg.Source)
	if err != nil {
		return r, fmt.Errorf("bench: open %s: %w", cfg.Source, err)
	}
	r.FPS = vc.Get(gocv.VideoCaptureFPS)
	frames := vc.Get(gocv.VideoCaptureFrameCount)
	vc.Close()
	if !(r.FPS > 0 && r.FPS <= 240) {
		return r, fmt.Errorf("bench: %s reports %v fps: re-encode it at a fixed rate (ffmpeg -i %s -r 25 -c:v libx264 out.mp4)", cfg.Source, r.FPS, cfg.Source)
	}
	if frames > 0 {
		r.Clip = time.Duration(frames / r.FPS * float64(time.Second))
	}
	cfg.Stagger = cfg.Stagger && r.Clip > 0 // a clip of unknown length plays in step
	r.Stagger = cfg.Stagger
	lo, hi := max(0, cfg.Min-1), cfg.Max // lo held (below Min: taken as held), hi+1 not known to hold
	try := func(cams int) (bool, error) {
		t, err := trial(ctx, cfg, cams, r.FPS, r.Clip, r.DecodeCPU, log)
		if err != nil {
			return false, err
		}
		r.Trials = append(r.Trials, t)
		return t.Held(), nil
	}
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if len(r.Trials) == 0 {
			mid = min(hi, max(lo+1, cfg.Max/2)) // start in the middle, then halve
		}
		ok, err := try(mid)
		if err != nil {
			return r, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	// Held counts measured trials only: below Min the search takes
	// counts as held without trying them, and the report must not claim them.
	for _, t := range r.Trials {
		if t.Held() {
			r.Held = max(r.Held, t.Cameras)
		}
	}
	return r, nil
}

// camRun is one camera of a trial: its pipelines (one per loop of the
// clip) and their counters.
type camRun struct {
	mu   sync.Mutex
	cur  *pipeline.Pipeline
	done counts
	det  *timedDetector
}

type counts struct {
	frames, read, drops, wdrops, trees, full, rg, pred, skip uint64
	decode                                                   time.Duration
}

// countsOf reads p's counters; its decode CPU reads /proc, which is why
// the trial takes two snapshots and no more.
func countsOf(p *pipeline.Pipeline) counts {
	st := p.CaptureStats()
	s := &p.Stats
	return counts{s.Frames.Load(), st.Read, st.DroppedSlow, s.WindowsDropped.Load(), s.Trees.Load(),
		s.FullDetect.Load(), s.RegionDetect.Load(), s.Predicted.Load(), s.MotionSkipped.Load(), p.DecodeCPU()}
}

func (c counts) add(o counts) counts {
	return counts{c.frames + o.frames, c.read + o.read, c.drops + o.drops, c.wdrops + o.wdrops, c.trees + o.trees,
		c.full + o.full, c.rg + o.rg, c.pred + o.pred, c.skip + o.skip, c.decode + o.decode}
}

func (c counts) sub(o counts) counts {
	return counts{c.frames - o.frames, c.read - o.read, c.drops - o.drops, c.wdrops - o.wdrops, c.trees - o.trees,
		c.full - o.full, c.rg - o.rg, c.pred - o.pred, c.skip - o.skip, c.decode - o.decode}
}

func (c *camRun) snapshot() (counts, time.Duration, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.done
	if c.cur != nil {
		s = s.add(countsOf(c.cur))
	}
	full, rg := c.det.times()
	return s, full, rg
}

func trial(ctx context.Context, cfg StreamsConfig, cams int, fps float64, clip, decodeCPU time.Duration, log *slog.Logger) (Trial, error) {
	t := Trial{Cameras: cams}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runs := make([]*camRun, cams)
	for i := range runs {
		d, err := cfg.NewDetector()
		if err != nil {
			return t, err
		}
		defer d.Close()
		runs[i] = &camRun{det: &timedDetector{Detector: d}}
	}
	var wg sync.WaitGroup
	errs := make(chan error, cams)
	for i, c := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc := cfg.Pipeline
			pc.Camera = fmt.Sprintf("cam%d", i+1)
			pc.Source = capture.Config{Source: cfg.Source, Realtime: true, DecodeThreads: capture.DecodeThreads(cams), Deblock: cfg.Pipeline.Source.Deblock}
			pc.Offline = false
			var det facetrack.Detector = c.det
			if _, ok := c.det.Detector.(facetrack.RegionDetector); ok {
				det = &timedRegions{c.det}
			}
			if cfg.Stagger {
				select {
				case <-time.After(clip * time.Duration(i) / time.Duration(cams)):
				case <-ctx.Done():
					return
				}
			}
			for ctx.Err() == nil { // loop the clip, as the daemon loops a file
				p := pipeline.New(pc, det, cfg.Analyzer, nil, log)
				c.mu.Lock()
				c.cur = p
				c.mu.Unlock()
				err := p.Run(ctx)
				c.mu.Lock()
				c.done, c.cur = c.done.add(countsOf(p)), nil
				c.mu.Unlock()
				if err != nil && ctx.Err() == nil {
					errs <- fmt.Errorf("bench streams: camera %d: %w", i+1, err)
					cancel()
					return
				}
				pc.Tracker.FirstID = p.NextTrackID()
			}
		}()
	}
	snap := func() (counts, time.Duration, time.Duration, time.Duration, int64, time.Duration, map[string]engine.StageCost) {
		var all counts
		var full, rg time.Duration
		for _, c := range runs {
			s, f, g := c.snapshot()
			all, full, rg = all.add(s), full+f, rg+g
		}
		calls, ort := engine.RunCPU()
		st := map[string]engine.StageCost{}
		if sc, ok := cfg.Analyzer.(engine.StageCoster); ok {
			for _, s := range sc.StageCosts() {
				st[s.Stage] = s
			}
		}
		return all, full, rg, ort, calls, cpuclock.Process(), st
	}
	sleep := func(d time.Duration) bool {
		select {
		case <-time.After(d):
			return true
		case <-ctx.Done():
			return false
		}
	}
	warm := cfg.Warmup
	if cfg.Stagger { // the warm-up starts when the last camera has
		warm += clip * time.Duration(cams-1) / time.Duration(cams)
	}
	ok := sleep(warm)
	c0, f0, g0, o0, n0, cpu0, s0 := snap()
	start := time.Now()
	ok = ok && sleep(cfg.Measure)
	c1, f1, g1, o1, n1, cpu1, s1 := snap()
	t.Seconds = time.Since(start).Seconds()
	t.RSS = rss()
	cancel()
	wg.Wait()
	select {
	case err := <-errs:
		return t, err
	default:
	}
	if !ok {
		return t, ctx.Err()
	}
	d := c1.sub(c0)
	t.Frames, t.CaptureDrops, t.WindowDrops, t.Trees = d.frames, d.drops, d.wdrops, d.trees
	t.Full, t.Regions, t.Pred, t.Skip = d.full, d.rg, d.pred, d.skip
	t.Expected = uint64(float64(cams) * fps * t.Seconds)
	// Decode's share as measured in the run: beside the other stages it runs
	// slower than alone (they evict its caches), so decode alone's figure,
	// kept for comparison, stands in only where the OS does not say.
	t.DecodeAlone = time.Duration(d.read) * decodeCPU
	t.Decode, t.DetFull, t.DetRg = cmp.Or(d.decode, t.DecodeAlone), f1-f0, g1-g0
	t.ORT, t.ORTRuns, t.CPU = o1-o0, n1-n0, cpu1-cpu0
	for name, s := range s1 {
		b := s0[name]
		s.Runs, s.Items, s.Time = s.Runs-b.Runs, s.Items-b.Items, s.Time-b.Time
		t.Stages = append(t.Stages, s)
	}
	sortStages(t.Stages)
	log.Info("bench streams trial", "cameras", cams, "frames_per_s", round1(float64(t.Frames)/t.Seconds), "of", round1(float64(t.Expected)/t.Seconds), "capture_drops", t.CaptureDrops)
	return t, nil
}

func sortStages(s []engine.StageCost) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j].Stage < s[j-1].Stage; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }

// rss is the process's resident set size in bytes, from /proc (0 where
// there is none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res int64
	if _, err := fmt.Sscan(string(b), &size, &res); err != nil {
		return 0
	}
	return res * int64(os.Getpagesize())
}
