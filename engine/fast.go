package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// EngineFastHead is the tree's source.engine for FastAnalyzer.
const EngineFastHead = "fast-head"

// EmotionCategory maps the fast head's expression labels to the tree's
// coarse emotion nouns.
var EmotionCategory = map[string]string{
	"happy":    "happiness",
	"sad":      "sadness",
	"angry":    "anger",
	"surprise": "surprise",
	"fear":     "fear",
	"disgust":  "disgust",
	"neutral":  "neutral",
}

// FastConfig tunes FastAnalyzer. Zero values take the defaults.
type FastConfig struct {
	// TrendWindows: how many previous windows of the track the current
	// label's probability is compared with (default 3).
	TrendWindows int
	// TrendDelta: |change| in probability below which the trend is
	// "steady" (default 0.05).
	TrendDelta float64
	// Heads are the optional face heads (registry.Heads: mesh cues,
	// age/gender, liveness), run in this order on every new window sample
	// beside the emotion head, each batched over the new samples into one
	// Run. The analyzer owns them and closes them in Close.
	Heads []Head
}

// FastAnalyzer is the Analyzer of the fast tier: the emotion head on every
// sample of a window, aggregated to one tree. Safe for concurrent use.
//
// Aggregation: the window's scores are the mean of the per-frame
// probability vectors. The mean keeps scores a distribution (they sum to 1),
// weights every frame equally, and is robust to a single frame where the
// head is confidently wrong (a blink, motion blur): with a geometric mean
// (mean log-probability) one near-zero frame would veto a class that the
// other frames agree on. The label is the arg max of the mean, its
// confidence that mean probability.
type FastAnalyzer struct {
	head *EmotionHead
	cfg  FastConfig

	mu     sync.Mutex
	tracks map[trackKey]*trackState

	stages stageClock
}

type trackKey struct {
	camera string
	id     int
}

type trackState struct {
	probs   map[uint64][]float32 // by FrameSeq
	face    map[uint64]*faceFrame
	base    baseline      // neutral geometry for the AU proxies
	history [][]float64   // mean probs of recent windows, oldest first
	steady  []steadyState // by head index; used for SteadyHeads and SampledHeads
}

// steadyState is a steady or sampled head's record of one track (a sampled head uses since and asked only).
type steadyState struct {
	kept  []any // the most recent observations, oldest first
	since int   // new samples since the head last ran on one
	asked int   // samples the head was run on
}

// faceFrame is what the optional heads said about one sample: the mesh's
// cues, and every other head's observation by head index (nil: none).
type faceFrame struct {
	cue frameCue
	obs []any
}

// NewFastAnalyzer builds the fast analyzer on head; the analyzer owns head
// and closes it in Close.
func NewFastAnalyzer(head *EmotionHead, cfg FastConfig) *FastAnalyzer {
	if cfg.TrendWindows <= 0 {
		cfg.TrendWindows = 3
	}
	if cfg.TrendDelta <= 0 {
		cfg.TrendDelta = 0.05
	}
	return &FastAnalyzer{head: head, cfg: cfg, tracks: map[trackKey]*trackState{}}
}

// Analyze runs the heads on the window's samples that were not seen in an
// earlier window of the same track and returns the window's tree.
func (a *FastAnalyzer) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	trees, err := a.AnalyzeBatch(ctx, []window.Window{w})
	if err != nil {
		return nil, err
	}
	return trees[0], nil
}

// pending is one window of a batch: its new samples sit at [off, off+n) of
// the batch's crops.
type pending struct {
	key     trackKey
	seqs    []uint64
	samples []window.Sample
	off     int
}

