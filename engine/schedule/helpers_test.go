package schedule

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// slowStandIn stands in for the GPU model (the VidEmo VLM runner): it takes
// a fixed time per window (or waits on a gate), honours its context, and
// returns schema-valid trees built with tree. It checks the
// scheduler's promises from the runner's side: per-track and total
// in-flight counts.
type slowStandIn struct {
	delay time.Duration
	// gate, when set, is read once per window before it returns: the test
	// releases runs one by one (or closes it to release all).
	gate chan struct{}
	// failTrack: windows of this track fail (-1: none).
	failTrack int
	// onCall, when set, runs at the start of every Analyze.
	onCall func(w window.Window)

	started chan WindowKey // every start, when set (buffered by the test)

	mu          sync.Mutex
	inflight    map[TrackKey]int
	total       int
	maxPerTrack int
	maxTotal    int
	order       []WindowKey // start order
	forgotten   []TrackKey
	closed      bool
}

func newSlowStandIn(delay time.Duration) *slowStandIn {
	return &slowStandIn{delay: delay, failTrack: -1, inflight: map[TrackKey]int{}, started: make(chan WindowKey, 1024)}
}

const standInEngine = "videmo-3b-int4"

func (s *slowStandIn) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	k := TrackKey{w.Camera, w.TrackID}
	s.mu.Lock()
	s.inflight[k]++
	s.total++
	s.maxPerTrack = max(s.maxPerTrack, s.inflight[k])
	s.maxTotal = max(s.maxTotal, s.total)
	s.order = append(s.order, KeyOf(w))
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight[k]--
		s.total--
		s.mu.Unlock()
	}()
	if s.onCall != nil {
		s.onCall(w)
	}
	select {
	case s.started <- KeyOf(w):
	default:
	}
	t0 := time.Now()
	if s.gate != nil {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if s.delay > 0 {
		tm := time.NewTimer(s.delay)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if w.TrackID == s.failTrack {
		return nil, errors.New("stand-in: model failed")
	}
	return slowTree(w, time.Since(t0)), nil
}

func (s *slowStandIn) Forget(camera string, id int) {
	s.mu.Lock()
	s.forgotten = append(s.forgotten, TrackKey{camera, id})
	s.mu.Unlock()
}

func (s *slowStandIn) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return nil
}

func (s *slowStandIn) startOrder() []WindowKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]WindowKey(nil), s.order...)
}

func (s *slowStandIn) maxes() (perTrack, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxPerTrack, s.maxTotal
}

// waitStarted waits for the stand-in to start the window with key k.
func (s *slowStandIn) waitStarted(t *testing.T, k WindowKey) {
	t.Helper()
	tm := time.NewTimer(5 * time.Second)
	defer tm.Stop()
	for {
		select {
		case got := <-s.started:
			if got == k {
				return
			}
			t.Fatalf("started %v, want %v", got, k)
		case <-tm.C:
			t.Fatalf("%v did not start within 5 s", k)
		}
	}
}

// slowTree is what the VLM would say about w: all three levels.
func slowTree(w window.Window, lat time.Duration) *tree.Tree {
	v, a := 0.6, 0.3
	return &tree.Tree{
		Schema:  tree.Schema,
		ID:      tree.MakeID(w.Camera, w.TrackID, w.Seq),
		Camera:  w.Camera,
		TrackID: w.TrackID,
		Window:  tree.Window{Start: tree.Time(w.Start), End: tree.Time(w.End), Frames: max(len(w.Samples), 1), FPS: w.FPS},
		Attributes: &tree.Attributes{
			Age:    &tree.NumberValue{Value: 31, Confidence: 0.7},
			Gender: &tree.LabelValue{Value: "female", Confidence: 0.6},
			Other:  []tree.NamedValue{{Name: "glasses", Value: "yes", Confidence: 0.8}},
		},
		Expression: &tree.Expression{
			Label: "happy", Confidence: 0.7,
			Scores:  map[string]float64{"happy": 0.7, "neutral": 0.3},
			Cues:    []tree.Cue{{Name: "cheek_raiser", AU: "AU6", Intensity: 0.4, Evidence: tree.EvidenceVidEmo}},
			Valence: &v, Arousal: &a,
		},
		Emotion: &tree.Emotion{
			Label: "happiness", Fine: "amusement", Confidence: 0.78,
			Rationale: fmt.Sprintf("Sustained smile with raised cheeks (window %d).", w.Seq),
		},
		Source: tree.Source{Engine: standInEngine, Model: "videmo-standin@0123456789ab", Provider: "CUDAExecutionProvider",
			LatencyMS: float64(lat.Microseconds()) / 1000},
	}
}

// fastStandIn stands in for engine.FastAnalyzer: a tree at once for every
// window, per-track state that Forget drops.
type fastStandIn struct {
	mu        sync.Mutex
	tracks    map[TrackKey]int // windows seen
	forgotten []TrackKey
	closed    bool
}

