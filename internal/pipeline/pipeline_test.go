package pipeline

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tree"
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