// AnalyzeBatch analyses several windows (the tracks of a camera whose
// windows queued up together) with each head run once over all their new
// samples: one ORT Run per head instead of one per window. Trees come back
// in the windows' order.
func (a *FastAnalyzer) AnalyzeBatch(ctx context.Context, ws []window.Window) ([]*tree.Tree, error) {
	t0 := time.Now()
	for _, w := range ws {
		if len(w.Samples) == 0 {
			return nil, fmt.Errorf("window %s has no samples", tree.MakeID(w.Camera, w.TrackID, w.Seq))
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	// 1. which samples need the heads (each once, even when two windows of
	// one track in the batch overlap)
	var todo []facetrack.Crop
	want := make([][]int, len(a.cfg.Heads)) // steady and sampled heads: the todo indices they run on
	pend := make([]pending, len(ws))
	queued := map[trackKey]map[uint64]bool{}
	a.mu.Lock()
	for i, w := range ws {
		key := trackKey{w.Camera, w.TrackID}
		st := a.tracks[key]
		if st == nil {
			st = &trackState{probs: map[uint64][]float32{}, face: map[uint64]*faceFrame{}}
			a.tracks[key] = st
		}
		if queued[key] == nil {
			queued[key] = map[uint64]bool{}
		}
		pend[i] = pending{key: key, off: len(todo)}
		for _, s := range w.Samples {
			if _, ok := st.probs[s.FrameSeq]; !ok && !queued[key][s.FrameSeq] {
				queued[key][s.FrameSeq] = true
				a.chooseSteady(st, want, len(todo))
				todo = append(todo, s.Crop)
				pend[i].seqs = append(pend[i].seqs, s.FrameSeq)
				pend[i].samples = append(pend[i].samples, s)
			}
		}
	}
	a.mu.Unlock()

	// 2. run the heads (outside the state lock; each serialises itself),
	// each over all new samples in one batch
	var fresh [][]float32
	var heads headResults
	if len(todo) > 0 {
		var err error
		if err = a.stages.time("emotion", len(todo), func() (e error) { fresh, e = a.head.Predict(todo); return }); err == nil {
			heads, err = a.runHeads(todo, want)
		}
		if err != nil {
			w := ws[0]
			return nil, fmt.Errorf("window %s: %w", tree.MakeID(w.Camera, w.TrackID, w.Seq), err)
		}
	}

	trees := make([]*tree.Tree, len(ws))
	for i, w := range ws {
		trees[i] = a.finish(w, pend[i], fresh, heads, t0)
	}
	return trees, nil
}

// finish caches a window's fresh results and assembles its tree.
func (a *FastAnalyzer) finish(w window.Window, pd pending, fresh [][]float32, heads headResults, t0 time.Time) *tree.Tree {
	// 3. cache, evict what is older than this window, gather
	labels := a.head.Labels()
	k := len(labels)
	a.mu.Lock()
	st := a.tracks[pd.key]
	if st == nil { // forgotten meanwhile
		st = &trackState{probs: map[uint64][]float32{}, face: map[uint64]*faceFrame{}}
		a.tracks[pd.key] = st
	}
	neutral := -1
	for j, l := range labels {
		if l == "neutral" {
			neutral = j
		}
	}
	for j, seq := range pd.seqs {
		i := pd.off + j
		st.probs[seq] = fresh[i]
		st.face[seq] = heads.frame(i, pd.samples[j], &st.base, argmax32(fresh[i]) == neutral)
		a.keepSteady(st, st.face[seq])
	}
	oldest := w.Samples[0].FrameSeq
	for _, s := range w.Samples {
		oldest = min(oldest, s.FrameSeq)
	}
	for seq := range st.probs {
		if seq < oldest {
			delete(st.probs, seq)
			delete(st.face, seq)
		}
	}
	var frames []frameCue
	var seen []*faceFrame
	for _, s := range w.Samples {
		if f := st.face[s.FrameSeq]; f != nil {
			frames = append(frames, f.cue)
			seen = append(seen, f)
		}
	}
	seen = a.withKept(st, seen)
	cues := aggregateCues(frames)
	mean := make([]float64, k)
	votes := make([]int, k)
	for _, s := range w.Samples {
		p := st.probs[s.FrameSeq]
		for j := range k {
			mean[j] += float64(p[j])
		}
		votes[argmax32(p)]++
	}
	n := float64(len(w.Samples))
	for j := range mean {
		mean[j] /= n
	}
	classTop := argmax64(mean)
	fused := fuse(labels, mean, cues)
	top := argmax64(fused)
	trend := trendOf(st.history, top, fused[top], a.cfg.TrendDelta)
	st.history = append(st.history, fused)
	if len(st.history) > a.cfg.TrendWindows {
		st.history = st.history[len(st.history)-a.cfg.TrendWindows:]
	}
	a.mu.Unlock()

	label := labels[classTop]
	conf := prob(mean[classTop])
	scores := make(map[string]float64, k)
	for j, l := range labels {
		scores[l] = prob(mean[j])
	}
	last := w.Samples[len(w.Samples)-1]
	emo := &tree.Emotion{
		Label:      EmotionCategory[labels[top]],
		Confidence: prob(fused[top]),
		Trend:      trend,
		Rationale:  rationale(label, votes[classTop], len(w.Samples), mean[classTop], cues),
	}
	if emo.Label == "" {
		emo.Label = labels[top] // a label set without a mapping keeps its own name
	}
	emo.Mikels = mikelsOf(labels, fused, cues) // Mikels' eight, derived: engine/mikels.go
	expr := &tree.Expression{Label: label, Confidence: conf, Scores: scores, Cues: cues.cues}
	if len(cues.peak) > 0 {
		v, ar := valenceArousal(labels, fused, cues)
		expr.Valence, expr.Arousal = &v, &ar
	}
	attrs3 := windowAttributes(a.cfg.Heads, seen, cues.pose)
	tr := &tree.Tree{
		Schema:  tree.Schema,
		ID:      tree.MakeID(w.Camera, w.TrackID, w.Seq),
		Camera:  w.Camera,
		TrackID: w.TrackID,
		Window: tree.Window{
			Start:  tree.Time(w.Start),
			End:    tree.Time(w.End),
			Frames: len(w.Samples),
			FPS:    w.FPS,
		},
		Face: &tree.Face{
			Box:        [4]float64{round(last.Box.X, 1), round(last.Box.Y, 1), round(last.Box.W, 1), round(last.Box.H, 1)},
			Score:      prob(f32(last.Score)),
			FramesSeen: max(w.FramesSeen, 0),
		},
		Attributes: attrs3,
		Expression: expr,
		Emotion:    emo,
		Source: tree.Source{
			Engine:   EngineFastHead,
			Model:    a.head.Ref(),
			Provider: a.head.Provider(),
		},
	}
	tr.Face.Gaze = windowGaze(frames) // attention: engine/attention.go
	if math.IsNaN(w.FPS) || w.FPS <= 0 {
		tr.Window.FPS = 0
	}
	tr.Source.LatencyMS = float64(time.Since(t0).Microseconds()) / 1000
	return tr
}

// trendOf compares p (the current label's mean probability) with that
// label's mean probability over the previous windows; "" on the first window.
func trendOf(history [][]float64, label int, p, delta float64) string {
	if len(history) == 0 {
		return ""
	}
	var prev float64
	for _, h := range history {
		prev += h[label]
	}
	prev /= float64(len(history))
	switch d := p - prev; {
	case d > delta:
		return "rising"
	case d < -delta:
		return "falling"
	}
	return "steady"
}

// Forget drops a track's cached probabilities and trend history; call it
// when the track ends.
func (a *FastAnalyzer) Forget(camera string, trackID int) {
	a.mu.Lock()
	delete(a.tracks, trackKey{camera, trackID})
	a.mu.Unlock()
}

// Tracks is how many tracks hold state (for tests and metrics).
func (a *FastAnalyzer) Tracks() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.tracks)
}

