package pipeline

import (
	"context"
	"math"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// The audience over a clip played twice (as a looping camera plays it: one
// meter, track ids continuing) agrees with what the clip's track events and
// trees say: visitors are the tracks present in the period, dwell their
// event lifetimes, attention share the looking share of the trees' samples,
// emotion mix and valence the trees'. Checked over a period covering both
// loops and over one covering the second alone.
func TestAudienceMatchesTracksOverLoopedClip(t *testing.T) {
	st := build(t)
	period := time.Minute
	meter := audience.New(audience.Config{Period: period})
	var mu sync.Mutex
	var events []facetrack.Event
	var trees []*tree.Tree
	var lastFrame time.Time
	next := 1
	var loopStart []time.Time
	for loop := range 2 {
		cfg := Config{
			Camera:   "loop",
			Source:   capture.Config{Source: testenv.Media(t, "Megamind.avi")},
			Offline:  true,
			Audience: meter,
			OnFrame: func(f *capture.Frame) {
				if len(loopStart) == loop {
					loopStart = append(loopStart, f.Time)
				}
				lastFrame = f.Time
			},
			OnEvent: func(ev facetrack.Event) { mu.Lock(); events = append(events, ev); mu.Unlock() },
			OnTree:  func(tr *tree.Tree) { mu.Lock(); trees = append(trees, tr); mu.Unlock() },
		}
		cfg.Tracker.FirstID = next
		p := New(cfg, st.Detector, st.Analyzer, nil, nil)
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		next = p.NextTrackID()
		// A file's frame times are its run's start plus PTS; an offline run
		// is faster than the media, so wait for the clip's media end before
		// the next loop starts, as a real-time camera would.
		time.Sleep(time.Until(lastFrame))
	}
	end := lastFrame

	check := func(name string, from time.Time, a audience.Audience) {
		t.Helper()
		// expected, from the events: per track its first and latest detection
		first, last := map[int]time.Time{}, map[int]time.Time{}
		for _, ev := range events {
			first[ev.Track.ID] = ev.Track.FirstSeen
			if ev.Track.LastSeen.After(last[ev.Track.ID]) {
				last[ev.Track.ID] = ev.Track.LastSeen
			}
		}
		var dwells []float64
		for id := range first {
			if !last[id].Before(from) {
				dwells = append(dwells, last[id].Sub(first[id]).Seconds())
			}
		}
		sort.Float64s(dwells)
		var sum float64
		for _, d := range dwells {
			sum += d
		}
		if a.Visitors != len(dwells) || a.Faces != 0 {
			t.Errorf("%s: visitors %d faces %d, want %d tracks present and 0 faces after the clip", name, a.Visitors, a.Faces, len(dwells))
		}
		if len(dwells) > 0 {
			mean, p90 := sum/float64(len(dwells)), dwells[int(math.Ceil(0.9*float64(len(dwells))))-1]
			if math.Abs(a.DwellMeanS-mean) > 1e-3 || math.Abs(a.DwellP90S-p90) > 1e-3 {
				t.Errorf("%s: dwell mean %.3f p90 %.3f, want %.3f %.3f from the events", name, a.DwellMeanS, a.DwellP90S, mean, p90)
			}
		}
		// expected, from the trees: each sample once
		cone := audience.DefaultCone()
		seen := map[[2]int64]bool{}
		var measured, looking, n, vn int
		var vsum float64
		mix := map[string]float64{}
		for _, tr := range trees {
			if time.Time(tr.Window.End).Before(from) {
				continue
			}
			n++
			mix[tr.Emotion.Label]++
			if v := tr.Expression.Valence; v != nil {
				vsum += *v
				vn++
			}
			for _, g := range tr.Face.Gaze {
				k := [2]int64{int64(tr.TrackID), g.Time.UnixNano()}
				if !g.Time.Before(from) && !seen[k] {
					seen[k] = true
					measured++
					if cone.Looking(g) {
						looking++
					}
				}
			}
		}
		if a.Trees != n {
			t.Errorf("%s: %d trees, want %d", name, a.Trees, n)
		}
		if a.AttentionShare == nil || math.Abs(*a.AttentionShare-float64(looking)/float64(measured)) > 1e-4 {
			t.Errorf("%s: attention share %v, want %d/%d", name, a.AttentionShare, looking, measured)
		}
		for l, c := range mix {
			if math.Abs(a.EmotionMix[l]-c/float64(n)) > 1e-4 {
				t.Errorf("%s: emotion mix %s %.4f, want %.4f", name, l, a.EmotionMix[l], c/float64(n))
			}
		}
		if len(a.EmotionMix) != len(mix) {
			t.Errorf("%s: emotion mix %v, want the labels of %v", name, a.EmotionMix, mix)
		}
		if vn > 0 && (a.ValenceMean == nil || math.Abs(*a.ValenceMean-vsum/float64(vn)) > 1e-4) {
			t.Errorf("%s: valence mean %v, want %.4f", name, a.ValenceMean, vsum/float64(vn))
		}
		t.Logf("%s: %d visitors, dwell mean %.2f p90 %.2f s, attention %.3f, mix %v, %d trees", name, a.Visitors, a.DwellMeanS, a.DwellP90S, *a.AttentionShare, a.EmotionMix, a.Trees)
	}

	// both loops: the default period covers them
	all := meter.Snapshot("loop", end)
	check("both loops", end.Add(-period), all)
	if want := next - 1; all.Visitors != want || want < 4 {
		t.Errorf("both loops: %d visitors, want every track of both loops (%d)", all.Visitors, want)
	}
	// the second loop alone: the same events and trees through a meter
	// whose period starts with it
	short := end.Sub(loopStart[1]) + 10*time.Millisecond
	m2 := audience.New(audience.Config{Period: short})
	for _, ev := range events {
		m2.Event(ev)
	}
	ids := map[int]bool{}
	for _, tr := range trees {
		m2.Apply(tr)
		ids[tr.TrackID] = true
	}
	for id := range ids { // the clip ended: every track had its last tree
		m2.Forget(id)
	}
	check("second loop", end.Add(-short), m2.Snapshot("loop", end))
}
