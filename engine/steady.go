package engine

// Steady heads (SteadyHead: age and gender) need a few good looks per
// track, not four a second: until their observations of a track agree they
// run on the first sample and then one in SteadyLearnEvery (a look every
// 2 s at the default window rate), then on one in SteadyEvery, and every
// window of the track is summarised from the track's kept observations. A track
// whose looks never agree (a face the model is unsure of: a cartoon, a
// profile) is asked rarely too once it has keptObservations of them: the
// windows are summarised from those, and more looks at full rate would
// only replace them.

// chooseSteady decides, for the new sample about to be todo[i] of track
// st, which steady and sampled heads run on it. Called with a.mu held.
func (a *FastAnalyzer) chooseSteady(st *trackState, want [][]int, i int) {
	if len(st.steady) < len(a.cfg.Heads) {
		st.steady = make([]steadyState, len(a.cfg.Heads))
	}
	for h, hd := range a.cfg.Heads {
		var every int
		ss := &st.steady[h]
		switch sh := hd.(type) {
		case SteadyHead:
			every = SteadyLearnEvery
			if len(ss.kept) >= keptObservations || sh.Steady(ss.kept) {
				every = SteadyEvery
			}
		case SampledHead:
			every = max(1, sh.SampleEvery())
		default:
			continue
		}
		if ss.asked == 0 || ss.since >= every-1 {
			want[h] = append(want[h], i)
			ss.since = 0
			ss.asked++
		} else {
			ss.since++
		}
		if want[h] == nil {
			want[h] = []int{} // run on none of this batch's crops
		}
	}
}

// keepSteady records a new sample's steady observations on the track.
// Called with a.mu held.
func (a *FastAnalyzer) keepSteady(st *trackState, f *faceFrame) {
	for h := range st.steady {
		if _, ok := a.cfg.Heads[h].(SteadyHead); !ok || h >= len(f.obs) || f.obs[h] == nil {
			continue
		}
		ss := &st.steady[h]
		ss.kept = append(ss.kept, f.obs[h])
		if len(ss.kept) > keptObservations {
			ss.kept = ss.kept[len(ss.kept)-keptObservations:]
		}
	}
}

// withKept gives steady heads the track's kept observations in place of
// the window's own: one synthetic frame per kept observation, carrying
// only those heads' observations. Called with a.mu held.
func (a *FastAnalyzer) withKept(st *trackState, seen []*faceFrame) []*faceFrame {
	if len(st.steady) == 0 {
		return seen
	}
	out := make([]*faceFrame, 0, len(seen))
	for _, f := range seen {
		g := &faceFrame{cue: f.cue, obs: append([]any(nil), f.obs...)}
		for h := range st.steady {
			if _, ok := a.cfg.Heads[h].(SteadyHead); ok && h < len(g.obs) {
				g.obs[h] = nil
			}
		}
		out = append(out, g)
	}
	for h, ss := range st.steady {
		for _, o := range ss.kept {
			obs := make([]any, len(a.cfg.Heads))
			obs[h] = o
			out = append(out, &faceFrame{obs: obs})
		}
	}
	return out
}
