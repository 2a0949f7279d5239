// Package audience turns one camera's trees and track events into
// attention and presence: per face the looking share of each window, dwell,
// accumulated looking time and engagement (written into the tree's face
// level), and per camera the audience over a period — faces now, distinct
// visitors, dwell, attention share, emotion mix, mean valence. A visitor is
// a track: nothing here identifies a person, compares faces or links one
// track to another.
package audience

import (
	"math"
	"sort"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
)

// DefaultPeriod is the span the audience figures cover.
const DefaultPeriod = 60 * time.Second

// maxKept bounds the samples and trees kept for the period (a busy camera
// with a long period keeps its most recent ones).
const maxKept = 1 << 16

// Config tunes a Meter; zero values take the defaults.
type Config struct {
	Cone   Cone
	Period time.Duration
}

// Meter is one camera's attention and audience state. Safe for concurrent
// use: events arrive from the frame loop, trees from the engine loop, and
// snapshots from a timer.
type Meter struct {
	cfg Config

	mu      sync.Mutex
	now     time.Time // latest frame or window time seen
	tracks  map[int]*track
	past    []span // forgotten tracks, for visitors within the period
	samples []sample
	trees   []treeRec
}

type track struct {
	first, last time.Time
	visible     bool // matched in the latest detection frame
	lastSample  time.Time
	attentionS  float64
}

type span struct{ first, last time.Time }

type sample struct {
	t       time.Time
	looking bool
}

type treeRec struct {
	t       time.Time
	label   string
	valence *float64
}

// New builds a meter.
func New(cfg Config) *Meter {
	if cfg.Cone == (Cone{}) {
		cfg.Cone = DefaultCone()
	}
	if cfg.Period <= 0 {
		cfg.Period = DefaultPeriod
	}
	return &Meter{cfg: cfg, tracks: map[int]*track{}}
}

// Config is the meter's configuration, defaults filled.
func (m *Meter) Config() Config { return m.cfg }

// Event records a track's lifecycle (confirmed tracks only: the tracker
// reports tentative ones to no one).
func (m *Meter) Event(ev facetrack.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.advance(ev.Time)
	t := ev.Track
	tr := m.tracks[t.ID]
	if tr == nil {
		if ev.Type == facetrack.EventEnd {
			return
		}
		tr = &track{first: t.FirstSeen}
		m.tracks[t.ID] = tr
	}
	if t.LastSeen.After(tr.last) {
		tr.last = t.LastSeen
	}
	tr.visible = ev.Type == facetrack.EventNew || ev.Type == facetrack.EventUpdate
}

// Forget drops a track after its last tree; it still counts as a visitor
// until it is older than the period.
func (m *Meter) Forget(id int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tr := m.tracks[id]; tr != nil {
		m.past = append(m.past, span{tr.first, tr.last})
		delete(m.tracks, id)
	}
}

// Apply fills t's attention and presence fields (Face.Looking, Attention,
// DwellS, AttentionS, Engagement) and records t for the audience. A tree
// without a face level is recorded but not filled.
//
//   - attention: the share of the window's measured samples inside the cone;
//     looking: whether the latest one is;
//   - dwell_s: from the track's first detection to its latest one so far
//     (ApplySeen: as of the tree's window, which for a track's final
//     window is its last detection), never before the window's end;
//   - attention_s: the track's looking time, each looking sample counting
//     the time since the track's previous sample (at most two sample
//     intervals, so a gap in the mesh does not count as looking);
//   - engagement: attention × (0.5 + 0.5 × expressiveness), expressiveness
//     being the larger of 1 − P(neutral) and the strongest landmark cue
//     other than blinks (README, Attention and audience).
func (m *Meter) Apply(t *tree.Tree) { m.ApplySeen(t, time.Time{}) }

// ApplySeen is Apply with the track's latest detection as of the tree's
// window (window.Window.LastSeen; zero: as the events report it now). The
// events come from the frame loop, which runs ahead of the engine by as
// much as the engine lags, so only this makes dwell_s, and attention_s
// capped by it, the same in every offline run of a file.
func (m *Meter) ApplySeen(t *tree.Tree, lastSeen time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	end := time.Time(t.Window.End)
	m.advance(end)
	tr := m.tracks[t.TrackID]
	if tr == nil { // a tree without track events (a test, a replay)
		tr = &track{first: time.Time(t.Window.Start)}
		m.tracks[t.TrackID] = tr
	}
	rec := treeRec{t: end}
	if t.Emotion != nil {
		rec.label = t.Emotion.Label
	}
	if t.Expression != nil && t.Expression.Valence != nil {
		v := *t.Expression.Valence
		rec.valence = &v
	}
	m.trees = keep(append(m.trees, rec))
	m.prune(m.now.Add(-m.cfg.Period))
	f := t.Face
	if f == nil {
		return
	}
	step := 0.5 // s: two intervals at the default 4 fps
	if t.Window.FPS > 0 {
		step = 2 / t.Window.FPS
	}
	var looking int
	for i, g := range f.Gaze {
		l := m.cfg.Cone.Looking(g)
		if l {
			looking++
		}
		if i == len(f.Gaze)-1 {
			f.Looking = &l
		}
		if !g.Time.After(tr.lastSample) {
			continue // counted in an earlier, overlapping window
		}
		if l && !tr.lastSample.IsZero() {
			tr.attentionS += math.Min(g.Time.Sub(tr.lastSample).Seconds(), step)
		}
		tr.lastSample = g.Time
		m.samples = keep(append(m.samples, sample{g.Time, l}))
	}
	if lastSeen.IsZero() {
		lastSeen = tr.last
	}
	last := end
	if lastSeen.After(last) {
		last = lastSeen
	}
	dwell := math.Max(0, last.Sub(tr.first).Seconds())
	f.DwellS = ptr(round(dwell, 3))
	f.AttentionS = ptr(round(math.Min(tr.attentionS, dwell), 3))
	if len(f.Gaze) > 0 {
		a := float64(looking) / float64(len(f.Gaze))
		f.Attention = ptr(round(a, 4))
		f.Engagement = ptr(round(a*(0.5+0.5*Expressiveness(t)), 4))
	}
}

