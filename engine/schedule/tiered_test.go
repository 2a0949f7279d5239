package schedule

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"io"
	"log/slog"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// Every Analyze returns the fast tree at once; once a track's slow tree
// has landed, that track's next fast tree carries the VLM's levels; every
// tree validates.
func TestTieredMergesLatestSlow(t *testing.T) {
	const slowRun = 200 * time.Millisecond
	fast, slow := newFastStandIn(), newSlowStandIn(slowRun)
	landed := make(chan *tree.Tree, 16)
	ta := NewTiered(context.Background(), fast, slow, TieredConfig{OnSlowTree: func(st *tree.Tree) { landed <- st }})

	w0 := mkWindow("cam1", 7, 0, time.Now(), 154, 1)
	t0 := time.Now()
	tr, err := ta.Analyze(context.Background(), w0)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > slowRun/2 {
		t.Errorf("Analyze took %v: it waited for the slow tier", d)
	}
	validate(t, tr)
	if tr.Source.Engine != "fast-head" || tr.Emotion.Label != "neutral" {
		t.Errorf("first tree already has slow levels: %+v", tr.Source)
	}
	var st *tree.Tree
	select {
	case st = <-landed:
	case <-time.After(5 * time.Second):
		t.Fatal("no slow tree in 5 s")
	}
	validate(t, st)
	if st.ID != tree.MakeID("cam1", 7, 0) || st.Source.Engine != standInEngine {
		t.Errorf("slow tree %s by %s", st.ID, st.Source.Engine)
	}

	w1 := mkWindow("cam1", 7, 1, w0.End.Add(time.Second), 154, 1)
	tr, err = ta.Analyze(context.Background(), w1)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, tr)
	b, _ := json.Marshal(tr)
	t.Logf("merged tree: %s", b)
	if tr.ID != tree.MakeID("cam1", 7, 1) || tr.Source.Engine != "fast-head+"+standInEngine || tr.Source.Model != "emotion@0123456789ab" {
		t.Errorf("id %s, source %+v", tr.ID, tr.Source)
	}
	// emotion from the VLM, expression levels from the fast head, VLM cue appended
	if tr.Emotion.Label != "happiness" || tr.Emotion.Fine != "amusement" || !strings.Contains(tr.Emotion.Rationale, "window 0") {
		t.Errorf("emotion %+v", tr.Emotion)
	}
	if tr.Expression.Label != "neutral" || tr.Expression.Scores["neutral"] != 0.55 || len(tr.Expression.Cues) != 2 ||
		tr.Expression.Cues[1].Evidence != tree.EvidenceVidEmo || tr.Expression.Valence == nil {
		t.Errorf("expression %+v", tr.Expression)
	}
	// attributes field by field: age from the VLM (0.7 > 0.3), gender fast (0.9 > 0.6),
	// head pose fast, glasses fast (0.9 > 0.8)
	a := tr.Attributes
	if a.Age.Value != 31 || a.Gender.Value != "male" || a.HeadPose == nil || len(a.Other) != 1 || a.Other[0].Value != "no" {
		t.Errorf("attributes %+v", a)
	}
	// another track has nothing from track 7
	tr, _ = ta.Analyze(context.Background(), mkWindow("cam2", 7, 0, time.Now(), 154, 1))
	if tr.Source.Engine != "fast-head" {
		t.Errorf("cam2 track 7 got cam1's slow levels")
	}
	if s := ta.Stats(); s.Merged != 1 || s.Trees != 3 || s.Tracks != 1 || s.SlowInvalid != 0 {
		t.Errorf("stats %+v", s)
	}
	if err := ta.Close(); err != nil {
		t.Fatal(err)
	}
	if !fast.closed || !slow.closed {
		t.Error("Close did not close both analyzers")
	}
	noGoroutinesLeft(t)
}

