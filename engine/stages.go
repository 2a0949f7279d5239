package engine

import (
	"fmt"
	"reflect"
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

// runHeads runs every head over the batch's new crops, each in one call,
// timed as its own stage; a head with a want list (steady heads) runs on
// those crops only and has no observation for the others.
func (a *FastAnalyzer) runHeads(crops []facetrack.Crop, want [][]int) (headResults, error) {
	r := make(headResults, len(a.cfg.Heads))
	for i, h := range a.cfg.Heads {
		sub := crops
		if want[i] != nil {
			sub = make([]facetrack.Crop, len(want[i]))
			for j, k := range want[i] {
				sub[j] = crops[k]
			}
		}
		var obs []any
		var err error
		if len(sub) > 0 {
			err = a.stages.time(h.Name(), len(sub), func() (e error) { obs, e = h.Observe(sub); return })
		}
		if err == nil && len(obs) != len(sub) {
			err = fmt.Errorf("head %s: %d observations for %d crops", h.Name(), len(obs), len(sub))
		}
		if err != nil {
			return nil, err
		}
		if want[i] == nil {
			r[i] = obs
			continue
		}
		r[i] = make([]any, len(crops))
		for j, k := range want[i] {
			r[i][k] = obs[j]
		}
	}
	return r, nil
}

// A track's mesh is trusted with hysteresis, as a tracking presence
// detector keeps a face until its presence drops below a lower score: it
// becomes trusted on a sample whose facemesh face score reaches
// minMeshFace and stays trusted until one falls below exitMeshFace. A
// per-sample gate flips on float noise wherever a face's scores hover
// near 0.5 (a 64 px face's moved by up to 0.16 between amd64 and emulated
// arm64); with hysteresis a dip between the two thresholds no longer does.
// exitMeshFace from the sample media's face scores (the clips' 64 px face;
// every other face scores 1.00): where the mesh fits they are 0.89 or more,
// with one dip to 0.31 inside such a run whose geometry is within 2° yaw
// and 0.03 IOD of its neighbours' (a mesh worth keeping); of the 17
// samples between runs 14 score 0.13 or less (up to 0.22 under
// emulation), where the mesh can be garbage (0.008: mouth 0.75 IOD wide,
// eyes 0.09 open, against 0.55 and 0.25 on that face's other samples).
const (
	minMeshFace  = 0.5
	exitMeshFace = 0.25
)

// trustMesh updates the track's mesh gate with one sample's face score
// and reports whether that sample's mesh is trusted. Only samples with a
// mesh move it, so a sample a head skipped changes nothing.
func (b *baseline) trustMesh(face float64) bool {
	switch {
	case face >= minMeshFace:
		b.meshTrusted = true
	case !(face >= exitMeshFace): // NaN too
		b.meshTrusted = false
	}
	return b.meshTrusted
}

// frame turns sample i's head observations into a faceFrame. A trusted
// mesh (trustMesh) becomes AU cues, measured against the track's
// baseline, which it then updates; every other observation is kept for
// the head's Summarize.
func (r headResults) frame(i int, s window.Sample, base *baseline, neutral bool) *faceFrame {
	f := &faceFrame{cue: frameCue{t: s.Time, roll: s.Roll}, obs: make([]any, len(r))}
	for h := range r {
		o := r[h][i]
		if o == nil {
			continue // a steady head that skipped this sample
		}
		m, ok := o.(*Mesh)
		if !ok {
			f.obs[h] = o
			continue
		}
		if !base.trustMesh(m.Face) {
			continue
		}
		if g := MeshGeometry(m); g.Valid {
			if !base.ok {
				base.update(g, false) // start from the prior
			}
			f.cue.geom, f.cue.aus, f.cue.valid = g, measureAUs(g, base.g), true
			base.update(g, neutral) // measured first, then learnt from
		}
	}
	return f
}

// windowAttributes lets each head summarise the window's observations
// (frames[k].obs[h], in sample order) and adds the head pose from the
// cues; nil when nothing was said.
func windowAttributes(heads []Head, frames []*faceFrame, pose *tree.HeadPose) *tree.Attributes {
	out := &tree.Attributes{HeadPose: pose}
	for h, hd := range heads {
		var obs []any
		for _, f := range frames {
			if h < len(f.obs) && f.obs[h] != nil {
				obs = append(obs, f.obs[h])
			}
		}
		if len(obs) > 0 {
			hd.Summarize(obs, out)
		}
	}
	if reflect.ValueOf(*out).IsZero() { // a field added later counts too
		return nil
	}
	return out
}
