package schedule

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/window"
)

// TieredConfig tunes a Tiered analyzer. Zero values take the defaults.
type TieredConfig struct {
	// Scheduler configures the scheduler of the slow analyzer. Its
	// OnResult, when set, is called after Tiered has taken the result.
	Scheduler Config
	// MergeMaxAge: a track's latest slow tree is merged into its fast trees
	// while the fast window's end is at most this much after the slow
	// window's end (window times, so it holds offline too). Default: the
	// scheduler's MaxAge (5 s); negative: no limit.
	MergeMaxAge time.Duration
	// Salience of a window for the scheduler (default Salience).
	Salience func(window.Window) float64
	// OnSlowTree receives the slow analyzer's own tree when it lands (only
	// schema-valid trees of a track that was not forgotten meanwhile), from
	// the scheduler's worker goroutine, so a sink can publish it as its own
	// message. Its id is that of its window, which already had a fast
	// tree; source.engine tells them apart. Keep it short and never
	// block: the GPU waits for it.
	OnSlowTree func(t *tree.Tree)
}

// TieredStats are Tiered's counters: the scheduler's, and its own.
type TieredStats struct {
	Scheduler Stats
	// Trees: fast trees returned by Analyze; Merged: those that carried
	// slow levels.
	Trees, Merged uint64
	// SlowInvalid: slow trees that failed the schema or named another
	// track than their window; they are neither merged nor emitted.
	SlowInvalid uint64
	// Tracks holding a slow tree.
	Tracks int
}

// Tiered is an engine.Analyzer of two tiers: every window gets the fast
// analyzer's tree at once (it keeps every track live), and is offered to a
// Scheduler over the slow analyzer; the returned tree is the fast tree
// merged with the track's latest slow tree (Merge). Safe for concurrent use
// by several cameras' pipelines (when the fast analyzer is).
type Tiered struct {
	fast, slow engine.Analyzer
	sched      *Scheduler
	cfg        TieredConfig

	mu     sync.Mutex
	latest map[TrackKey]*tree.Tree

	trees, merged, invalid atomic.Uint64
}

// NewTiered builds the two-tier analyzer and starts its scheduler, which
// runs until ctx ends or Close. Tiered owns fast and slow: Close closes both.
func NewTiered(ctx context.Context, fast, slow engine.Analyzer, cfg TieredConfig) *Tiered {
	if cfg.Salience == nil {
		cfg.Salience = Salience
	}
	if cfg.MergeMaxAge == 0 {
		cfg.MergeMaxAge = cfg.Scheduler.withDefaults().MaxAge
	}
	t := &Tiered{fast: fast, slow: slow, latest: map[TrackKey]*tree.Tree{}}
	user := cfg.Scheduler.OnResult
	cfg.Scheduler.OnResult = func(r Result) {
		t.land(r)
		if user != nil {
			user(r)
		}
	}
	t.cfg = cfg
	t.sched = New(ctx, slow, cfg.Scheduler)
	return t
}

// Analyze returns w's fast tree merged with the track's latest slow tree,
// and submits w to the slow analyzer's scheduler. It never waits for the
// slow analyzer.
func (t *Tiered) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	ft, err := t.fast.Analyze(ctx, w)
	if err != nil {
		return nil, err
	}
	return t.tier(w, ft), nil
}

// AnalyzeBatch is Analyze over several windows, with the fast analyzer run
// once over all of them when it is an engine.BatchAnalyzer (FastAnalyzer
// is: one ORT Run per head), else window by window. Each window is then
// submitted and merged as in Analyze, in the order of ws; the trees come
// back in that order. An error of the fast analyzer fails the batch: no
// window is submitted and no tree returned.
func (t *Tiered) AnalyzeBatch(ctx context.Context, ws []window.Window) ([]*tree.Tree, error) {
	fts, err := t.fastBatch(ctx, ws)
	if err != nil {
		return nil, err
	}
	out := make([]*tree.Tree, len(ws))
	for i, w := range ws {
		out[i] = t.tier(w, fts[i])
	}
	return out, nil
}

