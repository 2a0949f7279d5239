package audience

import (
	"math"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

// win is a tree of track id over [from, to] with one gaze sample every
// 0.25 s whose yaw is yaw(t).
func win(id int, from, to float64, yaw func(float64) float64) *tree.Tree {
	f := &tree.Face{}
	for s := from; s <= to+1e-9; s += 0.25 {
		f.Gaze = append(f.Gaze, tree.Gaze{Time: at(s), Yaw: yaw(s), Pitch: DefaultPitchOffset})
	}
	return &tree.Tree{TrackID: id, Window: tree.Window{Start: tree.Time(at(from)), End: tree.Time(at(to)), FPS: 4}, Face: f,
		Expression: &tree.Expression{Scores: map[string]float64{"neutral": 0.8}, Cues: []tree.Cue{
			{AU: "AU12", Intensity: 0.5, Evidence: tree.EvidenceLandmarks}, {AU: "AU45", Intensity: 1, Evidence: tree.EvidenceLandmarks}}},
		Emotion: &tree.Emotion{Label: "happiness"}}
}

func ev(typ facetrack.EventType, id int, first, last float64) facetrack.Event {
	return facetrack.Event{Type: typ, Time: at(last), Track: facetrack.Track{ID: id, FirstSeen: at(first), LastSeen: at(last)}}
}

// Looking share, looking time counted once across overlapping windows,
// dwell up to the latest detection, and engagement by its formula.
func TestApply(t *testing.T) {
	m := New(Config{})
	m.Event(ev(facetrack.EventNew, 1, 0, 0.1))
	away := func(s float64) float64 { // looks from 0 to 1 s, turned away after
		if s < 1 {
			return 3
		}
		return 30
	}
	a := win(1, 0, 1.75, away)
	m.Apply(a)
	f := a.Face
	if *f.Attention != 0.5 || *f.Looking || *f.DwellS != 1.75 || *f.AttentionS != 0.75 {
		t.Fatalf("first window: attention %v looking %v dwell %v attention_s %v", *f.Attention, *f.Looking, *f.DwellS, *f.AttentionS)
	}
	// expressiveness = max(1 − 0.8, AU12 0.5) = 0.5 (the blink does not count)
	if want := 0.5 * (0.5 + 0.5*0.5); math.Abs(*f.Engagement-want) > 1e-9 {
		t.Errorf("engagement %v, want %v", *f.Engagement, want)
	}
	// overlapping window: its first samples were counted already
	m.Event(ev(facetrack.EventUpdate, 1, 0, 3))
	b := win(1, 1, 2.75, func(float64) float64 { return 0 })
	m.Apply(b)
	if *b.Face.Attention != 1 || !*b.Face.Looking || *b.Face.DwellS != 3 || *b.Face.AttentionS != 0.75+1 {
		t.Fatalf("second window: attention %v dwell %v attention_s %v", *b.Face.Attention, *b.Face.DwellS, *b.Face.AttentionS)
	}
	// closed eyes are not looking
	c := win(1, 3, 3.5, func(float64) float64 { return 0 })
	for i := range c.Face.Gaze {
		c.Face.Gaze[i].Closure = 0.9
	}
	m.Apply(c)
	if *c.Face.Attention != 0 {
		t.Errorf("eyes closed: attention %v", *c.Face.Attention)
	}
}

// ApplySeen measures dwell as of the tree's window, not as of the events
// the frame loop has sent meanwhile: the same trees whatever the lag.
func TestApplySeenIgnoresLaterEvents(t *testing.T) {
	m := New(Config{})
	m.Event(ev(facetrack.EventNew, 1, 0, 0.1))
	m.Event(ev(facetrack.EventUpdate, 1, 0, 3)) // the frame loop ran ahead
	a := win(1, 0, 1.75, func(float64) float64 { return 0 })
	m.ApplySeen(a, at(1.75))
	if *a.Face.DwellS != 1.75 || *a.Face.AttentionS != 1.75 {
		t.Fatalf("window to 1.75 s: dwell %v attention_s %v, want 1.75 (not the 3 s the events reached)", *a.Face.DwellS, *a.Face.AttentionS)
	}
	m.Event(ev(facetrack.EventEnd, 1, 0, 3.2))
	b := win(1, 2, 2.75, func(float64) float64 { return 30 })
	m.ApplySeen(b, at(3.1)) // the final window: seen after its last sample
	if *b.Face.DwellS != 3.1 {
		t.Fatalf("final window: dwell %v, want 3.1", *b.Face.DwellS)
	}
	c := win(2, 0, 1, func(float64) float64 { return 0 })
	m.Event(ev(facetrack.EventNew, 2, 0, 1.5))
	m.Apply(c) // no window at hand: the events so far
	if *c.Face.DwellS != 1.5 {
		t.Fatalf("Apply: dwell %v, want 1.5 from the events", *c.Face.DwellS)
	}
}

// The cone's offsets move it: a camera above the screen.
func TestConeOffsets(t *testing.T) {
	c := Cone{Yaw: 10, Pitch: 10, YawOffset: 5, PitchOffset: -30}
	for _, g := range []struct {
		yaw, pitch float64
		want       bool
	}{{5, -30, true}, {14, -21, true}, {-6, -30, false}, {5, -10, false}, {5, -41, false}} {
		if got := c.Looking(tree.Gaze{Yaw: g.yaw, Pitch: g.pitch}); got != g.want {
			t.Errorf("yaw %v pitch %v: looking %v, want %v", g.yaw, g.pitch, got, g.want)
		}
	}
	if err := (Cone{Yaw: 0, Pitch: 10}).Validate(); err == nil {
		t.Error("a zero cone validated")
	}
}

// Visitors within the period, faces now, dwell mean and p90, mix.
func TestSnapshot(t *testing.T) {
	m := New(Config{Period: 10 * time.Second})
	for id, span := range map[int][2]float64{1: {0, 2}, 2: {1, 5}, 3: {3, 12}, 4: {13, 20}} {
		m.Event(ev(facetrack.EventNew, id, span[0], span[0]))
		m.Event(ev(facetrack.EventUpdate, id, span[0], span[1]))
		if id != 4 {
			m.Event(ev(facetrack.EventEnd, id, span[0], span[1]))
			m.Forget(id)
		}
	}
	a := m.Snapshot("cam", at(20))
	// the period is 10..20 s: tracks 3 (3..12) and 4 (13..20, still in view)
	if a.Visitors != 2 || a.Faces != 1 || a.DwellMeanS != 8 || a.DwellP90S != 9 {
		t.Errorf("%+v: want 2 visitors, 1 face, dwell mean 8 p90 9", a)
	}
	if a.AttentionShare != nil || a.Trees != 0 || a.Mood != "" {
		t.Errorf("no trees: %+v", a)
	}
}

// BenchmarkApply: one tree of an 8-sample window (the default) through the
// meter; go test -bench Apply ./engine/audience.
func BenchmarkApply(b *testing.B) {
	m := New(Config{})
	for i := range b.N {
		s := float64(i) * 1
		m.Apply(win(1+i%4, s, s+1.75, func(float64) float64 { return 0 }))
	}
}
