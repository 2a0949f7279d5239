package pipeline

import (
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/scene"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/window"
)

// StageScene is the scene's stage name in StageCosts (and edgemo bench).
const StageScene = "scene"

// minSceneInterval caps the scene's sampling at 4 frames a second: a
// camera's light and colour change slowly, and a default window (8 crops
// at 4 fps, 2 s) still gets 8 samples.
const minSceneInterval = 250 * time.Millisecond

// sceneState measures the camera's picture (engine/scene) on frames at
// the window rate, at most 4 a second, and gives each window the scene of
// its own span.
type sceneState struct {
	hist     scene.History
	every    time.Duration // between samples
	span     time.Duration // the camera's window span (length / fps): the stats' scene
	lowLight float64       // Config.LowLight, defaulted

	last    time.Time // frame loop only
	badType atomic.Bool

	mu   sync.Mutex
	cost engine.StageCost
}

func newSceneState(w window.Config, lowLight *float64) *sceneState {
	w = w.WithDefaults()
	s := &sceneState{cost: engine.StageCost{Stage: StageScene}, lowLight: lowLightOf(lowLight)}
	s.every = max(minSceneInterval, time.Duration(float64(time.Second)/w.FPS))
	s.span = time.Duration(float64(w.Length) / w.FPS * float64(time.Second))
	return s
}

// frame samples f if the interval has passed since the last sample. A frame
// that is not 8-bit BGR (capture.FrameSource's contract) is skipped, and
// reported once.
func (s *sceneState) frame(f *capture.Frame, p *Pipeline) {
	if !s.last.IsZero() && f.Time.Sub(s.last) < s.every {
		return
	}
	t0 := time.Now()
	m := f.Mat
	if m.Empty() || m.Type() != gocv.MatTypeCV8UC3 {
		if !s.badType.Swap(true) {
			p.log.Warn("scene: frames are not 8-bit BGR; the scene is not measured", "type", m.Type(), "empty", m.Empty())
		}
		return
	}
	if !m.IsContinuous() { // a ROI of a larger picture: a packed copy
		m = m.Clone()
		defer m.Close()
	}
	b, err := m.DataPtrUint8()
	if err != nil {
		p.log.Warn("scene: frame data", "frame", f.Seq, "err", err)
		return
	}
	a, err := scene.Sample(b, m.Cols(), m.Rows(), 3*m.Cols())
	if err != nil {
		p.log.Warn("scene: sample", "frame", f.Seq, "err", err)
		return
	}
	s.hist.Add(f.Time, a)
	s.last = f.Time
	d := time.Since(t0)
	s.mu.Lock()
	s.cost.Runs++
	s.cost.Items++
	s.cost.Time += d
	s.mu.Unlock()
}

// window is the scene of w's span (nil before any frame was sampled).
func (s *sceneState) window(w window.Window) *tree.Scene {
	if sc, ok := s.hist.Window(w.Start, w.End); ok {
		scene.Mark(&sc, s.lowLight)
		return &sc
	}
	return nil
}

// Scene is the camera's scene over the last window span (a default
// window's, window.length / window.fps) of sampled frames; nil before the
// first frame or when no run has started.
func (p *Pipeline) Scene() *tree.Scene {
	s := p.scene.Load()
	if s == nil {
		return nil
	}
	last := s.hist.Last()
	if last.IsZero() {
		return nil
	}
	if sc, ok := s.hist.Window(last.Add(-s.span), last); ok {
		scene.Mark(&sc, s.lowLight)
		return &sc
	}
	return nil
}

// StageCosts is the pipeline's own stage cost: the scene's sampling (Runs
// and Items are frames sampled). The analyzer's stages are its own
// (engine.StageCoster).
func (p *Pipeline) StageCosts() []engine.StageCost {
	s := p.scene.Load()
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return []engine.StageCost{s.cost}
}

// withScene puts sc into t (scene.Apply: the block, and the low-light
// discount at the camera's threshold).
func (p *Pipeline) withScene(t *tree.Tree, sc *tree.Scene) {
	if sc != nil {
		scene.Apply(t, *sc, lowLightOf(p.cfg.LowLight))
	}
}

func lowLightOf(v *float64) float64 {
	if v == nil {
		return scene.LowLight
	}
	return *v
}
