package pipeline

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"sync"
	"testing"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/scene"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// rawTrees keeps a copy of each tree the real analyzer returned, before
// the pipeline adds the scene, so the test can see what the scene changed.
type rawTrees struct {
	engine.Analyzer
	mu  sync.Mutex
	raw map[string]*tree.Tree
}

func (r *rawTrees) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	t, err := r.Analyzer.Analyze(ctx, w)
	if err == nil {
		b, _ := json.Marshal(t)
		var c tree.Tree
		_ = json.Unmarshal(b, &c)
		r.mu.Lock()
		r.raw[t.ID] = &c
		r.mu.Unlock()
	}
	return t, err
}

// Every tree carries the camera's scene over its window; in low light (the
// same face at a third of its brightness) the face levels' confidences are
// the analyzer's times scene.Discount and the rationale says so; in good
// light they are untouched. Config.LowLight moves the threshold (0.6 makes
// the lit photo dark; 0 turns it off). The scene is sampled at most every
// 250 ms of media time, and its cost is the pipeline's own stage.
func TestSceneInEveryTree(t *testing.T) {
	st := build(t)
	mats := testenv.MatCount(t)
	w, h, bgr := astronaut(t)
	dark := make([]byte, len(bgr))
	for i, v := range bgr {
		dark[i] = uint8(math.Round(float64(v) * 0.3))
	}
	const n, fps = 20, 10
	th := func(v float64) *float64 { return &v }
	for _, c := range []struct {
		name     string
		bgr      []byte
		lowLight *float64
		low      bool
	}{{"lit", bgr, nil, false}, {"dark", dark, nil, true}, {"lit, threshold 0.6", bgr, th(0.6), true}, {"dark, threshold 0", dark, th(0), false}} {
		t.Run(c.name, func(t *testing.T) {
			a, err := scene.Sample(c.bgr, w, h, 3*w)
			if err != nil {
				t.Fatal(err)
			}
			want := a.Scene()
			cfg := Config{Camera: "scene", Window: window.Config{FPS: fps, Length: 4, Stride: 2}, Offline: true, LowLight: c.lowLight}
			trees := collectTrees(&cfg)
			an := &rawTrees{Analyzer: st.Analyzer, raw: map[string]*tree.Tree{}}
			p := New(cfg, st.Detector, an, nil, nil)
			if err := p.RunSource(context.Background(), newSynthSource(t, n, fps, func(int) (int, int, []byte) { return w, h, c.bgr }, nil)); err != nil {
				t.Fatal(err)
			}
			tr := trees()
			if len(tr) == 0 {
				t.Fatal("no trees")
			}
			for _, x := range tr {
				s := x.Scene
				if s == nil {
					t.Fatalf("tree %s has no scene", x.ID)
				}
				if s.Brightness != want.Brightness || s.Colorfulness != want.Colorfulness || s.LowLight != c.low || s.Frames < 1 || s.Frames > 2 {
					t.Fatalf("tree %s: scene %+v, want the frame's %+v over 1-2 sampled frames", x.ID, *s, want)
				}
				if err := x.Validate(); err != nil {
					t.Fatal(err)
				}
				raw := an.raw[x.ID]
				f := 1.0
				if c.low {
					f = scene.Discount(s.Brightness, lowLightOf(c.lowLight))
				}
				got, was := x.Expression.Confidence, raw.Expression.Confidence
				if math.Abs(got-math.Round(was*f*1e4)/1e4) > 1e-9 || math.Abs(x.Emotion.Confidence-math.Round(raw.Emotion.Confidence*f*1e4)/1e4) > 1e-9 {
					t.Fatalf("tree %s: expression confidence %g (analyzer %g), emotion %g (%g), want × %g", x.ID, got, was, x.Emotion.Confidence, raw.Emotion.Confidence, f)
				}
				says := strings.Contains(x.Emotion.Rationale, "low light (brightness")
				if says != c.low || !strings.HasPrefix(x.Emotion.Rationale, raw.Emotion.Rationale) {
					t.Fatalf("tree %s: rationale %q (analyzer's %q)", x.ID, x.Emotion.Rationale, raw.Emotion.Rationale)
				}
			}
			if sc := p.Scene(); sc == nil || sc.Brightness != want.Brightness || sc.LowLight != c.low {
				t.Fatalf("Pipeline.Scene() = %+v, want brightness %g", sc, want.Brightness)
			}
			// frames every 100 ms, a sample when 250 ms have passed: 0, 0.3 … 1.8 s
			costs := p.StageCosts()
			if len(costs) != 1 || costs[0].Stage != StageScene || costs[0].Items != 7 || costs[0].Runs != 7 || costs[0].Time <= 0 {
				t.Fatalf("stage costs %+v, want 7 scene samples", costs)
			}
			t.Logf("%d trees, scene %+v, rationale %q", len(tr), *tr[0].Scene, tr[len(tr)-1].Emotion.Rationale)
		})
	}
	if got := testenv.MatCount(t); got != mats {
		t.Fatalf("Mat leak: %d live Mats, %d before:\n%s", got, mats, testenv.MatLeaks())
	}
}
