package facetrack

import (
	"math/rand/v2"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func frameTime(i int) time.Time { return t0.Add(time.Duration(i) * 40 * time.Millisecond) }

func newTestTracker(t *testing.T, cfg TrackerConfig) *Tracker {
	t.Helper()
	tr, err := NewTracker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func det(x, y, s float64, score float32) Detection {
	return Detection{Box: Rect{X: x, Y: y, W: s, H: s}, Score: score}
}

// eventsOf filters events by type.
func eventsOf(evs []Event, typ EventType) []Event {
	var out []Event
	for _, e := range evs {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// trackNear returns the confirmed track whose box overlaps b most.
func trackNear(tracks []Track, b Rect) (Track, bool) {
	best, bestIoU := Track{}, 0.0
	for _, tk := range tracks {
		if iou := tk.Box.IoU(b); iou > bestIoU {
			best, bestIoU = tk, iou
		}
	}
	return best, bestIoU > 0.3
}

func TestTrackerCrossingFacesKeepIDs(t *testing.T) {
	tr := newTestTracker(t, TrackerConfig{})
	rng := rand.New(rand.NewPCG(5, 6))
	idA, idB := 0, 0
	for i := 0; i < 60; i++ {
		a := det(40+9*float64(i), 200, 80, 0.9)  // left → right
		b := det(580-9*float64(i), 206, 80, 0.9) // right → left, 6 px lower
		dets := []Detection{a, b}
		rng.Shuffle(len(dets), func(i, j int) { dets[i], dets[j] = dets[j], dets[i] })
		tracks, evs := tr.Update(dets, frameTime(i))
		if len(eventsOf(evs, EventLost)) > 0 || len(eventsOf(evs, EventEnd)) > 0 {
			t.Fatalf("frame %d: unexpected events %+v", i, evs)
		}
		if i < 2 {
			continue // MinHits 3: not confirmed yet
		}
		ta, okA := trackNear(tracks, a.Box)
		tb, okB := trackNear(tracks, b.Box)
		if !okA || !okB {
			t.Fatalf("frame %d: faces not tracked: %+v", i, tracks)
		}
		if idA == 0 {
			idA, idB = ta.ID, tb.ID
			if idA == idB || idA < 1 || idB < 1 {
				t.Fatalf("bad IDs %d %d", idA, idB)
			}
		}
		// Near the crossing both boxes overlap both faces; check by
		// motion instead: A's track moves right, B's left.
		if ta.ID != idA || tb.ID != idB {
			t.Fatalf("frame %d: IDs switched: face A has %d (want %d), face B has %d (want %d)", i, ta.ID, idA, tb.ID, idB)
		}
		if i > 35 {
			if vx, _ := tr.kalmanOf(idA).Velocity(); vx < 5 {
				t.Fatalf("frame %d: track %d velocity %.1f, want ≈ +9", i, idA, vx)
			}
		}
	}
	if got := len(tr.Tracks()); got != 2 {
		t.Fatalf("%d tracks at the end, want 2", got)
	}
}

func TestTrackerShortGapKeepsID(t *testing.T) {
	tr := newTestTracker(t, TrackerConfig{MaxAge: 10})
	var id int
	var all []Event
	for i := 0; i < 40; i++ {
		var dets []Detection
		if i < 15 || i >= 23 { // missing for 8 frames (< MaxAge)
			dets = []Detection{det(100+2*float64(i), 100, 90, 0.9)}
		}
		tracks, evs := tr.Update(dets, frameTime(i))
		all = append(all, evs...)
		if i == 2 {
			id = tracks[0].ID
		}
		if i == 15 {
			if l := eventsOf(evs, EventLost); len(l) != 1 || l[0].Track.ID != id || l[0].Track.State != Lost {
				t.Fatalf("frame 15: want one lost event for %d, got %+v", id, evs)
			}
		}
		if i == 23 {
			u := eventsOf(evs, EventUpdate)
			if len(u) != 1 || u[0].Track.ID != id || u[0].Track.State != Tracked {
				t.Fatalf("frame 23: want update for revived %d, got %+v", id, evs)
			}
		}
	}
	if n := len(eventsOf(all, EventNew)); n != 1 {
		t.Fatalf("%d new events, want 1", n)
	}
	if n := len(eventsOf(all, EventLost)); n != 1 {
		t.Fatalf("%d lost events, want 1", n)
	}
	if n := len(eventsOf(all, EventEnd)); n != 0 {
		t.Fatalf("%d end events, want 0", n)
	}
	if tk := tr.Tracks(); len(tk) != 1 || tk[0].ID != id || tk[0].Hits != 32 {
		t.Fatalf("final tracks %+v, want one with ID %d and 32 hits", tk, id)
	}
}

func TestTrackerLongGapEndsAndNewID(t *testing.T) {
	const maxAge = 10
	tr := newTestTracker(t, TrackerConfig{MaxAge: maxAge})
	var ends, news []Event
	endFrame := -1
	for i := 0; i < 40; i++ {
		var dets []Detection
		if i < 10 || i >= 10+maxAge+2 { // missing for MaxAge+2 frames
			dets = []Detection{det(200, 150, 100, 0.95)}
		}
		_, evs := tr.Update(dets, frameTime(i))
		if e := eventsOf(evs, EventEnd); len(e) > 0 {
			ends = append(ends, e...)
			endFrame = i
		}
		news = append(news, eventsOf(evs, EventNew)...)
	}
	if len(ends) != 1 || ends[0].Track.ID != 1 || ends[0].Track.State != Removed {
		t.Fatalf("want one end event for track 1, got %+v", ends)
	}
	// Lost on frame 10 (miss 1); ends on miss MaxAge+1.
	if endFrame != 10+maxAge {
		t.Fatalf("ended on frame %d, want %d", endFrame, 10+maxAge)
	}
	if len(news) != 2 || news[0].Track.ID != 1 || news[1].Track.ID != 2 {
		t.Fatalf("want new events for IDs 1 then 2, got %+v", news)
	}
	if news[1].Time != frameTime(10+maxAge+2+2) {
		t.Fatalf("second track confirmed at %v, want after MinHits frames", news[1].Time)
	}
}

func TestTrackerLowScoreKeepsButNeverStarts(t *testing.T) {
	tr := newTestTracker(t, TrackerConfig{MaxAge: 5})
	// A low-score face alone never starts a track.
	for i := 0; i < 20; i++ {
		tracks, evs := tr.Update([]Detection{det(300, 300, 80, 0.3)}, frameTime(i))
		if len(tracks) != 0 || len(evs) != 0 {
			t.Fatalf("frame %d: low-score detection started something: %+v %+v", i, tracks, evs)
		}
	}
	// A confirmed face kept alive by low-score detections for 4×MaxAge.
	tr = newTestTracker(t, TrackerConfig{MaxAge: 5})
	for i := 0; i < 30; i++ {
		score := float32(0.9)
		if i >= 5 {
			score = 0.3 // low: second pass only
		}
		tracks, evs := tr.Update([]Detection{det(100+float64(i), 100, 80, score)}, frameTime(i))
		if i >= 2 {
			if len(tracks) != 1 || tracks[0].ID != 1 || tracks[0].State != Tracked || tracks[0].FramesSinceUpdate != 0 {
				t.Fatalf("frame %d: want track 1 tracked by the second pass, got %+v", i, tracks)
			}
		}
		if i >= 5 && (len(evs) != 1 || evs[0].Type != EventUpdate || evs[0].Track.Score != 0.3) {
			t.Fatalf("frame %d: want one update from the low detection, got %+v", i, evs)
		}
	}
	// Below LowThreshold the detection is ignored: the track is lost.
	_, evs := tr.Update([]Detection{det(130, 100, 80, 0.05)}, frameTime(30))
	if len(evs) != 1 || evs[0].Type != EventLost {
		t.Fatalf("want lost for a detection below LowThreshold, got %+v", evs)
	}
	// A lost track is not revived by a low detection (second pass is for
	// tracked ones only), but is by a high one.
	_, evs = tr.Update([]Detection{det(131, 100, 80, 0.3)}, frameTime(31))
	if len(evs) != 0 {
		t.Fatalf("low detection touched a lost track: %+v", evs)
	}
	_, evs = tr.Update([]Detection{det(132, 100, 80, 0.8)}, frameTime(32))
	if len(evs) != 1 || evs[0].Type != EventUpdate || evs[0].Track.ID != 1 {
		t.Fatalf("high detection did not revive track 1: %+v", evs)
	}
}

func TestTrackerMinHitsDelaysNew(t *testing.T) {
	for _, minHits := range []int{1, 3, 5} {
		tr := newTestTracker(t, TrackerConfig{MinHits: minHits})
		for i := 0; i < 8; i++ {
			tracks, evs := tr.Update([]Detection{det(50, 50, 60, 0.9)}, frameTime(i))
			confirmed := i+1 >= minHits
			if wantNew := i+1 == minHits; wantNew != (len(eventsOf(evs, EventNew)) == 1) {
				t.Fatalf("MinHits %d frame %d: events %+v", minHits, i, evs)
			}
			if confirmed != (len(tracks) == 1) {
				t.Fatalf("MinHits %d frame %d: tracks %+v", minHits, i, tracks)
			}
			if confirmed && (tracks[0].ID != 1 || tracks[0].Hits != i+1) {
				t.Fatalf("MinHits %d frame %d: track %+v", minHits, i, tracks[0])
			}
		}
	}
	// A flash shorter than MinHits is dropped silently and uses no ID.
	tr := newTestTracker(t, TrackerConfig{MinHits: 3})
	for i := 0; i < 2; i++ {
		tr.Update([]Detection{det(400, 50, 60, 0.9)}, frameTime(i))
	}
	if tracks, evs := tr.Update(nil, frameTime(2)); len(tracks) != 0 || len(evs) != 0 {
		t.Fatalf("tentative track leaked: %+v %+v", tracks, evs)
	}
	var evs []Event
	for i := 3; i < 6; i++ {
		_, evs = tr.Update([]Detection{det(50, 50, 60, 0.9)}, frameTime(i))
	}
	if len(evs) != 1 || evs[0].Type != EventNew || evs[0].Track.ID != 1 {
		t.Fatalf("first confirmed track should be ID 1, got %+v", evs)
	}
}

func TestTrackerPredictSkipsDetection(t *testing.T) {
	tr := newTestTracker(t, TrackerConfig{MaxAge: 2})
	i := 0
	for ; i < 10; i++ {
		tr.Update([]Detection{det(100+10*float64(i), 100, 80, 0.9)}, frameTime(i))
	}
	// 8 skipped frames (> MaxAge): nothing is lost, the box keeps moving.
	var tracks []Track
	for ; i < 18; i++ {
		tracks = tr.Predict(frameTime(i))
		if len(tracks) != 1 || tracks[0].State != Tracked {
			t.Fatalf("frame %d: Predict changed state: %+v", i, tracks)
		}
	}
	if x := tracks[0].Box.X; x < 100+10*17-8 || x > 100+10*17+8 {
		t.Fatalf("predicted X %.1f, want ≈ %d", x, 100+10*17)
	}
	if tracks[0].FramesSinceUpdate != 8 || tracks[0].Misses != 0 || tracks[0].Age != 17 {
		t.Fatalf("counters after predict-only steps: %+v", tracks[0])
	}
	// The next detection frame matches the extrapolated box.
	tracks, evs := tr.Update([]Detection{det(100+10*18, 100, 80, 0.9)}, frameTime(18))
	if len(evs) != 1 || evs[0].Type != EventUpdate || tracks[0].ID != 1 {
		t.Fatalf("after skipped frames: %+v", evs)
	}
}

func TestTrackerScaleGateAndReset(t *testing.T) {
	tr := newTestTracker(t, TrackerConfig{})
	for i := 0; i < 5; i++ {
		tr.Update([]Detection{det(200, 200, 100, 0.9)}, frameTime(i))
	}
	// A much larger face over the same spot (IoU 0.25, 2× the height) is
	// someone else: the track is lost and the new face gets its own track.
	var all []Event
	for i := 5; i < 9; i++ {
		_, evs := tr.Update([]Detection{det(150, 150, 200, 0.9)}, frameTime(i))
		for _, e := range evs {
			if e.Type != EventUpdate {
				all = append(all, e)
			}
		}
	}
	if len(all) != 2 || all[0].Type != EventLost || all[0].Track.ID != 1 || all[1].Type != EventNew || all[1].Track.ID != 2 {
		t.Fatalf("want lost:1 then new:2, got %+v", all)
	}
	// A moderate size change (1.3×) is the same face.
	_, evs := tr.Update([]Detection{det(150, 150, 200, 0.9), det(190, 190, 130, 0.9)}, frameTime(9))
	if len(evs) != 2 || evs[0].Track.ID != 1 || evs[0].Type != EventUpdate {
		t.Fatalf("1.3× size change did not match track 1: %+v", evs)
	}
	evs = tr.Reset(frameTime(10))
	if len(evs) != 2 || evs[0].Type != EventEnd || evs[1].Type != EventEnd || len(tr.Tracks()) != 0 {
		t.Fatalf("Reset: %+v, tracks %+v", evs, tr.Tracks())
	}
	for i := 11; i < 14; i++ {
		_, evs = tr.Update([]Detection{det(200, 200, 100, 0.9)}, frameTime(i))
	}
	if len(evs) != 1 || evs[0].Type != EventNew || evs[0].Track.ID != 3 {
		t.Fatalf("after Reset IDs must not be reused: %+v", evs)
	}
}

func TestTrackerConfigValidation(t *testing.T) {
	if _, err := NewTracker(TrackerConfig{LowThreshold: 0.7}); err == nil {
		t.Fatal("LowThreshold above HighThreshold accepted")
	}
	if _, err := NewTracker(TrackerConfig{NewTrackThreshold: 0.3}); err == nil {
		t.Fatal("NewTrackThreshold below HighThreshold accepted")
	}
	if _, err := NewTracker(TrackerConfig{MatchIoU: 1.5}); err == nil {
		t.Fatal("MatchIoU 1.5 accepted")
	}
	if _, err := NewTracker(TrackerConfig{MaxScaleChange: 0.5}); err == nil {
		t.Fatal("MaxScaleChange 0.5 accepted")
	}
	tr := newTestTracker(t, TrackerConfig{})
	if tr.Config() != DefaultTrackerConfig() {
		t.Fatalf("defaults not applied: %+v", tr.Config())
	}
}

func (tr *Tracker) kalmanOf(id int) *Kalman {
	for _, tk := range tr.tracks {
		if tk.ID == id {
			return tk.kf
		}
	}
	return nil
}

func BenchmarkTrackerUpdate(b *testing.B) {
	// 8 faces moving with jitter, one detector miss in ten, 2 low-score
	// false positives per frame.
	tr, _ := NewTracker(TrackerConfig{})
	rng := rand.New(rand.NewPCG(7, 8))
	dets := make([]Detection, 0, 12)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		dets = dets[:0]
		for f := 0; f < 8; f++ {
			if rng.IntN(10) == 0 {
				continue
			}
			x := float64(80*f) + 20*float64((i/50)%2) + rng.NormFloat64()
			dets = append(dets, det(x, 100+float64(f%3)*150+rng.NormFloat64(), 70, 0.9))
		}
		for k := 0; k < 2; k++ {
			dets = append(dets, det(rng.Float64()*1200, rng.Float64()*600, 50, 0.2))
		}
		tr.Update(dets, frameTime(i))
	}
}

func TestTrackerFirstIDContinuesNumbering(t *testing.T) {
	tr, err := NewTracker(TrackerConfig{MinHits: 1, FirstID: 42})
	if err != nil {
		t.Fatal(err)
	}
	tracks, _ := tr.Update([]Detection{{Box: Rect{10, 10, 50, 50}, Score: 0.9}}, time.Now())
	if len(tracks) != 1 || tracks[0].ID != 42 || tr.NextID() != 43 {
		t.Fatalf("tracks %+v, next %d", tracks, tr.NextID())
	}
	if _, err := NewTracker(TrackerConfig{FirstID: -1}); err == nil {
		t.Fatal("negative FirstID accepted")
	}
}