// fastBatch is the fast analyzer's trees of ws, in order.
func (t *Tiered) fastBatch(ctx context.Context, ws []window.Window) ([]*tree.Tree, error) {
	if ba, ok := t.fast.(engine.BatchAnalyzer); ok {
		fts, err := ba.AnalyzeBatch(ctx, ws)
		if err != nil {
			return nil, err
		}
		if len(fts) != len(ws) {
			return nil, fmt.Errorf("tiered analyzer: fast analyzer returned %d trees for %d windows", len(fts), len(ws))
		}
		return fts, nil
	}
	fts := make([]*tree.Tree, len(ws))
	for i, w := range ws {
		ft, err := t.fast.Analyze(ctx, w)
		if err != nil {
			return nil, err
		}
		fts[i] = ft
	}
	return fts, nil
}

// tier submits w to the slow analyzer's scheduler and returns its fast tree
// ft merged with the track's latest slow tree.
func (t *Tiered) tier(w window.Window, ft *tree.Tree) *tree.Tree {
	t.sched.Submit(w, t.cfg.Salience(w))
	t.mu.Lock()
	st := t.latest[TrackKey{w.Camera, w.TrackID}]
	t.mu.Unlock()
	out := Merge(ft, st, t.cfg.MergeMaxAge)
	t.trees.Add(1)
	if out.Source.Engine != ft.Source.Engine {
		t.merged.Add(1)
	}
	return out
}

// land takes a slow result: a valid tree of a live track becomes the
// track's latest and is emitted.
func (t *Tiered) land(r Result) {
	if r.Err != nil || r.Tree == nil {
		return
	}
	st := r.Tree
	if st.Camera != r.Key.Camera || st.TrackID != r.Key.TrackID {
		t.invalid.Add(1)
		return
	}
	if err := st.Validate(); err != nil {
		t.invalid.Add(1)
		return
	}
	k := r.Key.Track()
	t.mu.Lock()
	// Known under t.mu: Forget holds t.mu across the scheduler's Forget
	// and the deletion, so a result racing with Forget cannot resurrect
	// the track's state.
	live := t.sched.Known(k.Camera, k.TrackID)
	if live {
		if old := t.latest[k]; old == nil || !time.Time(st.Window.End).Before(time.Time(old.Window.End)) {
			t.latest[k] = st
		}
	}
	t.mu.Unlock()
	if live && t.cfg.OnSlowTree != nil {
		t.cfg.OnSlowTree(st)
	}
}

// Forget drops the track's state here, in the scheduler, and in both
// analyzers when they keep any (engine.FastAnalyzer does).
func (t *Tiered) Forget(camera string, trackID int) {
	t.mu.Lock()
	t.sched.Forget(camera, trackID)
	delete(t.latest, TrackKey{camera, trackID})
	t.mu.Unlock()
	if f, ok := t.fast.(engine.TrackForgetter); ok {
		f.Forget(camera, trackID)
	}
	if f, ok := t.slow.(engine.TrackForgetter); ok {
		f.Forget(camera, trackID)
	}
}

// StageCosts is the fast analyzer's per-stage costs (nil when it keeps
// none), so that the bench reports the fast heads with the slow tier on.
func (t *Tiered) StageCosts() []engine.StageCost {
	if sc, ok := t.fast.(engine.StageCoster); ok {
		return sc.StageCosts()
	}
	return nil
}

// Scheduler is the scheduler of the slow tier (for stats and Drain).
func (t *Tiered) Scheduler() *Scheduler { return t.sched }

// Slow is the slow tier's analyzer (the daemon reads a remote engine's
// health from it).
func (t *Tiered) Slow() engine.Analyzer { return t.slow }

// Stats returns a snapshot of the counters.
func (t *Tiered) Stats() TieredStats {
	t.mu.Lock()
	n := len(t.latest)
	t.mu.Unlock()
	return TieredStats{
		Scheduler: t.sched.Stats(),
		Trees:     t.trees.Load(), Merged: t.merged.Load(), SlowInvalid: t.invalid.Load(),
		Tracks: n,
	}
}

