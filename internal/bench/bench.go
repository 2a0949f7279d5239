// Package bench measures, in one run on one file, how fast OpenCV decodes it
// alone and how fast the whole pipeline processes it, so the pipeline's cost
// is read as a ratio to a ceiling measured on the same machine at the same
// moment.
package bench

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/cpuclock"
	"github.com/edgemo/edgemo/internal/parts"
	"github.com/edgemo/edgemo/internal/pipeline"
)

// Result of one bench run.
type Result struct {
	Source         string
	DecodeFrames   int
	DecodeSeconds  float64
	PipelineFrames uint64
	PipelineSecs   float64
	Trees          uint64
	Detections     uint64
	DetectTime     time.Duration      // summed Detect calls
	DetectCalls    int                // frames the detector ran on
	RegionTime     time.Duration      // summed region verifications (adaptive detection)
	RegionFrames   uint64             // frames verified in regions only
	Skipped        uint64             // frames without detection (predicted, motion-skipped)
	FullReasons    map[string]uint64  // full detections by why they ran
	Stages         []engine.StageCost // the fast analyzer's heads (crops = faces × window samples)
	CPU            time.Duration      // process CPU time of the pipeline pass
	DecodeTime     time.Duration      // CPU time of decoding in it: the source's reads and any decoder threads (capture.Source.DecodeCPU)
	DecodeAlone    time.Duration      // decode alone's CPU per frame × frames read: what DecodeTime would be without the other stages
	ORTTime        time.Duration      // CPU time of every ONNX Runtime Run in it
	Scene          engine.StageCost   // the pipeline's scene sampling (items = frames sampled)
}

func (r Result) DecodeFPS() float64   { return float64(r.DecodeFrames) / r.DecodeSeconds }
func (r Result) PipelineFPS() float64 { return float64(r.PipelineFrames) / r.PipelineSecs }

// Ratio is pipeline fps / decode fps (1 = the pipeline costs nothing beyond decoding).
func (r Result) Ratio() float64 { return r.PipelineFPS() / r.DecodeFPS() }

func (r Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "source    %s\ndecode    %6d frames  %8.1f fps  (OpenCV decode alone)\npipeline  %6d frames  %8.1f fps  (decode+detect+track+crop+window+heads, %d trees)\nratio     %.3f  (pipeline fps / decode fps)\n",
		r.Source, r.DecodeFrames, r.DecodeFPS(), r.PipelineFrames, r.PipelineFPS(), r.Trees, r.Ratio())
	if r.DetectCalls > 0 {
		fmt.Fprintf(&b, "stage     %-12s %8.2f ms/frame  (%.2f ms per full detection on %d frames, %d faces; %s)\n", "detect", ms(r.DetectTime)/float64(r.PipelineFrames), ms(r.DetectTime)/float64(r.DetectCalls), r.DetectCalls, r.Detections, reasons(r.FullReasons))
	}
	if r.RegionFrames > 0 {
		fmt.Fprintf(&b, "stage     %-12s %8.2f ms/frame  (%.2f ms per region frame on %d frames; %d frames without detection)\n", "detect-rgn", ms(r.RegionTime)/float64(r.PipelineFrames), ms(r.RegionTime)/float64(r.RegionFrames), r.RegionFrames, r.Skipped)
	}
	for _, s := range r.Stages {
		if s.Items == 0 {
			continue
		}
		fmt.Fprintf(&b, "stage     %-12s %8.2f ms/face   %8.2f ms/frame  (%d crops in %d runs)\n",
			s.Stage, ms(s.Time)/float64(s.Items), ms(s.Time)/float64(r.PipelineFrames), s.Items, s.Runs)
	}
	if r.CPU > 0 && r.PipelineFrames > 0 {
		// CPU time, not wall: on a machine shared with other work wall
		// time counts waiting for a core; on an idle core the two agree.
		g := r.CPU - r.DecodeTime - r.ORTTime
		n := float64(r.PipelineFrames)
		// The pipeline's own rate once frames are decoded: what a camera
		// with hardware decode, or decode on another core, would leave.
		if after := r.CPU - r.DecodeTime; after > 0 {
			fmt.Fprintf(&b, "after decode %8.1f fps  (CPU − decode = %.2f ms/frame: detect+track+crop+window+heads without OpenCV's decode)\n", n/after.Seconds(), ms(after)/n)
		}
		fmt.Fprintf(&b, "go share  %.1f%%  (CPU − decode − ORT Run = %.2f ms/frame of %.2f CPU, %.2f wall; decode %.2f (alone %.2f), ORT Run %.2f)\n", 100*g.Seconds()/r.CPU.Seconds(),
			ms(g)/n, ms(r.CPU)/n, 1000*r.PipelineSecs/n, ms(r.DecodeTime)/n, ms(r.DecodeAlone)/n, ms(r.ORTTime)/n)
	}
	if s := r.Scene; s.Items > 0 {
		fmt.Fprintf(&b, "stage     %-12s %8.3f ms/sample %8.4f ms/frame  (%d frames sampled; %.3f%% of the pipeline's wall time)\n",
			s.Stage, ms(s.Time)/float64(s.Items), ms(s.Time)/float64(r.PipelineFrames), s.Items, r.SceneShare()*100)
	}
	return b.String()
}

// SceneShare is the scene stage's time as a fraction of the pipeline's wall
// time.
func (r Result) SceneShare() float64 { return r.Scene.Time.Seconds() / r.PipelineSecs }

