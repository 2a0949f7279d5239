package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

func makeWindow(camera string, track int, seq uint64, firstFrame uint64, crops []facetrack.Crop, box facetrack.Rect) window.Window {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w := window.Window{Camera: camera, TrackID: track, Seq: seq, FPS: 4}
	for i, c := range crops {
		f := firstFrame + uint64(i)
		w.Samples = append(w.Samples, window.Sample{
			FrameSeq: f,
			Time:     t0.Add(time.Duration(f) * 250 * time.Millisecond),
			Box:      box,
			Score:    0.97,
			Crop:     c,
		})
	}
	w.Start = w.Samples[0].Time
	w.End = w.Samples[len(w.Samples)-1].Time.Add(250 * time.Millisecond)
	w.FramesSeen = int(firstFrame) + len(crops)
	return w
}

// TestAstronautHappy: the smiling astronaut, found by OpenCV's Haar cascade,
// reads as happy over a window, and the tree validates against the schema.
func TestAstronautHappy(t *testing.T) {
	checkGoroutines(t)
	crops, box := faceCrops(t, "astronaut.png", 0.1, 8)
	a := NewFastAnalyzer(newTestHead(t), FastConfig{})
	w := makeWindow("cam1", 3, 0, 100, crops, facetrack.Rect{X: float64(box.Min.X), Y: float64(box.Min.Y), W: float64(box.Dx()), H: float64(box.Dy())})
	tr, err := a.Analyze(context.Background(), w)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(tr)
	t.Logf("%s", b)
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	e := tr.Expression
	if e.Label != "happy" {
		t.Fatalf("expression %q, want happy (scores %v)", e.Label, e.Scores)
	}
	for l, s := range e.Scores {
		if l != "happy" && s >= e.Scores["happy"] {
			t.Errorf("score %s=%.3f >= happy=%.3f", l, s, e.Scores["happy"])
		}
	}
	if len(e.Scores) != 7 || e.Cues != nil || e.Valence != nil || e.Arousal != nil {
		t.Errorf("expression must hold the 7 scores and nothing invented: %+v", e)
	}
	if tr.Emotion.Label != "happiness" || tr.Emotion.Trend != "" {
		t.Errorf("emotion %+v: want happiness, no trend on the first window", tr.Emotion)
	}
	if !strings.HasPrefix(tr.Emotion.Rationale, "happy in ") {
		t.Errorf("rationale %q", tr.Emotion.Rationale)
	}
	if tr.Source.Engine != EngineFastHead || tr.Source.Provider != ProviderCPU || tr.Source.Model != a.head.Ref() || tr.Source.LatencyMS <= 0 {
		t.Errorf("source %+v", tr.Source)
	}
	if tr.ID != "cam1-3-000000" || tr.Window.Frames != 8 || tr.Face.FramesSeen != 108 || tr.Face.Box[2] != float64(box.Dx()) {
		t.Errorf("id/window/face: %s %+v %+v", tr.ID, tr.Window, tr.Face)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFastAnalyzerCacheTrendForget: overlapping windows reuse per-frame
// results, old frames are evicted, the trend appears from the second window,
// and Forget drops the track.
func TestFastAnalyzerCacheTrendForget(t *testing.T) {
	checkGoroutines(t)
	happy, _ := faceCrops(t, "astronaut.png", 0.1, 8)
	other, _ := faceCrops(t, "messi5.jpg", 0.1, 8)
	a := NewFastAnalyzer(newTestHead(t), FastConfig{})
	defer a.Close()
	ctx := context.Background()
	box := facetrack.Rect{X: 1, Y: 2, W: 30, H: 30}

	// window 0: frames 0..7 happy
	tr0, err := a.Analyze(ctx, makeWindow("cam1", 1, 0, 0, happy, box))
	if err != nil {
		t.Fatal(err)
	}
	// window 1 overlaps by 4 frames: frames 4..11, the last 4 are messi
	w1crops := append(append([]facetrack.Crop(nil), happy[4:]...), other[:4]...)
	calls := countingHead(t, a)
	tr1, err := a.Analyze(ctx, makeWindow("cam1", 1, 1, 4, w1crops, box))
	if err != nil {
		t.Fatal(err)
	}
	if got := *calls; got != 4 {
		t.Errorf("second window ran the head on %d crops, want 4 (4 cached)", got)
	}
	if n := a.cachedFrames("cam1", 1); n != 8 {
		t.Errorf("cache holds %d frames after window 1, want 8 (frames 0..3 evicted)", n)
	}
	for _, tr := range []*tree.Tree{tr0, tr1} {
		if err := tr.Validate(); err != nil {
			t.Fatal(err)
		}
	}
	if tr1.Emotion.Trend == "" {
		t.Errorf("second window has no trend")
	}
	t.Logf("window 0: %s %.2f; window 1: %s %.2f trend %s (%s)", tr0.Expression.Label, tr0.Expression.Confidence,
		tr1.Expression.Label, tr1.Expression.Confidence, tr1.Emotion.Trend, tr1.Emotion.Rationale)
	if tr1.Expression.Label == "happy" && tr1.Expression.Confidence >= tr0.Expression.Confidence {
		t.Errorf("window 1 mixes in a non-smiling face but happy did not drop: %.3f -> %.3f", tr0.Expression.Confidence, tr1.Expression.Confidence)
	}
	if tr1.Expression.Label == "happy" && tr1.Emotion.Trend != "falling" {
		t.Errorf("happy fell from %.2f to %.2f but trend is %q", tr0.Expression.Confidence, tr1.Expression.Confidence, tr1.Emotion.Trend)
	}
	// an identical window: steady
	tr2, err := a.Analyze(ctx, makeWindow("cam1", 1, 2, 4, w1crops, box))
	if err != nil {
		t.Fatal(err)
	}
	if *calls != 4 {
		t.Errorf("repeated window ran the head again")
	}
	_ = tr2
	// another camera's track 1 is a different track
	if _, err := a.Analyze(ctx, makeWindow("cam2", 1, 0, 0, happy[:2], box)); err != nil {
		t.Fatal(err)
	}
	if a.Tracks() != 2 {
		t.Errorf("tracks %d, want 2", a.Tracks())
	}
	a.Forget("cam1", 1)
	if a.Tracks() != 1 || a.cachedFrames("cam1", 1) != 0 {
		t.Errorf("Forget left state: %d tracks", a.Tracks())
	}
	// empty window and cancelled context are errors, not panics
	if _, err := a.Analyze(ctx, window.Window{Camera: "cam1", TrackID: 9}); err == nil {
		t.Error("empty window: no error")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := a.Analyze(cctx, makeWindow("cam1", 1, 3, 0, happy[:1], box)); err == nil {
		t.Error("cancelled context: no error")
	}
}

// countingHead wraps the analyzer's head so the test sees how many crops
// reach it from now on.
func countingHead(t *testing.T, a *FastAnalyzer) *int {
	n := new(int)
	a.head.onPredict = func(k int) { *n += k }
	return n
}

func TestTrendOf(t *testing.T) {
	h := [][]float64{{0.5, 0.5}, {0.6, 0.4}}
	for _, c := range []struct {
		p    float64
		want string
	}{{0.9, "rising"}, {0.56, "steady"}, {0.3, "falling"}} {
		if got := trendOf(h, 0, c.p, 0.05); got != c.want {
			t.Errorf("p %.2f: %s, want %s", c.p, got, c.want)
		}
	}
	if trendOf(nil, 0, 1, 0.05) != "" {
		t.Error("trend without history")
	}
}