// Close stops the scheduler (cancelling a slow run in flight and waiting
// for it), then closes the fast and the slow analyzer.
func (t *Tiered) Close() error {
	var errs []error
	errs = append(errs, t.sched.Close())
	t.mu.Lock()
	t.latest = map[TrackKey]*tree.Tree{}
	t.mu.Unlock()
	if t.fast != nil {
		errs = append(errs, t.fast.Close())
	}
	if t.slow != nil {
		errs = append(errs, t.slow.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tiered analyzer: %w", err)
	}
	return nil
}

var (
	_ engine.Analyzer       = (*Tiered)(nil)
	_ engine.BatchAnalyzer  = (*Tiered)(nil)
	_ engine.TrackForgetter = (*Tiered)(nil)
	_ engine.StageCoster    = (*Tiered)(nil)
)

// Merge is the fast tree of a window with the levels of the track's latest
// slow tree (README.md, "Merge"). It returns a new tree and changes neither
// input. slow contributes nothing when nil, of another track, or when
// fast's window ends more than maxAge after slow's (maxAge < 0: no limit).
//
//   - id, camera, track, window, face: fast.
//   - attributes: field by field; age, gender and liveness from the source
//     with the higher confidence (fast, the fresher, on a tie or when the
//     other lacks it); head pose from fast when it has one; other: union by
//     name, the higher confidence per name, fast on a tie.
//   - expression: label, confidence, scores, valence and arousal from fast
//     (the live per-window levels; from slow only where fast has none);
//     slow's cues with evidence "videmo" appended to fast's cues unless
//     fast already has the same cue (name, AU, evidence).
//   - emotion: slow's level when it has a label (label, fine, confidence,
//     rationale; trend and rationale taken from fast when slow lacks them
//     and both name the same label); else fast's, with slow's rationale
//     when it has one.
//   - emotion.mikels: slow's when it has one (read from the video), else
//     fast's derived estimate.
//   - uncertain (expression, emotion): travels with the slow label it
//     qualifies, wherever that label is taken.
//   - source: fast's, and engine "<fast>+<slow>" when any slow value made
//     it into the tree (model, provider, latency stay fast's: the schema's
//     source.model names one model; the slow tree keeps its own provenance),
//     with slow's answers (how its closed-set answers were read) appended:
//     they audit the slow levels the tree now carries.
func Merge(fast, slow *tree.Tree, maxAge time.Duration) *tree.Tree {
	out := *fast
	if slow == nil || slow.Camera != fast.Camera || slow.TrackID != fast.TrackID {
		return &out
	}
	if maxAge >= 0 && time.Time(fast.Window.End).Sub(time.Time(slow.Window.End)) > maxAge {
		return &out
	}
	var used bool
	out.Attributes = mergeAttributes(fast.Attributes, slow.Attributes, &used)
	out.Expression = mergeExpression(fast.Expression, slow.Expression, &used)
	out.Emotion = mergeEmotion(fast.Emotion, slow.Emotion, &used)
	if used {
		out.Source.Engine = fast.Source.Engine + "+" + slow.Source.Engine
		if len(slow.Source.Answers) > 0 {
			out.Source.Answers = append(append([]tree.AnswerInfo(nil), fast.Source.Answers...), slow.Source.Answers...)
		}
	}
	return &out
}

func mergeAttributes(f, s *tree.Attributes, used *bool) *tree.Attributes {
	if s == nil {
		return f
	}
	if f == nil {
		*used = true
		return cloneAttributes(s)
	}
	out := &tree.Attributes{HeadPose: f.HeadPose}
	if out.HeadPose == nil && s.HeadPose != nil {
		hp := *s.HeadPose
		out.HeadPose, *used = &hp, true
	}
	out.Age = pick(f.Age, s.Age, func(v *tree.NumberValue) float64 { return v.Confidence }, used)
	out.Gender = pick(f.Gender, s.Gender, func(v *tree.LabelValue) float64 { return v.Confidence }, used)
	out.Liveness = pick(f.Liveness, s.Liveness, func(v *tree.LabelValue) float64 { return v.Confidence }, used)
	out.Other = append(out.Other, f.Other...)
	for _, sv := range s.Other {
		i := indexOther(out.Other, sv.Name)
		switch {
		case i < 0:
			out.Other = append(out.Other, sv)
			*used = true
		case sv.Confidence > out.Other[i].Confidence:
			out.Other[i] = sv
			*used = true
		}
	}
	return out
}

// pick returns a copy of the value with the higher confidence; f on a tie.
func pick[T any](f, s *T, conf func(*T) float64, used *bool) *T {
	switch {
	case s == nil:
		return f
	case f == nil || conf(s) > conf(f):
		v := *s
		*used = true
		return &v
	}
	return f
}

func indexOther(v []tree.NamedValue, name string) int {
	for i := range v {
		if v[i].Name == name {
			return i
		}
	}
	return -1
}

func cloneAttributes(a *tree.Attributes) *tree.Attributes {
	out := &tree.Attributes{Other: append([]tree.NamedValue(nil), a.Other...)}
	if a.Age != nil {
		v := *a.Age
		out.Age = &v
	}
	if a.Gender != nil {
		v := *a.Gender
		out.Gender = &v
	}
	if a.HeadPose != nil {
		v := *a.HeadPose
		out.HeadPose = &v
	}
	if a.Liveness != nil {
		v := *a.Liveness
		out.Liveness = &v
	}
	return out
}

func mergeExpression(f, s *tree.Expression, used *bool) *tree.Expression {
	if s == nil {
		return f
	}
	if f == nil {
		*used = true
		return cloneExpression(s)
	}
	out := cloneExpression(f)
	if out.Label == "" && s.Label != "" {
		out.Label, out.Confidence, out.Uncertain = s.Label, s.Confidence, s.Uncertain
		out.Scores = cloneExpression(s).Scores
		*used = true
	}
	if out.Valence == nil && s.Valence != nil {
		v := *s.Valence
		out.Valence, *used = &v, true
	}
	if out.Arousal == nil && s.Arousal != nil {
		v := *s.Arousal
		out.Arousal, *used = &v, true
	}
	for _, c := range s.Cues {
		if c.Evidence != tree.EvidenceVidEmo || hasCue(out.Cues, c) {
			continue
		}
		out.Cues = append(out.Cues, cloneCue(c))
		*used = true
	}
	return out
}

func hasCue(v []tree.Cue, c tree.Cue) bool {
	for _, x := range v {
		if x.Name == c.Name && x.AU == c.AU && x.Evidence == c.Evidence {
			return true
		}
	}
	return false
}

func cloneCue(c tree.Cue) tree.Cue {
	if c.Onset != nil {
		o := *c.Onset
		c.Onset = &o
	}
	return c
}

func cloneExpression(e *tree.Expression) *tree.Expression {
	out := *e
	if e.Scores != nil {
		out.Scores = make(map[string]float64, len(e.Scores))
		for k, v := range e.Scores {
			out.Scores[k] = v
		}
	}
	out.Cues = nil
	for _, c := range e.Cues {
		out.Cues = append(out.Cues, cloneCue(c))
	}
	if e.Valence != nil {
		v := *e.Valence
		out.Valence = &v
	}
	if e.Arousal != nil {
		v := *e.Arousal
		out.Arousal = &v
	}
	return &out
}

func mergeEmotion(f, s *tree.Emotion, used *bool) *tree.Emotion {
	out := mergeEmotionLevel(f, s, used)
	// Mikels: the VLM's reading of the video over the fast tier's derived
	// mapping; the derived one when the VLM gave none.
	var m *tree.Mikels
	switch {
	case s != nil && s.Mikels != nil:
		m, *used = s.Mikels, true
	case f != nil:
		m = f.Mikels
	}
	if out == nil || out.Mikels == m {
		if out == nil && m != nil {
			return &tree.Emotion{Mikels: m}
		}
		return out
	}
	c := *out // out may be f or s itself
	c.Mikels = m
	return &c
}

func mergeEmotionLevel(f, s *tree.Emotion, used *bool) *tree.Emotion {
	switch {
	case s == nil:
		return f
	case s.Label != "":
		out := *s
		if f != nil && strings.EqualFold(f.Label, s.Label) {
			if out.Trend == "" {
				out.Trend = f.Trend
			}
			if out.Rationale == "" {
				out.Rationale = f.Rationale
			}
		}
		*used = true
		return &out
	case s.Rationale != "":
		out := tree.Emotion{}
		if f != nil {
			out = *f
		}
		out.Rationale = s.Rationale
		*used = true
		return &out
	}
	return f
}
