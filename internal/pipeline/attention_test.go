package pipeline

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// attentionRun is one offline pass of the real pipeline (BlazeFace, every
// face head) over a sample, with its trees, track events and the media
// time origin (capture time minus PTS).
type attentionRun struct {
	trees  []*tree.Tree
	events []facetrack.Event
	origin time.Time
	fps    float64
}

func runAttention(t *testing.T, media string, meter *audience.Meter) attentionRun {
	t.Helper()
	st := build(t)
	var mu sync.Mutex
	var r attentionRun
	cfg := Config{
		Camera:   "att",
		Source:   capture.Config{Source: testenv.Media(t, media)},
		Offline:  true,
		Audience: meter,
		OnFrame: func(f *capture.Frame) {
			if r.origin.IsZero() {
				r.origin = f.Time.Add(-f.PTS)
			}
		},
		OnEvent: func(ev facetrack.Event) { mu.Lock(); r.events = append(r.events, ev); mu.Unlock() },
		OnTree: func(tr *tree.Tree) {
			if err := tr.Validate(); err != nil {
				t.Error(err)
			}
			mu.Lock()
			r.trees = append(r.trees, tr)
			mu.Unlock()
		},
	}
	p := New(cfg, st.Detector, st.Analyzer, nil, nil)
	src, err := capture.Open(context.Background(), cfg.Source, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	r.fps = src.Info().FPS
	if err := p.RunSource(context.Background(), src); err != nil {
		t.Fatal(err)
	}
	if len(r.trees) == 0 {
		t.Fatalf("%s: no trees", media)
	}
	return r
}

func (r attentionRun) media(t time.Time) float64 { return t.Sub(r.origin).Seconds() }

// lifetimes are the tracks' lifetimes as their events report them: the
// latest LastSeen minus FirstSeen.
func (r attentionRun) lifetimes() map[int]float64 {
	out := map[int]float64{}
	for _, ev := range r.events {
		out[ev.Track.ID] = ev.Track.LastSeen.Sub(ev.Track.FirstSeen).Seconds()
	}
	return out
}

// checkPresence: every tree has the presence fields; per track dwell and
// attention_s never go back, attention_s ≤ dwell_s, and the track's last
// tree's dwell is its lifetime less under one sample interval: dwell is
// read as of the window (the same in every offline run), and a track seen
// after its last window's last sample only within that sample's slot has
// no final window to carry those sightings.
func checkPresence(t *testing.T, r attentionRun) {
	t.Helper()
	life := r.lifetimes()
	last := map[int]*tree.Tree{}
	for _, tr := range r.trees {
		f := tr.Face
		if f == nil || f.DwellS == nil || f.AttentionS == nil {
			t.Fatalf("tree %s: no dwell_s/attention_s: %+v", tr.ID, f)
		}
		if *f.AttentionS > *f.DwellS {
			t.Errorf("tree %s: attention_s %v > dwell_s %v", tr.ID, *f.AttentionS, *f.DwellS)
		}
		if p := last[tr.TrackID]; p != nil && (*f.DwellS < *p.Face.DwellS || *f.AttentionS < *p.Face.AttentionS) {
			t.Errorf("tree %s: dwell/attention_s went back: %v/%v after %v/%v", tr.ID, *f.DwellS, *f.AttentionS, *p.Face.DwellS, *p.Face.AttentionS)
		}
		last[tr.TrackID] = tr
	}
	for id, tr := range last {
		l, ok := life[id]
		if !ok {
			t.Errorf("track %d has trees but no events", id)
			continue
		}
		sample := 1 / tr.Window.FPS
		if d := l - *tr.Face.DwellS; d < -0.0005 || d >= sample {
			t.Errorf("track %d: last dwell_s %.3f, lifetime from its events %.3f: short by %.3f s, want 0 to one sample interval (%.3f s)", id, *tr.Face.DwellS, l, d, sample)
		}
		t.Logf("track %d: dwell_s %.3f, lifetime %.3f, attention_s %.3f", id, *tr.Face.DwellS, l, *tr.Face.AttentionS)
	}
}

// The astronaut looks into the camera: attention ≥ 0.8 in every window.
func TestAttentionFrontalAstronaut(t *testing.T) {
	r := runAttention(t, "astronaut.png", nil)
	for _, tr := range r.trees {
		if a := tr.Face.Attention; a == nil || *a < 0.8 {
			t.Errorf("tree %s: attention %v, want ≥ 0.8 (a frontal face looking at the camera)", tr.ID, a)
		} else if tr.Face.Looking == nil || !*tr.Face.Looking || tr.Face.Engagement == nil {
			t.Errorf("tree %s: looking %v engagement %v", tr.ID, tr.Face.Looking, tr.Face.Engagement)
		}
	}
	checkPresence(t, r)
}

// Megamind.avi, judged by eye on frames extracted with ffmpeg (media
// seconds): the woman turns her head to the image's right and looks down
// past the camera from 0.5 to 1.3 s; the man is in three-quarter view,
// head and eyes turned to the image's left, from 4.3 s to the cut at
// 6.4 s. In both spans attention (the looking share of the samples in
// the span, and of every window inside it) is below 0.3. From 9.4 s the man
// faces the camera in close-up: attention ≥ 0.8 there.
func TestAttentionHeadsTurnedAway(t *testing.T) {
	r := runAttention(t, "Megamind.avi", nil)
	cone := audience.DefaultCone()
	spans := []struct {
		from, to float64
		away     bool
	}{{0.5, 1.3, true}, {4.3, 6.4, true}, {9.4, 11.3, false}}
	for _, sp := range spans {
		var n, looking, windows int
		seen := map[time.Time]bool{}
		for _, tr := range r.trees {
			for _, g := range tr.Face.Gaze {
				if m := r.media(g.Time); m >= sp.from && m <= sp.to && !seen[g.Time] {
					seen[g.Time] = true
					n++
					if cone.Looking(g) {
						looking++
					}
				}
			}
			s, e := r.media(time.Time(tr.Window.Start)), r.media(time.Time(tr.Window.End))
			if s >= sp.from && e <= sp.to && tr.Face.Attention != nil {
				windows++
				a := *tr.Face.Attention
				if sp.away && a >= 0.3 || !sp.away && a < 0.8 {
					t.Errorf("%.1f–%.1f s (away %v): tree %s (%.2f–%.2f s) attention %.2f", sp.from, sp.to, sp.away, tr.ID, s, e, a)
				}
			}
		}
		if n < 3 {
			t.Fatalf("%.1f–%.1f s: only %d measured samples", sp.from, sp.to, n)
		}
		share := float64(looking) / float64(n)
		t.Logf("%.1f–%.1f s: %d of %d samples looking (%.2f), %d windows inside", sp.from, sp.to, looking, n, share, windows)
		if sp.away && share >= 0.3 || !sp.away && share < 0.8 {
			t.Errorf("%.1f–%.1f s (away %v): looking share %.2f", sp.from, sp.to, sp.away, share)
		}
	}
	checkPresence(t, r)
}
