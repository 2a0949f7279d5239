package engine

import (
	"sort"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// StageCost is the accumulated cost of one analyzer stage.
type StageCost struct {
	Stage string
	Runs  int           // ORT Runs (batches)
	Items int           // crops through the stage
	Time  time.Duration // wall time, preprocessing included
}

// stageClock accumulates per-stage cost for benchmarks and metrics.
type stageClock struct {
	mu sync.Mutex
	m  map[string]*StageCost
}

func (c *stageClock) time(stage string, items int, fn func() error) error {
	t0 := time.Now()
	err := fn()
	d := time.Since(t0)
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*StageCost{}
	}
	s := c.m[stage]
	if s == nil {
		s = &StageCost{Stage: stage}
		c.m[stage] = s
	}
	s.Runs++
	s.Items += items
	s.Time += d
	c.mu.Unlock()
	return err
}

// StageCosts returns the per-stage costs so far, by stage name.
func (a *FastAnalyzer) StageCosts() []StageCost {
	a.stages.mu.Lock()
	defer a.stages.mu.Unlock()
	var out []StageCost
	for _, s := range a.stages.m {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Stage < out[j].Stage })
	return out
}

var _ StageCoster = (*FastAnalyzer)(nil)

// headResults are the optional heads' outputs for a batch of new samples.
type headResults struct {
	mesh []Mesh
	attr []Attr
	live []float64
}

func (a *FastAnalyzer) runHeads(crops []facetrack.Crop) (headResults, error) {
	var r headResults
	h := a.cfg.Heads
	if h.Mesh != nil {
		if err := a.stages.time("mesh", len(crops), func() (e error) { r.mesh, e = h.Mesh.Predict(crops); return }); err != nil {
			return r, err
		}
	}
	if h.Attr != nil {
		if err := a.stages.time("age-gender", len(crops), func() (e error) { r.attr, e = h.Attr.Predict(crops); return }); err != nil {
			return r, err
		}
	}
	if h.Liveness != nil {
		if err := a.stages.time("liveness", len(crops), func() (e error) { r.live, e = h.Liveness.Predict(crops); return }); err != nil {
			return r, err
		}
	}
	return r, nil
}

// minMeshFace: below this facemesh face score the mesh is not trusted.
const minMeshFace = 0.5

// frame turns sample i's head outputs into a faceFrame, measuring the AU
// proxies against the track's baseline and then updating it.
func (r headResults) frame(i int, s window.Sample, base *baseline, neutral bool) *faceFrame {
	f := &faceFrame{cue: frameCue{t: s.Time, roll: s.Roll}}
	if r.mesh != nil && r.mesh[i].Face >= minMeshFace {
		g := MeshGeometry(&r.mesh[i])
		if g.Valid {
			if !base.ok {
				base.update(g, false) // start from the prior
			}
			f.cue.geom, f.cue.aus, f.cue.valid = g, measureAUs(g, base.g), true
			base.update(g, neutral) // measured first, then learnt from
		}
	}
	if r.attr != nil {
		a := r.attr[i]
		f.attr = &a
	}
	if r.live != nil {
		f.live, f.liveKnown = r.live[i], true
	}
	return f
}

// windowAttributes: age is the mean of the samples' ages (confidence the
// mean mass within ±5 years), gender the sign of the mean P(male) − 0.5
// (confidence 2·|mean − 0.5|), liveness "live" when the mean live score
// is >= 0.6, "spoof" when <= 0.4 and "unknown" between (confidence: the
// mean score for live, 1 − mean for spoof, and for unknown 1 − 2·|mean −
// 0.5|, how undecided the model is).
func windowAttributes(attrs []*Attr, lives []float64, pose *tree.HeadPose) *tree.Attributes {
	if len(attrs) == 0 && len(lives) == 0 && pose == nil {
		return nil
	}
	out := &tree.Attributes{HeadPose: pose}
	if len(attrs) > 0 {
		var age, conf, male float64
		for _, a := range attrs {
			age += a.Age
			conf += a.AgeConf
			male += a.Male
		}
		n := float64(len(attrs))
		age, conf, male = age/n, conf/n, male/n
		out.Age = &tree.NumberValue{Value: round(clampF(age, 0, 130), 0), Confidence: prob(conf)}
		// Confidence is the probability of the label given, as for every
		// other label in the tree (so it is never below 0.5 here).
		g, p := "female", 1-male
		if male > 0.5 {
			g, p = "male", male
		}
		out.Gender = &tree.LabelValue{Value: g, Confidence: prob(p)}
	}
	if len(lives) > 0 {
		var m float64
		for _, v := range lives {
			m += v
		}
		m /= float64(len(lives))
		switch {
		case m >= 0.6:
			out.Liveness = &tree.LabelValue{Value: "live", Confidence: prob(m)}
		case m <= 0.4:
			out.Liveness = &tree.LabelValue{Value: "spoof", Confidence: prob(1 - m)}
		default:
			out.Liveness = &tree.LabelValue{Value: "unknown", Confidence: prob(1 - 2*abs(m-0.5))}
		}
	}
	return out
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
