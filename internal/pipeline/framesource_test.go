package pipeline

import (
	"context"
	"errors"
	"image"
	"image/draw"
	"image/png"
	"io"
	"log/slog"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// synthSource is a capture.FrameSource that never calls OpenCV's capture:
// each frame is built in Go and handed over as packed BGR bytes
// (capture.FrameFromBGR), the way a go2rtc or GStreamer appsink binding
// would. It emits n frames at fps of media time, as fast as the consumer
// takes them (n < 0: until Close), then ends with err.
type synthSource struct {
	frames chan *capture.Frame
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once

	emitted atomic.Uint64
	mu      sync.Mutex
	err     error
}

// picture returns frame i's BGR pixels and size.
type picture func(i int) (w, h int, bgr []byte)

func newSynthSource(t *testing.T, n int, fps float64, pic picture, end error) *synthSource {
	s := &synthSource{frames: make(chan *capture.Frame, 2), stop: make(chan struct{}), done: make(chan struct{})}
	t.Cleanup(func() { s.Close() })
	start := time.Now()
	go func() {
		var err error
		defer func() {
			s.mu.Lock()
			s.err = err
			s.mu.Unlock()
			close(s.frames)
			close(s.done)
		}()
		for i := 0; n < 0 || i < n; i++ {
			w, h, bgr := pic(i)
			f, ferr := capture.FrameFromBGR(w, h, bgr)
			if ferr != nil {
				err = ferr
				return
			}
			f.Seq = uint64(i)
			f.PTS = time.Duration(float64(i) / fps * float64(time.Second))
			f.Time = start.Add(f.PTS)
			select {
			case s.frames <- f:
				s.emitted.Add(1)
			case <-s.stop:
				f.Close() // never handed over: still ours
				return
			}
		}
		err = end
	}()
	return s
}

func (s *synthSource) Frames() <-chan *capture.Frame { return s.frames }

func (s *synthSource) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *synthSource) Stats() capture.Stats {
	n := s.emitted.Load()
	return capture.Stats{Read: n, Emitted: n}
}

// Close stops the generator and closes the frames still queued.
func (s *synthSource) Close() error {
	s.once.Do(func() {
		close(s.stop)
		<-s.done
		for f := range s.frames {
			f.Close()
		}
	})
	return nil
}

var _ capture.FrameSource = (*synthSource)(nil)