func newFastStandIn() *fastStandIn { return &fastStandIn{tracks: map[TrackKey]int{}} }

func (f *fastStandIn) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	if len(w.Samples) == 0 {
		return nil, errors.New("no samples")
	}
	f.mu.Lock()
	f.tracks[TrackKey{w.Camera, w.TrackID}]++
	f.mu.Unlock()
	last := w.Samples[len(w.Samples)-1]
	return &tree.Tree{
		Schema:  tree.Schema,
		ID:      tree.MakeID(w.Camera, w.TrackID, w.Seq),
		Camera:  w.Camera,
		TrackID: w.TrackID,
		Window:  tree.Window{Start: tree.Time(w.Start), End: tree.Time(w.End), Frames: len(w.Samples), FPS: w.FPS},
		Face:    &tree.Face{Box: [4]float64{last.Box.X, last.Box.Y, last.Box.W, last.Box.H}, Score: float64(last.Score), FramesSeen: w.FramesSeen},
		Attributes: &tree.Attributes{
			Gender:   &tree.LabelValue{Value: "male", Confidence: 0.9},
			Age:      &tree.NumberValue{Value: 40, Confidence: 0.3},
			HeadPose: &tree.HeadPose{Yaw: -12, Pitch: 4.5, Roll: 1},
			Other:    []tree.NamedValue{{Name: "glasses", Value: "no", Confidence: 0.9}},
		},
		Expression: &tree.Expression{
			Label: "neutral", Confidence: 0.55,
			Scores: map[string]float64{"happy": 0.45, "neutral": 0.55},
			Cues:   []tree.Cue{{Name: "lip_corner_puller", AU: "AU12", Intensity: 0.3, Evidence: tree.EvidenceLandmarks}},
		},
		Emotion: &tree.Emotion{Label: "neutral", Confidence: 0.55, Trend: "steady", Rationale: "neutral in 3 of 4 frames"},
		Source:  tree.Source{Engine: "fast-head", Model: "emotion@0123456789ab", Provider: "CPUExecutionProvider", LatencyMS: 0.2},
	}, nil
}

func (f *fastStandIn) Forget(camera string, id int) {
	f.mu.Lock()
	delete(f.tracks, TrackKey{camera, id})
	f.forgotten = append(f.forgotten, TrackKey{camera, id})
	f.mu.Unlock()
}

func (f *fastStandIn) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	return nil
}

// mkWindow is window seq of a track ending at end, 4 samples of a square
// face of the given side and detector score.
func mkWindow(cam string, track int, seq uint64, end time.Time, side float64, score float32) window.Window {
	const n = 4
	w := window.Window{Camera: cam, TrackID: track, Seq: seq, Start: end.Add(-2 * time.Second), End: end, FPS: 2, FramesSeen: int(seq+1) * n}
	for i := range n {
		w.Samples = append(w.Samples, window.Sample{
			FrameSeq: seq*n + uint64(i),
			Time:     end.Add(time.Duration(i-n+1) * 500 * time.Millisecond),
			Box:      facetrack.Rect{X: 100, Y: 80, W: side, H: side},
			Score:    score,
			Crop:     facetrack.Crop{W: 2, H: 2, Pix: make([]byte, 12)},
		})
	}
	return w
}

// checkAccounting: every submitted window is in exactly one bucket.
func checkAccounting(t *testing.T, st Stats) {
	t.Helper()
	sum := st.Superseded + st.Stale + st.Overflow + st.Forgotten + st.Closed +
		st.Completed + st.Errors + st.Cancelled + uint64(st.InFlight) + uint64(st.QueueLen)
	if sum != st.Submitted {
		t.Errorf("accounting: submitted %d != sum of buckets %d (%+v)", st.Submitted, sum, st)
	}
}

// noGoroutinesLeft fails when a goroutine of this package (scheduler
// workers, stand-ins) is still alive 2 s after the call.
func noGoroutinesLeft(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 2)
		var left []string
		for g := range strings.SplitSeq(b.String(), "\n\n") {
			if strings.Contains(g, "engine/schedule.(*Scheduler)") || strings.Contains(g, "engine/schedule.(*slowStandIn)") ||
				strings.Contains(g, "context.AfterFunc") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutine(s) left:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// validate marks t failed when tr does not match the schema (Errorf, so
// callbacks and other goroutines may call it).
func validate(t *testing.T, tr *tree.Tree) {
	t.Helper()
	b, err := json.Marshal(tr)
	if err != nil {
		t.Errorf("marshal: %v", err)
		return
	}
	if err := tree.ValidateJSON(b); err != nil {
		t.Errorf("%v\n%s", err, b)
	}
}

// eventually polls cond every 5 ms until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5 s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
