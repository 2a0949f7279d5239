package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// emptyThenFace is a grey canvas of the astronaut's size with faint fixed
// noise (a still room) for the first n frames, then the astronaut.
func emptyThenFace(w, h int, bgr []byte, n int) picture {
	room := make([]byte, len(bgr))
	for j := range room {
		room[j] = byte(120 + (j*2654435761>>13)%6)
	}
	return func(i int) (int, int, []byte) {
		if i < n {
			return w, h, room
		}
		return w, h, bgr
	}
}

// The motion gate: frames of an empty, still scene skip the detector and
// are counted; the face that then appears is detected, tracked and
// analysed as usual.
func TestMotionGateSkipsStillSceneAndFindsFaceThatAppears(t *testing.T) {
	st := build(t)
	mats := testenv.MatCount(t)
	w, h, bgr := astronaut(t)
	const still, face = 30, 15
	src := newSynthSource(t, still+face, 10, emptyThenFace(w, h, bgr, still), nil)
	var firstTrack uint64
	cfg := Config{
		Camera:   "gate",
		Window:   window.Config{FPS: 10, Length: 4, Stride: 2},
		Offline:  true,
		Schedule: facetrack.ScheduleConfig{Motion: true, Adaptive: true},
	}
	trees := collectTrees(&cfg)
	var p *Pipeline
	cfg.OnEvent = func(ev facetrack.Event) {
		if ev.Type == facetrack.EventNew && firstTrack == 0 {
			firstTrack = p.Stats.Frames.Load()
		}
	}
	p = New(cfg, st.Detector, st.Analyzer, nil, nil)
	if err := p.RunSource(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	s := &p.Stats
	t.Logf("frames %d: full %d, regions %d, predicted %d, motion-skipped %d; first track at frame %d; %d trees",
		s.Frames.Load(), s.FullDetect.Load(), s.RegionDetect.Load(), s.Predicted.Load(), s.MotionSkipped.Load(), firstTrack, len(trees()))
	// The first still frame has no reference and is detected; the other 29 are skipped.
	if got := s.MotionSkipped.Load(); got != still-1 {
		t.Errorf("%d frames skipped by the motion gate, want %d (the still frames after the first)", got, still-1)
	}
	if sum := s.FullDetect.Load() + s.RegionDetect.Load() + s.Predicted.Load() + s.MotionSkipped.Load(); sum != s.Frames.Load() {
		t.Errorf("modes add up to %d frames, the pipeline counted %d", sum, s.Frames.Load())
	}
	// Every full detection is counted under its reason: the first still
	// frame (no motion reference yet), then the face's motion and its
	// confirmation.
	var byReason uint64
	for _, n := range s.FullReasons() {
		byReason += n
	}
	if r := s.FullReasons(); byReason != s.FullDetect.Load() || r["motion"] == 0 || r["new_track"] == 0 {
		t.Errorf("full detections by reason %v add up to %d of %d; want motion and new_track among them", r, byReason, s.FullDetect.Load())
	}
	// The face is confirmed after MinHits (3) full detections from its first frame.
	if s.Tracks.Load() != 1 || firstTrack != still+3 {
		t.Errorf("%d tracks, first confirmed at frame %d; want 1 at frame %d", s.Tracks.Load(), firstTrack, still+3)
	}
	if len(trees()) == 0 {
		t.Error("no tree for the face that appeared")
	}
	src.Close()
	if got := testenv.MatCount(t); got != mats {
		t.Fatalf("Mat leak: %d live Mats, %d before:\n%s", got, mats, testenv.MatLeaks())
	}
}

// faceFrame is one confirmed track's box on one frame.
type faceFrame struct {
	id    int
	box   facetrack.Rect
	found bool // matched a detection on this frame (not predicted)
}

// trackFile runs the detect+track stage of the pipeline (Pipeline.frame,
// windows discarded) over every frame of path and returns the confirmed
// tracks per frame.
func trackFile(t *testing.T, p *Pipeline, path string) (frames [][]faceFrame) {
	t.Helper()
	src, err := capture.Open(context.Background(), capture.Config{Source: path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	trk, err := facetrack.NewTracker(p.cfg.Tracker)
	if err != nil {
		t.Fatal(err)
	}
	sched, err := facetrack.NewScheduler(p.cfg.Schedule)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { t.Logf("%s: full detections by reason %v", p.cfg.Camera, sched.FullReasons()); sched.Close() }()
	bufs, err := window.New("recall", window.Config{FPS: 4, Length: 8, Stride: 4})
	if err != nil {
		t.Fatal(err)
	}
	tk := &tracking{trk, sched}
	for f := range src.Frames() {
		err := p.frame(f, tk, bufs, func(item) bool { return true }, func(int) {})
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		var fs []faceFrame
		for _, tr := range trk.Tracks() {
			fs = append(fs, faceFrame{tr.ID, tr.Box, tr.State == facetrack.Tracked && tr.FramesSinceUpdate == 0})
		}
		frames = append(frames, fs)
	}
	if err := src.Err(); err != nil {
		t.Fatal(err)
	}
	return frames
}

// Adaptive detection keeps recall: on the sample video, every face that
// detecting on every frame finds (a track matched on that frame) has a
// track of the adaptive run over it (IoU >= 0.5) on that same frame, and
// each of detect-every-frame's tracks is followed by one adaptive track ID
// over all of its frames — while the detector runs on far fewer full frames.
func TestAdaptiveDetectionKeepsRecallAndIDs(t *testing.T) {
	st := build(t)
	mats := testenv.MatCount(t)
	path := testenv.Media(t, "Megamind.avi")
	every := New(Config{Camera: "every"}, st.Detector, st.Analyzer, nil, nil)
	adaptive := New(Config{Camera: "adaptive", Schedule: facetrack.ScheduleConfig{Adaptive: true, Motion: true}}, st.Detector, st.Analyzer, nil, nil)
	t0 := time.Now()
	base := trackFile(t, every, path)
	tBase := time.Since(t0)
	t0 = time.Now()
	got := trackFile(t, adaptive, path)
	tAdaptive := time.Since(t0)
	if len(base) != len(got) || len(base) == 0 {
		t.Fatalf("%d frames every-frame, %d adaptive", len(base), len(got))
	}
	faces, missed := 0, 0
	ids := map[int]map[int]int{} // base ID → adaptive ID → frames
	for i := range base {
		for _, b := range base[i] {
			if !b.found {
				continue
			}
			faces++
			best, bestIoU := 0, 0.0
			for _, a := range got[i] {
				if iou := a.box.IoU(b.box); iou > bestIoU {
					best, bestIoU = a.id, iou
				}
			}
			if bestIoU < 0.5 {
				missed++
				t.Logf("frame %d: face of track %d at %.0f not covered by an adaptive track (best IoU %.2f)", i, b.id, b.box, bestIoU)
				continue
			}
			if ids[b.id] == nil {
				ids[b.id] = map[int]int{}
			}
			ids[b.id][best]++
		}
	}
	s, a := &every.Stats, &adaptive.Stats
	t.Logf("every frame: %d full detections in %v; adaptive: %d full, %d regions, %d predicted, %d motion-skipped in %v",
		s.FullDetect.Load(), tBase, a.FullDetect.Load(), a.RegionDetect.Load(), a.Predicted.Load(), a.MotionSkipped.Load(), tAdaptive)
	t.Logf("%d faces found by detect-every-frame over %d frames, %d not covered; ID map %v", faces, len(base), missed, ids)
	if faces < 100 {
		t.Fatalf("detect-every-frame found only %d faces: the sample is not exercising the tracker", faces)
	}
	if missed != 0 {
		t.Errorf("%d of %d faces found by detect-every-frame were not found by adaptive detection", missed, faces)
	}
	for b, m := range ids {
		if len(m) != 1 {
			t.Errorf("detect-every-frame track %d was followed by %d adaptive tracks %v: an ID was not kept", b, len(m), m)
		}
	}
	if full := a.FullDetect.Load(); full*2 > s.FullDetect.Load() {
		t.Errorf("adaptive ran %d full detections of %d frames: not adaptive", full, s.FullDetect.Load())
	}
	if got := testenv.MatCount(t); got != mats {
		t.Fatalf("Mat leak: %d live Mats, %d before:\n%s", got, mats, testenv.MatLeaks())
	}
}