// astronaut decodes deps/media/astronaut.png with Go's image/png (no
// OpenCV) into packed BGR.
func astronaut(t *testing.T) (w, h int, bgr []byte) {
	t.Helper()
	f, err := os.Open(testenv.Media(t, "astronaut.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return toBGR(img)
}

func toBGR(img image.Image) (w, h int, bgr []byte) {
	b := img.Bounds()
	rgba := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(rgba, rgba.Bounds(), img, b.Min, draw.Src)
	w, h = b.Dx(), b.Dy()
	bgr = make([]byte, 0, w*h*3)
	for i := 0; i < len(rgba.Pix); i += 4 {
		bgr = append(bgr, rgba.Pix[i+2], rgba.Pix[i+1], rgba.Pix[i])
	}
	return w, h, bgr
}

// movingFace places the w×h picture on a grey canvas pad pixels wider on
// each side and slides it right by step pixels a frame.
func movingFace(w, h int, bgr []byte, pad, step int) picture {
	cw := w + 2*pad
	return func(i int) (int, int, []byte) {
		out := make([]byte, cw*h*3)
		for j := range out {
			out[j] = 128
		}
		x := min(i*step, 2*pad)
		for y := 0; y < h; y++ {
			copy(out[(y*cw+x)*3:], bgr[y*w*3:(y+1)*w*3])
		}
		return cw, h, out
	}
}

func collectTrees(cfg *Config) func() []*tree.Tree {
	var mu sync.Mutex
	var trees []*tree.Tree
	cfg.OnTree = func(t *tree.Tree) { mu.Lock(); trees = append(trees, t); mu.Unlock() }
	return func() []*tree.Tree { mu.Lock(); defer mu.Unlock(); return trees }
}

// The pipeline runs end to end on a source that does not come from OpenCV:
// a face moving across synthetic frames is detected, tracked as one face
// (its box follows it) and trees come out; every frame is counted and
// closed.
func TestRunSourceSynthetic(t *testing.T) {
	st := build(t)
	mats := testenv.MatCount(t)
	w, h, bgr := astronaut(t)
	const n, step = 20, 4
	src := newSynthSource(t, n, 10, movingFace(w, h, bgr, 48, step), nil)

	var seqs []uint64
	var events []facetrack.EventType
	var running capture.Stats
	cfg := Config{
		Camera:  "synth",
		Window:  window.Config{FPS: 10, Length: 4, Stride: 2},
		Offline: true,
		OnEvent: func(ev facetrack.Event) { events = append(events, ev.Type) },
	}
	trees := collectTrees(&cfg)
	var p *Pipeline
	cfg.OnFrame = func(f *capture.Frame) {
		seqs = append(seqs, f.Seq)
		running = p.CaptureStats()
	}
	p = New(cfg, st.Detector, st.Analyzer, nil, nil)
	if err := p.RunSource(context.Background(), src); err != nil {
		t.Fatal(err)
	}

	if got := p.Stats.Frames.Load(); got != n {
		t.Fatalf("pipeline counted %d frames, want %d", got, n)
	}
	for i, s := range seqs {
		if s != uint64(i) {
			t.Fatalf("frame %d has Seq %d: frames out of order", i, s)
		}
	}
	if running.Emitted == 0 || p.CaptureStats().Emitted != n {
		t.Fatalf("CaptureStats: %+v while running, %+v after; want the synthetic source's counters", running, p.CaptureStats())
	}
	if d := p.DecodeCPU(); d != 0 { // it is no capture.DecodeMeter
		t.Fatalf("DecodeCPU %v for a source that does not count decode time, want 0", d)
	}
	if got := p.Stats.Tracks.Load(); got != 1 {
		t.Fatalf("%d tracks for one moving face (events %v)", got, events)
	}
	tr := trees()
	if len(tr) == 0 || uint64(len(tr)) != p.Stats.Windows.Load() {
		t.Fatalf("%d trees for %d windows, want at least one and one per window", len(tr), p.Stats.Windows.Load())
	}
	for i, x := range tr {
		if x.Camera != "synth" || x.TrackID != tr[0].TrackID || x.Face == nil || x.Expression == nil {
			t.Fatalf("tree %d: camera %q track %d face %v expression %v", i, x.Camera, x.TrackID, x.Face, x.Expression)
		}
		if i > 0 && x.ID <= tr[i-1].ID {
			t.Fatalf("trees out of order: %s after %s", x.ID, tr[i-1].ID)
		}
	}
	// The face moved step px a frame; the last tree's box must have followed.
	first, last := tr[0].Face.Box[0], tr[len(tr)-1].Face.Box[0]
	if last-first < step*2 {
		t.Fatalf("face box x %0.1f → %0.1f: the track did not follow the moving face", first, last)
	}
	t.Logf("%d frames, %d trees (%s … %s), box x %.0f → %.0f", n, len(tr), tr[0].ID, tr[len(tr)-1].ID, first, last)

	src.Close()
	if got := testenv.MatCount(t); got != mats {
		t.Fatalf("Mat leak: %d live Mats, %d before:\n%s", got, mats, testenv.MatLeaks())
	}
}

// The same picture gives the same trees whether OpenCV decodes and replays
// it (capture.Open) or a Go source hands it over frame by frame.
func TestRunSourceSyntheticMatchesOpenCV(t *testing.T) {
	st := build(t)
	mats := testenv.MatCount(t)
	const n, fps = 20, 10
	cfg := Config{Camera: "same", Window: window.Config{FPS: fps, Length: 4, Stride: 2}, Offline: true}
	run := func(src capture.FrameSource) ([]*tree.Tree, uint64) {
		c := cfg
		trees := collectTrees(&c)
		p := New(c, st.Detector, st.Analyzer, nil, nil)
		if err := p.RunSource(context.Background(), src); err != nil {
			t.Fatal(err)
		}
		return trees(), p.Stats.Frames.Load()
	}

	cv, err := capture.Open(context.Background(), capture.Config{
		Source: testenv.Media(t, "astronaut.png"), StillDuration: n * time.Second / fps, StillFPS: fps,
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	want, wantFrames := run(cv)

	w, h, bgr := astronaut(t)
	got, gotFrames := run(newSynthSource(t, n, fps, func(int) (int, int, []byte) { return w, h, bgr }, nil))

	if gotFrames != n || wantFrames != n {
		t.Fatalf("frames: synthetic %d, OpenCV %d, want %d", gotFrames, wantFrames, n)
	}
	if len(got) == 0 || len(got) != len(want) {
		t.Fatalf("synthetic source: %d trees, OpenCV source: %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.Window.Frames != w.Window.Frames || g.Expression.Label != w.Expression.Label {
			t.Fatalf("tree %d: synthetic %s (%d frames, %q), OpenCV %s (%d frames, %q)",
				i, g.ID, g.Window.Frames, g.Expression.Label, w.ID, w.Window.Frames, w.Expression.Label)
		}
		for k := range w.Face.Box {
			if math.Abs(g.Face.Box[k]-w.Face.Box[k]) > 1 {
				t.Fatalf("tree %s: box %v from the synthetic source, %v from OpenCV", g.ID, g.Face.Box, w.Face.Box)
			}
		}
	}
	cv.Close()
	if got := testenv.MatCount(t); got != mats {
		t.Fatalf("Mat leak: %d live Mats, %d before:\n%s", got, mats, testenv.MatLeaks())
	}
}

// A synthetic source's error reaches RunSource's caller; a stop ends a run
// on a source that never ends by itself (and was opened with no context),
// and the frames it still holds are closed by its Close.
func TestRunSourceSyntheticErrAndStop(t *testing.T) {
	st := build(t)
	mats := testenv.MatCount(t)
	blank := func(int) (int, int, []byte) { return 64, 48, make([]byte, 64*48*3) }
	cfg := Config{Camera: "blank", Window: window.Config{FPS: 10, Length: 4, Stride: 2}, Offline: true}

	broken := errors.New("stream ended: decoder gave up")
	p := New(cfg, st.Detector, st.Analyzer, nil, nil)
	src := newSynthSource(t, 5, 10, blank, broken)
	if err := p.RunSource(context.Background(), src); !errors.Is(err, broken) {
		t.Fatalf("RunSource returned %v, want the source's error %v", err, broken)
	}
	if f, tr := p.Stats.Frames.Load(), p.Stats.Tracks.Load(); f != 5 || tr != 0 {
		t.Fatalf("blank frames: %d frames counted, %d tracks; want 5 and 0", f, tr)
	}
	src.Close()

	endless := newSynthSource(t, -1, 10, blank, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := cfg
	c.OnFrame = func(f *capture.Frame) {
		if f.Seq == 9 {
			cancel()
		}
	}
	p = New(c, st.Detector, st.Analyzer, nil, nil)
	done := make(chan error, 1)
	go func() { done <- p.RunSource(ctx, endless) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("stopped run returned %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("RunSource still running 30s after its context was cancelled")
	}
	if f := p.Stats.Frames.Load(); f < 10 {
		t.Fatalf("%d frames before the stop, want at least 10", f)
	}
	endless.Close()
	if got := testenv.MatCount(t); got != mats {
		t.Fatalf("Mat leak: %d live Mats, %d before:\n%s", got, mats, testenv.MatLeaks())
	}
}