// cachedFrames is how many per-frame results a track holds.
func (a *FastAnalyzer) cachedFrames(camera string, trackID int) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if st := a.tracks[trackKey{camera, trackID}]; st != nil {
		return len(st.probs)
	}
	return 0
}

// Close drops all state and closes the head.
func (a *FastAnalyzer) Close() error {
	a.mu.Lock()
	a.tracks = map[trackKey]*trackState{}
	a.mu.Unlock()
	herr := CloseHeads(a.cfg.Heads)
	if a.head == nil {
		return errors.New("fast analyzer has no head")
	}
	return errors.Join(a.head.Close(), herr)
}

func argmax32(v []float32) int {
	b := 0
	for i := range v {
		if v[i] > v[b] {
			b = i
		}
	}
	return b
}

func argmax64(v []float64) int {
	b := 0
	for i := range v {
		if v[i] > v[b] {
			b = i
		}
	}
	return b
}

// f32 widens a float32 to the float64 with the same shortest decimal form
// (0.97, not 0.9700000286102295).
func f32(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}

// prob is a probability as trees carry it: in [0, 1], 4 decimals (finer
// digits are noise at this model's accuracy and bloat every message).
func prob(x float64) float64 { return round(clamp01(x), 4) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return min(max(x, 0), 1)
}

var (
	_ Analyzer       = (*FastAnalyzer)(nil)
	_ BatchAnalyzer  = (*FastAnalyzer)(nil)
	_ TrackForgetter = (*FastAnalyzer)(nil)
)
