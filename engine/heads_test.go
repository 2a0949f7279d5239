package engine

import (
	"context"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// Every head in the registry can be opened, and every opener has a
// registry entry (registerHead panics otherwise): the one list is complete.
func TestEveryRegisteredHeadHasAnOpener(t *testing.T) {
	want := slices.Sorted(slices.Values(registry.Heads.Names()))
	if got := HeadNames(); !slices.Equal(got, want) {
		t.Fatalf("heads with an opener %v, registry.Heads %v", got, want)
	}
	if _, err := OpenHead("aura", nil, nil); err == nil {
		t.Fatal("OpenHead of an unknown head: no error")
	}
}

// cropCounter is a head with no model: it observes each crop's width and
// reports, per window, how many samples it saw. It shows the seam a head
// plugs into: observations are kept per sample, each window's reach
// Summarize in sample order, and what it writes lands in the tree.
type cropCounter struct{ closed bool }

func (c *cropCounter) Name() string { return "crop-counter" }
func (c *cropCounter) Observe(crops []facetrack.Crop) ([]any, error) {
	out := make([]any, len(crops))
	for i, cr := range crops {
		out[i] = cr.W
	}
	return out, nil
}
func (c *cropCounter) Summarize(obs []any, out *tree.Attributes) {
	out.Other = append(out.Other, tree.NamedValue{Name: c.Name(), Value: strconv.Itoa(len(obs)), Confidence: 1})
}
func (c *cropCounter) Close() error { c.closed = true; return nil }

func TestHeadSeam(t *testing.T) {
	counter := &cropCounter{}
	a := NewFastAnalyzer(newTestHead(t), FastConfig{Heads: []Head{counter}})
	ws := mediaWindows(t, "astronaut.png", 4, 1)
	if len(ws) == 0 {
		t.Fatal("no windows from astronaut.png")
	}
	tr, err := a.Analyze(context.Background(), ws[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	at := tr.Attributes
	if at == nil || len(at.Other) != 1 || at.Other[0].Name != "crop-counter" || at.Other[0].Value != strconv.Itoa(len(ws[0].Samples)) {
		t.Fatalf("attributes %+v, want crop-counter = %d samples", at, len(ws[0].Samples))
	}
	if at.Age != nil || at.Liveness != nil || at.HeadPose != nil {
		t.Fatalf("attributes from heads that are not configured: %+v", at)
	}
	var sawStage bool
	for _, s := range a.StageCosts() {
		sawStage = sawStage || s.Stage == "crop-counter" && s.Items == len(ws[0].Samples)
	}
	if !sawStage {
		t.Fatalf("stage costs %+v have no crop-counter stage", a.StageCosts())
	}
	if err := a.Close(); err != nil || !counter.closed {
		t.Fatalf("close: %v, head closed %v", err, counter.closed)
	}
}

// lookCounter is a model-free head that counts the crops it is run on and
// summarises each window by its number of observations.
type lookCounter struct {
	name  string
	crops int
}

func (c *lookCounter) Name() string { return c.name }
func (c *lookCounter) Close() error { return nil }
func (c *lookCounter) Observe(crops []facetrack.Crop) ([]any, error) {
	c.crops += len(crops)
	out := make([]any, len(crops))
	for i := range out {
		out[i] = c.crops
	}
	return out, nil
}
func (c *lookCounter) Summarize(obs []any, out *tree.Attributes) {
	out.Other = append(out.Other, tree.NamedValue{Name: c.Name(), Value: strconv.Itoa(len(obs)), Confidence: 1})
}

// steadyCounter is steady after three observations; unsure: its looks
// never agree (Steady is always false).
type steadyCounter struct {
	lookCounter
	unsure bool
}

func (c *steadyCounter) Steady(obs []any) bool { return !c.unsure && len(obs) >= 3 }

// sampledCounter is a SampledHead (not a SteadyHead) asking for one
// sample in 2.
type sampledCounter struct{ lookCounter }

func (c *sampledCounter) SampleEvery() int { return 2 }

// analyzeCounting runs a over ws, checks every window got the head's
// summary, and calls after (if any) with the new samples seen so far.
func analyzeCounting(t *testing.T, a *FastAnalyzer, ws []window.Window, after func(samples int)) int {
	t.Helper()
	samples := 0
	seen := map[uint64]bool{}
	for _, w := range ws {
		for _, s := range w.Samples {
			if !seen[s.FrameSeq] {
				seen[s.FrameSeq] = true
				samples++
			}
		}
		tr, err := a.Analyze(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Attributes == nil || len(tr.Attributes.Other) != 1 {
			t.Fatalf("window %d: no counter summary: %+v", w.Seq, tr.Attributes)
		}
		if after != nil {
			after(samples)
		}
	}
	return samples
}

// repeatTrack plays one track's windows k times in a row, as later frames
// of the same track (new frame numbers and times, the same crops).
func repeatTrack(ws []window.Window, k int) []window.Window {
	if len(ws) == 0 {
		return nil
	}
	last := ws[len(ws)-1]
	span := last.End.Sub(ws[0].Start) + last.End.Sub(last.Start)/time.Duration(max(1, len(last.Samples)-1))
	frames := last.Samples[len(last.Samples)-1].FrameSeq + 1
	out := make([]window.Window, 0, k*len(ws))
	for r := range k {
		for _, w := range ws {
			w.Seq += uint64(r * len(ws))
			w.Start, w.End = w.Start.Add(time.Duration(r)*span), w.End.Add(time.Duration(r)*span)
			ss := make([]window.Sample, len(w.Samples))
			for i, s := range w.Samples {
				s.FrameSeq += uint64(r) * frames
				s.Time = s.Time.Add(time.Duration(r) * span)
				ss[i] = s
			}
			w.Samples = ss
			out = append(out, w)
		}
	}
	return out
}

// A steady head runs on one sample in SteadyLearnEvery of a track until it
// is steady, then on one in SteadyEvery; every window is still summarised, from the
// track's kept observations. A head whose looks never agree is asked
// rarely too once it has keptObservations of them.
func TestSteadyHeadRunsRarelyOnceSteady(t *testing.T) {
	// The clip's longest track, played twice as one longer track: the
	// never-agreeing head needs keptObservations looks at the learning rate
	// and then two SteadyEvery spans.
	ws := repeatTrack(mediaWindows(t, "Megamind.avi", 4, 1), 2)
	for _, c := range []struct {
		name   string
		unsure bool
		looks  int // full-rate looks before it is asked rarely
	}{{"agreeing", false, 3}, {"never agreeing", true, keptObservations}} {
		t.Run(c.name, func(t *testing.T) {
			counter := &steadyCounter{lookCounter{name: "steady-counter"}, c.unsure}
			a := NewFastAnalyzer(newTestHead(t), FastConfig{Heads: []Head{counter}})
			defer a.Close()
			// looks on one sample in SteadyLearnEvery, then one in SteadyEvery
			learned := SteadyLearnEvery * (c.looks - 1)
			samples := analyzeCounting(t, a, ws, func(samples int) {
				// While learning, one sample in SteadyLearnEvery, not every one.
				if c.unsure && samples <= learned {
					if lo, hi := samples/SteadyLearnEvery, (samples+SteadyLearnEvery-1)/SteadyLearnEvery+1; counter.crops < lo || counter.crops > hi {
						t.Fatalf("learning, %d new samples: ran on %d crops, want %d..%d", samples, counter.crops, lo, hi)
					}
				}
			})
			want := c.looks + (samples-1-learned)/SteadyEvery
			if samples < learned+2*SteadyEvery || counter.crops > want+2 || counter.crops < c.looks {
				t.Fatalf("%d new samples: the steady head ran on %d crops, want about %d", samples, counter.crops, want)
			}
			t.Logf("%d new samples over %d windows: steady head ran on %d", samples, len(ws), counter.crops)
		})
	}
}

// A sampled head (liveness) runs on one new sample of a track in
// SampleEvery, the first always, and every window still gets its summary.
func TestSampledHeadRunsOnOneSampleInN(t *testing.T) {
	ws := mediaWindows(t, "Megamind.avi", 4, 1)
	counter := &sampledCounter{lookCounter{name: "sampled-counter"}}
	a := NewFastAnalyzer(newTestHead(t), FastConfig{Heads: []Head{counter}})
	defer a.Close()
	samples := analyzeCounting(t, a, ws, nil)
	if lo, hi := samples/2, (samples+1)/2+1; counter.crops < lo || counter.crops > hi {
		t.Fatalf("%d new samples: the sampled head ran on %d crops, want %d..%d", samples, counter.crops, lo, hi)
	}
	t.Logf("%d new samples: sampled head ran on %d", samples, counter.crops)
}
