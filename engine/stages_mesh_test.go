package engine

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// gateMesh is a mesh with a valid geometry (eyes level, 0.4 apart) and
// the given face score.
func gateMesh(face float64) *Mesh {
	m := &Mesh{Face: face}
	for i := range m.P {
		m.P[i] = [3]float64{0.5, 0.5, 0}
	}
	m.P[lmRightEyeOuter] = [3]float64{0.3, 0.4, 0}
	m.P[lmLeftEyeOuter] = [3]float64{0.7, 0.4, 0}
	m.P[lmForehead] = [3]float64{0.5, 0.1, 0}
	m.P[lmChin] = [3]float64{0.5, 0.9, 0}
	return m
}

// meshCues runs one track's samples with these face scores through
// headResults.frame and reports which became cues.
func meshCues(base *baseline, scores ...float64) []bool {
	r := headResults{make([]any, len(scores))}
	for i, s := range scores {
		r[0][i] = gateMesh(s)
	}
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	out := make([]bool, len(scores))
	for i := range scores {
		out[i] = r.frame(i, window.Sample{FrameSeq: uint64(i), Time: t0.Add(time.Duration(i) * 250 * time.Millisecond)}, base, false).cue.valid
	}
	return out
}

// A track's mesh is trusted from a sample at minMeshFace until one below
// exitMeshFace; a per-sample gate at 0.5 drops the 0.48 and the 0.3s.
func TestMeshGateHysteresis(t *testing.T) {
	for _, c := range []struct {
		name   string
		scores []float64
		want   []bool
	}{
		{"a dip under 0.5 keeps cues", []float64{0.6, 0.48, 0.55}, []bool{true, true, true}},
		{"kept above the exit, dropped below it, regained at 0.5",
			[]float64{0.6, 0.3, 0.1, 0.05, 0.3, 0.45, 0.5, 0.3}, []bool{true, true, false, false, false, false, true, true}},
		{"a new track starts untrusted", []float64{0.4, 0.45, 0.3, 0.49}, []bool{false, false, false, false}},
		{"exactly at the thresholds", []float64{minMeshFace, exitMeshFace, exitMeshFace - 1e-9, exitMeshFace}, []bool{true, true, false, false}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := meshCues(&baseline{}, c.scores...); !slices.Equal(got, c.want) {
				t.Fatalf("scores %v: cues %v, want %v", c.scores, got, c.want)
			}
		})
	}
	// A NaN score (a broken model) ends the trust like a low one.
	if got := meshCues(&baseline{}, 0.9, nanScore()); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("0.9 then NaN: cues %v", got)
	}
}

func nanScore() float64 { z := 0.0; return z / z }

// scoredMesh is a mesh head without a model: a crop's first byte / 100
// is its face score, so the test says per sample what facemesh would.
type scoredMesh struct{}

func (scoredMesh) Name() string                      { return registry.HeadMesh }
func (scoredMesh) Close() error                      { return nil }
func (scoredMesh) Summarize([]any, *tree.Attributes) {}
func (scoredMesh) Observe(crops []facetrack.Crop) ([]any, error) {
	out := make([]any, len(crops))
	for i, c := range crops {
		out[i] = gateMesh(float64(c.Pix[0]) / 100)
	}
	return out, nil
}

// scoredWindow is a one-sample window of track id whose mesh scores face.
func scoredWindow(id int, seq uint64, face float64) window.Window {
	pix := make([]byte, 48*48*3)
	for i := range pix {
		pix[i] = byte(60 + i%7)
	}
	pix[0] = byte(face*100 + 0.5)
	ts := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).Add(time.Duration(seq) * 250 * time.Millisecond)
	s := window.Sample{FrameSeq: seq, Time: ts, Box: facetrack.Rect{X: 10, Y: 10, W: 48, H: 48}, Score: 0.9, Crop: facetrack.Crop{W: 48, H: 48, Pix: pix}}
	return window.Window{Camera: "gate", TrackID: id, Seq: seq, Start: ts, End: ts, FPS: 4, Samples: []window.Sample{s}, FramesSeen: int(seq) + 1}
}

// The gate is the track's: two tracks batched together keep their own,
// a steady and a sampled head skipping samples change nothing, and a
// forgotten track's successor starts untrusted.
func TestMeshGateIsPerTrack(t *testing.T) {
	emotion := newTestHead(t)
	plain := NewFastAnalyzer(emotion, FastConfig{Heads: []Head{scoredMesh{}}})
	skipping := NewFastAnalyzer(emotion, FastConfig{Heads: []Head{
		&steadyCounter{lookCounter: lookCounter{name: "steady-counter"}},
		&sampledCounter{lookCounter{name: "sampled-counter"}},
		scoredMesh{},
	}})
	// track 1 enters and stays above the exit; track 2 never reaches 0.5
	one := []float64{0.6, 0.3, 0.3, 0.48, 0.1, 0.3, 0.55, 0.3}
	wantOne := []bool{true, true, true, true, false, false, true, true}
	two := []float64{0.45, 0.3, 0.49, 0.3, 0.3, 0.45, 0.3, 0.3}
	cued := func(a *FastAnalyzer, ws []window.Window) []bool {
		trees, err := a.AnalyzeBatch(context.Background(), ws)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]bool, len(trees))
		for i, tr := range trees {
			out[i] = len(tr.Expression.Cues) > 0
		}
		return out
	}
	for name, a := range map[string]*FastAnalyzer{"mesh only": plain, "with steady and sampled heads": skipping} {
		t.Run(name, func(t *testing.T) {
			var got1, got2 []bool
			for i := range one {
				c := cued(a, []window.Window{scoredWindow(1, uint64(i), one[i]), scoredWindow(2, uint64(i), two[i])})
				got1, got2 = append(got1, c[0]), append(got2, c[1])
			}
			if !slices.Equal(got1, wantOne) || slices.Contains(got2, true) {
				t.Fatalf("track 1 scores %v: cues %v, want %v; track 2 scores %v: cues %v, want none", one, got1, wantOne, two, got2)
			}
			a.Forget("gate", 1) // its last sample left it trusted
			if c := cued(a, []window.Window{scoredWindow(1, 0, 0.45)}); c[0] {
				t.Fatal("a new track under a forgotten one's id: 0.45 trusted, want a new track to start untrusted")
			}
		})
	}
}
