package pipeline

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/parts"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// slowAnalyzer delays the real analyzer, standing in for an engine that
// cannot keep up (a busy GPU). The trees are still the real ones.
type slowAnalyzer struct {
	engine.Analyzer
	delay time.Duration
}

func (s slowAnalyzer) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	time.Sleep(s.delay)
	return s.Analyzer.Analyze(ctx, w)
}

func build(t *testing.T) *parts.Stack {
	t.Helper()
	st, err := parts.Build(parts.Options{Providers: []string{"cpu"}}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A live-paced source with a slow engine drops the oldest windows (counted)
// instead of falling behind; an offline run with the same engine drops none.
func TestSlowEngineDropsOldestWindowsOnlyWhenLive(t *testing.T) {
	st := build(t)
	src := testenv.Media(t, "astronaut.png") // 5 s clip at 10 fps: one face, windows every second
	// Windows arrive at ~5/s; the engine manages ~1.7/s. Even a loaded CI
	// machine that drops half the frames at capture outpaces it.
	run := func(live bool, d time.Duration) (*Pipeline, []*tree.Tree) {
		var mu sync.Mutex
		var trees []*tree.Tree
		cfg := Config{
			Camera:   "slow",
			Source:   capture.Config{Source: src, Realtime: live, StillDuration: d},
			Window:   window.Config{FPS: 10, Length: 4, Stride: 2},
			Offline:  !live,
			QueueLen: 1,
			OnTree:   func(t *tree.Tree) { mu.Lock(); trees = append(trees, t); mu.Unlock() },
		}
		p := New(cfg, st.Detector, slowAnalyzer{st.Analyzer, 600 * time.Millisecond}, nil, nil)
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return p, trees
	}

	p, trees := run(true, 6*time.Second)
	if p.Stats.WindowsDropped.Load() == 0 {
		t.Fatalf("live run with a slow engine dropped no window (trees %d)", len(trees))
	}
	for i := 1; i < len(trees); i++ {
		if trees[i].ID <= trees[i-1].ID {
			t.Fatalf("trees out of order: %s after %s", trees[i].ID, trees[i-1].ID)
		}
	}
	t.Logf("live: %d trees, %d windows dropped", len(trees), p.Stats.WindowsDropped.Load())

	p, trees = run(false, 2*time.Second)
	if d := p.Stats.WindowsDropped.Load(); d != 0 {
		t.Fatalf("offline run dropped %d windows", d)
	}
	if uint64(len(trees)) != p.Stats.Windows.Load() {
		t.Fatalf("offline: %d trees for %d windows", len(trees), p.Stats.Windows.Load())
	}
}

// An offline run's trees are a function of the file: the same with an
// engine far behind the frame loop (which then runs ahead to the end of
// the queue) as with a frame loop slower than the engine. dwell_s is read
// as of each window, not as of the track events that arrived meanwhile:
// every tree but a track's last one is dwelt to its window's end.
func TestOfflineTreesDoNotDependOnEngineLag(t *testing.T) {
	st := build(t)
	src := testenv.Media(t, "Megamind.avi")
	// One camera name per run: slowAnalyzer hides the analyzer's
	// TrackForgetter, and the runs' tracks must not share its state.
	run := func(camera string, engineDelay, frameDelay time.Duration) (map[string]*tree.Tree, map[int]facetrack.Track, []string) {
		var mu sync.Mutex
		trees := map[string]*tree.Tree{}
		var order []string
		tracks := map[int]facetrack.Track{}
		cfg := Config{
			Camera:      camera,
			Source:      capture.Config{Source: src, FPS: 6},
			Window:      window.Config{FPS: 2, Length: 4, Stride: 4},
			DetectEvery: 4,
			Offline:     true,
			OnFrame:     func(*capture.Frame) { time.Sleep(frameDelay) },
			OnEvent:     func(ev facetrack.Event) { mu.Lock(); tracks[ev.Track.ID] = ev.Track; mu.Unlock() },
			OnTree: func(tr *tree.Tree) {
				mu.Lock()
				id := strings.TrimPrefix(tr.ID, camera) // track and window
				trees[id] = tr
				order = append(order, id)
				mu.Unlock()
			},
		}
		p := New(cfg, st.Detector, slowAnalyzer{st.Analyzer, engineDelay}, nil, nil)
		if err := p.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return trees, tracks, order
	}
	behind, tracks, order := run("behind", 150*time.Millisecond, 0) // the frame loop runs ahead
	ahead, _, _ := run("ahead", 0, 40*time.Millisecond)             // the engine keeps up
	if len(behind) < 4 || len(behind) != len(ahead) {
		t.Fatalf("%d trees with a slow engine, %d with a slow frame loop", len(behind), len(ahead))
	}
	lastOf := map[int]string{}
	for _, id := range order {
		lastOf[behind[id].TrackID] = id
	}
	for id, a := range behind {
		b := ahead[id]
		if b == nil {
			t.Fatalf("tree %s only with the slow engine", id)
		}
		fa, fb := a.Face, b.Face
		if *fa.DwellS != *fb.DwellS || *fa.AttentionS != *fb.AttentionS || fa.FramesSeen != fb.FramesSeen || a.Expression.Label != b.Expression.Label {
			t.Errorf("tree %s: dwell_s %v vs %v, attention_s %v vs %v, frames_seen %d vs %d, label %s vs %s (slow engine vs slow frame loop)",
				id, *fa.DwellS, *fb.DwellS, *fa.AttentionS, *fb.AttentionS, fa.FramesSeen, fb.FramesSeen, a.Expression.Label, b.Expression.Label)
		}
		first := tracks[a.TrackID].FirstSeen
		toEnd := math.Round(time.Time(a.Window.End).Sub(first).Seconds()*1000) / 1000
		if id != lastOf[a.TrackID] && *fa.DwellS != toEnd {
			t.Errorf("tree %s: dwell_s %v, want %v: from the track's first detection to the window's end", id, *fa.DwellS, toEnd)
		}
	}
}