// Six tracks on two cameras, fed from two goroutines (one per camera, as
// two pipelines sharing the analyzer): Analyze never waits for the slow
// tier, every tree validates, and every track ends up carrying VLM levels.
// "Never waits" is shown without a clock: for the first half second every
// slow run is held at a gate, and every track still gets its trees.
func TestTieredManyTracksLive(t *testing.T) {
	fast, slow := newFastStandIn(), newSlowStandIn(30*time.Millisecond)
	slow.gate = make(chan struct{})
	ta := NewTiered(context.Background(), fast, slow, TieredConfig{})
	defer ta.Close()
	var (
		mu      sync.Mutex
		merged  = map[TrackKey]int{}
		blocked = map[TrackKey]int{} // trees while the slow tier was held
		held    atomic.Bool
		n       atomic.Int64
	)
	held.Store(true)
	time.AfterFunc(500*time.Millisecond, func() { held.Store(false); close(slow.gate) })
	start := time.Now()
	var wg sync.WaitGroup
	for _, cam := range []string{"cam1", "cam2"} {
		wg.Go(func() {
			for seq := uint64(0); time.Since(start) < 1500*time.Millisecond; seq++ {
				for id := range 3 {
					w := mkWindow(cam, id, seq, time.Now(), 40+40*float64(id), 0.9)
					wasHeld := held.Load()
					tr, err := ta.Analyze(context.Background(), w)
					if err != nil {
						t.Error(err)
						return
					}
					validate(t, tr)
					n.Add(1)
					mu.Lock()
					if wasHeld && held.Load() {
						blocked[TrackKey{cam, id}]++
					}
					if strings.Contains(tr.Source.Engine, "+") {
						merged[TrackKey{cam, id}]++
					}
					mu.Unlock()
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	st := ta.Stats()
	t.Logf("%d trees, %d merged; per track while the slow tier was held %v, merged %v; scheduler completed %d superseded %d overflow %d stale %d",
		n.Load(), st.Merged, blocked, merged, st.Scheduler.Completed, st.Scheduler.Superseded, st.Scheduler.Overflow, st.Scheduler.Stale)
	select {
	case <-slow.started:
	default:
		t.Fatal("the slow tier never started a run")
	}
	for _, cam := range []string{"cam1", "cam2"} {
		for id := range 3 {
			if blocked[TrackKey{cam, id}] == 0 {
				t.Errorf("%s track %d: no tree while the slow tier was held: Analyze waited for it", cam, id)
			}
		}
	}
	for _, cam := range []string{"cam1", "cam2"} {
		for id := range 3 {
			if merged[TrackKey{cam, id}] == 0 {
				t.Errorf("track %s/%d never carried VLM levels", cam, id)
			}
		}
	}
	checkAccounting(t, st.Scheduler)
}

// A slow tree older than MergeMaxAge (in window time) is not merged.
func TestTieredMergeMaxAge(t *testing.T) {
	fast, slow := newFastStandIn(), newSlowStandIn(0)
	slow.gate = make(chan struct{})
	ta := NewTiered(context.Background(), fast, slow, TieredConfig{MergeMaxAge: 2 * time.Second})
	defer ta.Close()
	w0 := mkWindow("c", 1, 0, time.Now(), 154, 1)
	ta.Analyze(context.Background(), w0)
	slow.gate <- struct{}{} // only w0 is answered; later runs stay in flight
	eventually(t, "w0's slow tree", func() bool { return ta.Stats().Tracks == 1 })
	for i, c := range []struct {
		after time.Duration
		merge bool
	}{{time.Second, true}, {2 * time.Second, true}, {2*time.Second + time.Millisecond, false}} {
		tr, err := ta.Analyze(context.Background(), mkWindow("c", 1, uint64(i+1), w0.End.Add(c.after), 154, 1))
		if err != nil {
			t.Fatal(err)
		}
		if got := tr.Source.Engine != "fast-head"; got != c.merge {
			t.Errorf("%v after: merged %v, want %v", c.after, got, c.merge)
		}
	}
}

func must(t *tree.Tree, err error) *tree.Tree {
	if err != nil {
		panic(err)
	}
	return t
}

// Forget forwards to both analyzers and the scheduler and drops the
// track's slow tree; a slow run in flight when its track is forgotten
// lands nowhere.
func TestTieredForget(t *testing.T) {
	fast, slow := newFastStandIn(), newSlowStandIn(0)
	slow.gate = make(chan struct{})
	var emitted atomic.Int64
	ta := NewTiered(context.Background(), fast, slow, TieredConfig{OnSlowTree: func(*tree.Tree) { emitted.Add(1) }})
	defer ta.Close()

	ta.Analyze(context.Background(), mkWindow("c", 1, 0, time.Now(), 154, 1))
	slow.waitStarted(t, WindowKey{"c", 1, 0})
	slow.gate <- struct{}{}
	if err := ta.Scheduler().Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if ta.Stats().Tracks != 1 || emitted.Load() != 1 {
		t.Fatalf("slow tree not held: %+v", ta.Stats())
	}
	ta.Forget("c", 1)
	if s := ta.Stats(); s.Tracks != 0 || s.Scheduler.Tracks != 0 {
		t.Errorf("after Forget: %+v", s)
	}
	if !slices.Contains(fast.forgotten, TrackKey{"c", 1}) || !slices.Contains(slow.forgotten, TrackKey{"c", 1}) {
		t.Errorf("Forget not forwarded: fast %v slow %v", fast.forgotten, slow.forgotten)
	}

	// forgotten while its slow run is in flight
	tr, _ := ta.Analyze(context.Background(), mkWindow("c", 2, 0, time.Now(), 154, 1))
	if tr.Source.Engine != "fast-head" {
		t.Error("new track carries slow levels")
	}
	slow.waitStarted(t, WindowKey{"c", 2, 0})
	ta.Forget("c", 2)
	slow.gate <- struct{}{}
	if err := ta.Scheduler().Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if s := ta.Stats(); s.Tracks != 0 || s.Scheduler.Tracks != 0 || s.Scheduler.Completed != 2 || emitted.Load() != 1 {
		t.Errorf("a forgotten track's late slow tree was kept or emitted: %+v, emitted %d", s, emitted.Load())
	}
}

// A slow tree that fails the schema is counted and neither merged nor
// emitted; the fast trees stay valid.
func TestTieredInvalidSlowTree(t *testing.T) {
	fast := newFastStandIn()
	bad := &badSlow{slowStandIn: newSlowStandIn(0)}
	var emitted atomic.Int64
	ta := NewTiered(context.Background(), fast, bad, TieredConfig{OnSlowTree: func(*tree.Tree) { emitted.Add(1) }})
	defer ta.Close()
	w := mkWindow("c", 1, 0, time.Now(), 154, 1)
	ta.Analyze(context.Background(), w)
	if err := ta.Scheduler().Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	w.Seq = 1
	tr, _ := ta.Analyze(context.Background(), w)
	validate(t, tr)
	if s := ta.Stats(); s.SlowInvalid == 0 || s.Merged != 0 || emitted.Load() != 0 || tr.Source.Engine != "fast-head" {
		t.Errorf("stats %+v, emitted %d, engine %s", s, emitted.Load(), tr.Source.Engine)
	}
}

type badSlow struct{ *slowStandIn }

func (b *badSlow) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	tr, err := b.slowStandIn.Analyze(ctx, w)
	if tr != nil {
		tr.Emotion.Confidence = 1.5
	}
	return tr, err
}

// Merge rules on edge cases, and it never changes its inputs.
func TestMergeRules(t *testing.T) {
	now := time.Now()
	w := mkWindow("c", 1, 3, now, 154, 1)
	fastFull := must(newFastStandIn().Analyze(context.Background(), w))
	slowFull := slowTree(mkWindow("c", 1, 2, now.Add(-time.Second), 154, 1), time.Second)

	bare := func() *tree.Tree { // a fast tree with only the required fields
		b := *fastFull
		b.Face, b.Attributes, b.Expression, b.Emotion = nil, nil, nil, nil
		return &b
	}
	onlyRationale := func() *tree.Tree {
		s := *slowFull
		s.Attributes, s.Expression = nil, nil
		s.Emotion = &tree.Emotion{Rationale: "Looks away, lips pressed."}
		return &s
	}
	sameLabel := func() *tree.Tree {
		s := *slowFull
		s.Emotion = &tree.Emotion{Label: "neutral", Confidence: 0.9}
		return &s
	}
	otherTrack := func() *tree.Tree { s := *slowFull; s.TrackID = 2; return &s }
	// a VLM tree whose expression answer was a guess
	uncertain := func() *tree.Tree {
		s := *slowFull
		e, em := *s.Expression, *s.Emotion
		e.Uncertain, em.Uncertain = true, true
		s.Expression, s.Emotion = &e, &em
		s.Source.Answers = []tree.AnswerInfo{{Question: "emotion", LetterMass: 0.01, Method: tree.MethodUncertain},
			{Question: "gender", LetterMass: 0.9, Method: tree.MethodOptionLogits}}
		return &s
	}
	unlabelled := func() *tree.Tree { // fast expression with cues only
		f := *fastFull
		f.Expression = &tree.Expression{Cues: fastFull.Expression.Cues}
		return &f
	}
	dupCue := func() *tree.Tree {
		s := *slowFull
		e := *s.Expression
		e.Cues = []tree.Cue{{Name: "lip_corner_puller", AU: "AU12", Intensity: 0.9, Evidence: tree.EvidenceVidEmo},
			{Name: "x", Intensity: 0.1, Evidence: tree.EvidenceClassifier}}
		s.Expression = &e
		return &s
	}

	for _, c := range []struct {
		name       string
		fast, slow *tree.Tree
		maxAge     time.Duration
		check      func(t *testing.T, m *tree.Tree)
	}{
		{"no slow", fastFull, nil, time.Minute, func(t *testing.T, m *tree.Tree) {
			if !reflect.DeepEqual(m, fastFull) {
				t.Error("changed")
			}
		}},
		{"other track", fastFull, otherTrack(), -1, func(t *testing.T, m *tree.Tree) {
			if m.Source.Engine != "fast-head" {
				t.Error("merged another track")
			}
		}},
		{"too old", fastFull, slowFull, 999 * time.Millisecond, func(t *testing.T, m *tree.Tree) {
			if m.Source.Engine != "fast-head" {
				t.Error("merged a stale slow tree")
			}
		}},
		{"no limit", fastFull, slowFull, -1, func(t *testing.T, m *tree.Tree) {
			if m.Emotion.Label != "happiness" {
				t.Error("not merged")
			}
		}},
		{"bare fast takes all slow levels", bare(), slowFull, time.Minute, func(t *testing.T, m *tree.Tree) {
			if m.Attributes == nil || m.Expression == nil || m.Expression.Label != "happy" || m.Emotion.Label != "happiness" || m.Face != nil {
				t.Errorf("%+v", m)
			}
		}},
		{"rationale only", fastFull, onlyRationale(), time.Minute, func(t *testing.T, m *tree.Tree) {
			if m.Emotion.Label != "neutral" || m.Emotion.Trend != "steady" || m.Emotion.Rationale != "Looks away, lips pressed." ||
				m.Source.Engine != "fast-head+"+standInEngine {
				t.Errorf("%+v %s", m.Emotion, m.Source.Engine)
			}
		}},
		{"same label keeps fast trend and rationale", fastFull, sameLabel(), time.Minute, func(t *testing.T, m *tree.Tree) {
			if m.Emotion.Confidence != 0.9 || m.Emotion.Trend != "steady" || m.Emotion.Rationale != "neutral in 3 of 4 frames" {
				t.Errorf("%+v", m.Emotion)
			}
		}},
		{"other label takes no fast trend", fastFull, slowFull, time.Minute, func(t *testing.T, m *tree.Tree) {
			if m.Emotion.Trend != "" {
				t.Errorf("%+v", m.Emotion)
			}
		}},
		{"no slow answers without slow levels", fastFull, nil, time.Minute, func(t *testing.T, m *tree.Tree) {
			if m.Source.Answers != nil || m.Expression.Uncertain || m.Emotion.Uncertain {
				t.Errorf("%+v", m)
			}
		}},
		{"uncertain: slow emotion keeps its flag, fast expression has none; answers kept", fastFull, uncertain(), time.Minute, func(t *testing.T, m *tree.Tree) {
			if m.Expression.Label != "neutral" || m.Expression.Uncertain || m.Emotion.Label != "happiness" || !m.Emotion.Uncertain {
				t.Errorf("expression %+v, emotion %+v", m.Expression, m.Emotion)
			}
			if len(m.Source.Answers) != 2 || m.Source.Answers[0].Method != tree.MethodUncertain || m.Source.Answers[1].Question != "gender" {
				t.Errorf("answers %+v", m.Source.Answers)
			}
		}},
		{"uncertain: a slow label taken into a fast expression brings its flag", unlabelled(), uncertain(), time.Minute, func(t *testing.T, m *tree.Tree) {
			if m.Expression.Label != "happy" || !m.Expression.Uncertain || len(m.Expression.Cues) != 2 {
				t.Errorf("%+v", m.Expression)
			}
		}},
		{"uncertain: a bare fast tree takes the flags and the answers", bare(), uncertain(), time.Minute, func(t *testing.T, m *tree.Tree) {
			if !m.Expression.Uncertain || !m.Emotion.Uncertain || len(m.Source.Answers) != 2 {
				t.Errorf("%+v", m)
			}
		}},
		{"cues: videmo only, no duplicates", fastFull, dupCue(), time.Minute, func(t *testing.T, m *tree.Tree) {
			if len(m.Expression.Cues) != 2 || m.Expression.Cues[1].Evidence != tree.EvidenceVidEmo {
				t.Errorf("%+v", m.Expression.Cues)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fb, _ := json.Marshal(c.fast)
			sb, _ := json.Marshal(c.slow)
			m := Merge(c.fast, c.slow, c.maxAge)
			validate(t, m)
			c.check(t, m)
			fa, _ := json.Marshal(c.fast)
			sa, _ := json.Marshal(c.slow)
			if string(fa) != string(fb) || string(sa) != string(sb) {
				t.Error("Merge changed an input")
			}
			if m.ID != c.fast.ID || m.Window != c.fast.Window || m.Source.Model != c.fast.Source.Model {
				t.Error("identity or provenance not the fast tree's")
			}
		})
	}
}

// The real fast tier (engine.FastAnalyzer on ONNX Runtime, as internal/parts
// loads it) under Tiered with the slow stand-in: trees validate and carry
// the VLM levels once they land; Forget reaches the FastAnalyzer.
func TestTieredWithRealFastAnalyzer(t *testing.T) {
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: testenv.ORTLib(t), Providers: []string{"cpu"}, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	m, err := engine.LoadManifest(testenv.Path(t, "models/emotion.manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	head, err := engine.NewEmotionHead(rt, m)
	if err != nil {
		t.Fatal(err)
	}
	fa := engine.NewFastAnalyzer(head, engine.FastConfig{}) // Tiered owns it
	slow := newSlowStandIn(50 * time.Millisecond)
	landed := make(chan struct{}, 8)
	ta := NewTiered(context.Background(), fa, slow, TieredConfig{OnSlowTree: func(*tree.Tree) { landed <- struct{}{} }})

	rng := rand.New(rand.NewPCG(1, 2))
	win := func(seq uint64) window.Window {
		w := mkWindow("cam1", 3, seq, time.Now(), 154, 0.95)
		for i := range w.Samples {
			c := facetrack.Crop{W: 64, H: 64, Pix: make([]byte, 64*64*3)}
			for j := range c.Pix {
				c.Pix[j] = byte(rng.IntN(256))
			}
			w.Samples[i].Crop = c
		}
		return w
	}
	tr, err := ta.Analyze(context.Background(), win(0))
	if err != nil {
		t.Fatal(err)
	}
	validate(t, tr)
	if tr.Source.Engine != "fast-head" {
		t.Errorf("engine %s", tr.Source.Engine)
	}
	select {
	case <-landed:
	case <-time.After(5 * time.Second):
		t.Fatal("no slow tree")
	}
	tr, err = ta.Analyze(context.Background(), win(1))
	if err != nil {
		t.Fatal(err)
	}
	validate(t, tr)
	b, _ := json.Marshal(tr)
	t.Logf("real fast + stand-in VLM: %s", b)
	if tr.Source.Engine != "fast-head+"+standInEngine || tr.Emotion.Label != "happiness" || tr.Expression.Scores == nil {
		t.Errorf("not merged: %s", b)
	}
	if fa.Tracks() != 1 {
		t.Fatalf("fast analyzer holds %d tracks", fa.Tracks())
	}
	ta.Forget("cam1", 3)
	if fa.Tracks() != 0 || ta.Stats().Tracks != 0 {
		t.Errorf("Forget: fast analyzer %d tracks, tiered %d", fa.Tracks(), ta.Stats().Tracks)
	}
	if err := ta.Close(); err != nil {
		t.Fatal(err)
	}
	noGoroutinesLeft(t)
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// batchFastStandIn is fastStandIn with engine.FastAnalyzer's AnalyzeBatch:
// it counts the batched calls, and the windows they carried.
type batchFastStandIn struct {
	*fastStandIn
	mu            sync.Mutex
	batches       []int // windows per AnalyzeBatch call
	singleAnalyze int   // Analyze calls
}

func (b *batchFastStandIn) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	b.mu.Lock()
	b.singleAnalyze++
	b.mu.Unlock()
	return b.fastStandIn.Analyze(ctx, w)
}

func (b *batchFastStandIn) AnalyzeBatch(ctx context.Context, ws []window.Window) ([]*tree.Tree, error) {
	b.mu.Lock()
	b.batches = append(b.batches, len(ws))
	b.mu.Unlock()
	out := make([]*tree.Tree, len(ws))
	for i, w := range ws {
		ft, err := b.fastStandIn.Analyze(ctx, w)
		if err != nil {
			return nil, err
		}
		out[i] = ft
	}
	return out, nil
}

var _ engine.BatchAnalyzer = (*batchFastStandIn)(nil)

// Tiered.AnalyzeBatch runs a batching fast analyzer once over all the
// windows, then schedules and merges each: the trees come back in the
// windows' order, the track with a landed slow tree merged, every window
// offered to the slow tier. A fast analyzer without AnalyzeBatch is run
// window by window, with the same trees.
func TestTieredAnalyzeBatch(t *testing.T) {
	for _, batching := range []bool{true, false} {
		t.Run(map[bool]string{true: "batching fast", false: "plain fast"}[batching], func(t *testing.T) {
			base := newFastStandIn()
			bf := &batchFastStandIn{fastStandIn: base}
			var fast engine.Analyzer = base
			if batching {
				fast = bf
			}
			// The slow tier runs track 1's first window only: the batch's
			// windows wait at the gate, so no slow tree lands in between.
			slow := newSlowStandIn(0)
			slow.gate = make(chan struct{}, 1)
			slow.gate <- struct{}{}
			landed := make(chan *tree.Tree, 8)
			ta := NewTiered(context.Background(), fast, slow, TieredConfig{OnSlowTree: func(st *tree.Tree) { landed <- st }})
			defer ta.Close()
			ctx := context.Background()
			now := time.Now()

			// Track 1's slow tree lands first.
			if _, err := ta.Analyze(ctx, mkWindow("cam1", 1, 0, now, 160, 0.9)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-landed:
			case <-time.After(5 * time.Second):
				t.Fatal("no slow tree")
			}

			ws := []window.Window{
				mkWindow("cam1", 2, 0, now.Add(time.Second), 160, 0.9),
				mkWindow("cam1", 1, 1, now.Add(time.Second), 160, 0.9),
				mkWindow("cam1", 3, 0, now.Add(time.Second), 160, 0.9),
			}
			bf.mu.Lock()
			bf.batches, bf.singleAnalyze = nil, 0
			bf.mu.Unlock()
			trees, err := ta.AnalyzeBatch(ctx, ws)
			if err != nil {
				t.Fatal(err)
			}
			if batching {
				bf.mu.Lock()
				batches, single := bf.batches, bf.singleAnalyze
				bf.mu.Unlock()
				if !reflect.DeepEqual(batches, []int{3}) || single != 0 {
					t.Errorf("fast analyzer: batches %v, single Analyze calls %d; want one batch of 3 and none", batches, single)
				}
			}
			if len(trees) != len(ws) {
				t.Fatalf("%d trees for %d windows", len(trees), len(ws))
			}
			for i, tr := range trees {
				w := ws[i]
				if want := tree.MakeID(w.Camera, w.TrackID, w.Seq); tr.ID != want {
					t.Errorf("tree %d: id %s, want %s (window order)", i, tr.ID, want)
				}
				validate(t, tr)
				merged := tr.Source.Engine == "fast-head+"+standInEngine
				if merged != (w.TrackID == 1) {
					t.Errorf("tree %d (track %d): engine %s", i, w.TrackID, tr.Source.Engine)
				}
			}
			if merged := trees[1]; merged.Emotion == nil || merged.Emotion.Label != "happiness" {
				t.Errorf("track 1 not merged: %+v", merged.Emotion)
			}
			st := ta.Stats()
			if st.Trees != 4 || st.Merged != 1 || st.Scheduler.Submitted != 4 {
				t.Errorf("stats: trees %d merged %d submitted %d, want 4 1 4", st.Trees, st.Merged, st.Scheduler.Submitted)
			}
		})
	}
}

// Tiered keeps the optional features the pipeline and the bench look for,
// found as they find them: by assertion on an engine.Analyzer.
func TestTieredOptionalInterfaces(t *testing.T) {
	var (
		_ engine.BatchAnalyzer  = (*Tiered)(nil)
		_ engine.TrackForgetter = (*Tiered)(nil)
		_ engine.StageCoster    = (*Tiered)(nil)
	)
	fast, slow := newFastStandIn(), newSlowStandIn(0)
	var a engine.Analyzer = NewTiered(context.Background(), fast, slow, TieredConfig{})
	defer a.Close()
	if _, ok := a.(engine.BatchAnalyzer); !ok {
		t.Error("Tiered is not an engine.BatchAnalyzer: the pipeline would not batch across tracks")
	}
	f, ok := a.(engine.TrackForgetter)
	if !ok {
		t.Fatal("Tiered is not an engine.TrackForgetter: the pipeline would never drop per-track state")
	}
	if sc, ok := a.(engine.StageCoster); !ok {
		t.Error("Tiered is not an engine.StageCoster: the bench would lose the fast heads' costs")
	} else if c := sc.StageCosts(); c != nil {
		t.Errorf("stage costs of a fast analyzer that keeps none: %v", c)
	}
	if _, err := a.Analyze(context.Background(), mkWindow("cam1", 7, 0, time.Now(), 160, 0.9)); err != nil {
		t.Fatal(err)
	}
	f.Forget("cam1", 7)
	fast.mu.Lock()
	forgotten := fast.forgotten
	fast.mu.Unlock()
	if !slices.Contains(forgotten, TrackKey{"cam1", 7}) {
		t.Errorf("Forget did not reach the fast analyzer: %v", forgotten)
	}
}