// reasons lists counts by name, most first ("interval 40, unsteady 12").
func reasons(m map[string]uint64) string {
	names := slices.Collect(maps.Keys(m))
	slices.SortFunc(names, func(a, b string) int { return cmp.Or(cmp.Compare(m[b], m[a]), cmp.Compare(a, b)) })
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	if len(parts) == 0 {
		return "no reasons recorded"
	}
	return "why: " + strings.Join(parts, ", ")
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// timedDetector sums the wrapped detector's time; safe to read while a
// pipeline uses it.
type timedDetector struct {
	facetrack.Detector
	fullNS, rgNS atomic.Int64
	n            atomic.Int64
}

func (t *timedDetector) Detect(img gocv.Mat) ([]facetrack.Detection, error) {
	t0 := time.Now()
	dets, err := t.Detector.Detect(img)
	t.fullNS.Add(int64(time.Since(t0)))
	t.n.Add(1)
	return dets, err
}

func (t *timedDetector) times() (full, regions time.Duration) {
	return time.Duration(t.fullNS.Load()), time.Duration(t.rgNS.Load())
}

// timedRegions is a timedDetector over a facetrack.RegionDetector, so the
// pipeline still verifies regions through it.
type timedRegions struct{ *timedDetector }

func (t *timedRegions) DetectRegions(img gocv.Mat, rois []facetrack.Rect) ([]facetrack.Detection, error) {
	t0 := time.Now()
	dets, err := t.Detector.(facetrack.RegionDetector).DetectRegions(img, rois)
	t.rgNS.Add(int64(time.Since(t0)))
	return dets, err
}

// Decode reads every frame of path with OpenCV and nothing else.
func Decode(path string) (int, time.Duration, error) {
	n, d, _, err := decodeCPU(path)
	return n, d, err
}

// decodeCPU is Decode that also returns the process CPU time it took:
// FFmpeg decodes on threads of its own, so the caller's thread time would
// miss most of it.
func decodeCPU(path string) (int, time.Duration, time.Duration, error) {
	cpu0 := cpuclock.Process()
	n, d, err := decode(path)
	return n, d, cpuclock.Process() - cpu0, err
}

func decode(path string) (int, time.Duration, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("bench: %w", err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: open %s: %w", path, err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	start := time.Now()
	for vc.Read(&m) && !m.Empty() {
		n++
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("bench: %s: no frames decoded", path)
	}
	return n, time.Since(start), nil
}

// Run measures decode alone, then the whole offline pipeline with a
// discarding sink, on the same file. A non-nil profile receives a CPU
// profile of the pipeline pass.
func Run(ctx context.Context, path string, cfg pipeline.Config, st *parts.Stack, log *slog.Logger, profile io.Writer) (Result, error) {
	r := Result{Source: path}
	n, d, dcpu, err := decodeCPU(path)
	if err != nil {
		return r, err
	}
	r.DecodeFrames, r.DecodeSeconds = n, d.Seconds()

	cfg.Source.Source = path
	cfg.Offline = true
	det := &timedDetector{Detector: st.Detector}
	var pdet facetrack.Detector = det
	if _, ok := st.Detector.(facetrack.RegionDetector); ok {
		pdet = &timedRegions{det}
	}
	var before map[string]engine.StageCost
	sc, _ := st.Analyzer.(engine.StageCoster) // the fast heads' costs (Tiered forwards its fast tier's)
	if sc != nil {
		before = map[string]engine.StageCost{}
		for _, s := range sc.StageCosts() {
			before[s.Stage] = s
		}
	}
	p := pipeline.New(cfg, pdet, st.Analyzer, nil, log)
	if profile != nil {
		if err := pprof.StartCPUProfile(profile); err != nil {
			return r, fmt.Errorf("bench: cpu profile: %w", err)
		}
	}
	_, ort0 := engine.RunCPU()
	cpu0 := cpuclock.Process()
	start := time.Now()
	err = p.Run(ctx)
	r.PipelineSecs = time.Since(start).Seconds()
	_, ort1 := engine.RunCPU()
	r.CPU = cpuclock.Process() - cpu0
	// Decode's share is measured in the pass itself: beside the other stages
	// it runs slower than alone (they evict its caches). Where the OS cannot
	// say, decode alone's cost stands in.
	cs := p.CaptureStats()
	r.ORTTime, r.DecodeAlone = ort1-ort0, time.Duration(float64(dcpu)*float64(cs.Read)/float64(n))
	r.DecodeTime = cmp.Or(p.DecodeCPU(), r.DecodeAlone)
	if profile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return r, err
	}
	r.PipelineFrames, r.Trees, r.Detections = p.Stats.Frames.Load(), p.Stats.Trees.Load(), p.Stats.Detections.Load()
	r.DetectTime, r.DetectCalls = time.Duration(det.fullNS.Load()), int(det.n.Load())
	r.RegionTime, r.RegionFrames = time.Duration(det.rgNS.Load()), p.Stats.RegionDetect.Load()
	r.Skipped = p.Stats.MotionSkipped.Load() + p.Stats.Predicted.Load()
	r.FullReasons = p.Stats.FullReasons()
	for _, s := range p.StageCosts() {
		if s.Stage == pipeline.StageScene {
			r.Scene = s
		}
	}
	if sc != nil {
		for _, s := range sc.StageCosts() { // this run's share only
			b := before[s.Stage]
			s.Runs, s.Items, s.Time = s.Runs-b.Runs, s.Items-b.Items, s.Time-b.Time
			r.Stages = append(r.Stages, s)
		}
	}
	return r, nil
}