// Expressiveness is how much the face does in t's window, 0..1: the larger
// of 1 − P(neutral) and the strongest landmark cue other than blinks and
// closed eyes (which say nothing about expression).
func Expressiveness(t *tree.Tree) float64 {
	e := t.Expression
	if e == nil {
		return 0
	}
	var x float64
	if p, ok := e.Scores["neutral"]; ok {
		x = 1 - p
	}
	for _, c := range e.Cues {
		if c.Evidence == tree.EvidenceLandmarks && c.AU != "AU45" && c.AU != "AU43" {
			x = math.Max(x, c.Intensity)
		}
	}
	return math.Min(1, math.Max(0, x))
}

// Audience is one camera's figures over the period ending at Time.
type Audience struct {
	Camera  string    `json:"camera"`
	Time    time.Time `json:"time"`
	PeriodS float64   `json:"period_s"`
	// Faces: tracks matched in the latest detection frame.
	Faces int `json:"faces"`
	// Visitors: distinct tracks present at some time within the period.
	Visitors int `json:"visitors"`
	// DwellMeanS, DwellP90S: the visitors' dwell (first to latest
	// detection), mean and 90th percentile (nearest rank).
	DwellMeanS float64 `json:"dwell_mean_s"`
	DwellP90S  float64 `json:"dwell_p90_s"`
	// AttentionShare: the share of the period's measured face samples
	// that looked at the camera or screen; absent without samples.
	AttentionShare *float64 `json:"attention_share,omitempty"`
	// EmotionMix: the share of the period's trees per emotion label.
	EmotionMix map[string]float64 `json:"emotion_mix"`
	// Mood is EmotionMix's largest share ("" without trees).
	Mood string `json:"mood,omitempty"`
	// ValenceMean over the period's trees that carry valence.
	ValenceMean *float64 `json:"valence_mean,omitempty"`
	Trees       int      `json:"trees"`
}

// Snapshot computes the audience over the period ending at now, or at the
// latest frame or window time the meter saw if that is later (a file run
// faster than real time: media time).
func (m *Meter) Snapshot(camera string, now time.Time) Audience {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.now.After(now) {
		now = m.now
	}
	from := now.Add(-m.cfg.Period)
	m.prune(from)
	a := Audience{Camera: camera, Time: now.UTC(), PeriodS: m.cfg.Period.Seconds(), EmotionMix: map[string]float64{}}
	var dwells []float64
	visit := func(first, last time.Time) {
		if !last.Before(from) && !first.After(now) {
			dwells = append(dwells, math.Max(0, last.Sub(first).Seconds()))
		}
	}
	for _, tr := range m.tracks {
		if tr.visible {
			a.Faces++
		}
		if !tr.last.IsZero() {
			visit(tr.first, tr.last)
		}
	}
	for _, s := range m.past {
		visit(s.first, s.last)
	}
	a.Visitors = len(dwells)
	if len(dwells) > 0 {
		sort.Float64s(dwells)
		var sum float64
		for _, d := range dwells {
			sum += d
		}
		a.DwellMeanS = round(sum/float64(len(dwells)), 3)
		a.DwellP90S = round(dwells[int(math.Ceil(0.9*float64(len(dwells))))-1], 3)
	}
	var measured, looking int
	for _, s := range m.samples {
		if !s.t.Before(from) && !s.t.After(now) {
			measured++
			if s.looking {
				looking++
			}
		}
	}
	if measured > 0 {
		a.AttentionShare = ptr(round(float64(looking)/float64(measured), 4))
	}
	var vsum float64
	var vn int
	for _, r := range m.trees {
		if r.t.Before(from) || r.t.After(now) {
			continue
		}
		a.Trees++
		if r.label != "" {
			a.EmotionMix[r.label]++
		}
		if r.valence != nil {
			vsum += *r.valence
			vn++
		}
	}
	var labelled float64
	for _, n := range a.EmotionMix {
		labelled += n
	}
	best := 0.0
	for l, n := range a.EmotionMix {
		a.EmotionMix[l] = round(n/labelled, 4)
		if n > best || (n == best && l < a.Mood) {
			a.Mood, best = l, n
		}
	}
	if vn > 0 {
		a.ValenceMean = ptr(round(vsum/float64(vn), 4))
	}
	return a
}

func (m *Meter) advance(t time.Time) {
	if t.After(m.now) {
		m.now = t
	}
}

// prune drops what ended before from.
func (m *Meter) prune(from time.Time) {
	i := 0
	for i < len(m.samples) && m.samples[i].t.Before(from) {
		i++
	}
	m.samples = m.samples[i:]
	i = 0
	for i < len(m.trees) && m.trees[i].t.Before(from) {
		i++
	}
	m.trees = m.trees[i:]
	past := m.past[:0]
	for _, s := range m.past {
		if !s.last.Before(from) {
			past = append(past, s)
		}
	}
	m.past = past
}

func keep[T any](s []T) []T {
	if len(s) > maxKept {
		return append(s[:0:0], s[len(s)-maxKept/2:]...)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
