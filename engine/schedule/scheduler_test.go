package schedule

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgemo/edgemo/window"
)

// Six tracks over two cameras submit a window every 5 ms to one slow
// stand-in that takes 20 ms per window (6 × 20 ms of work asked every 5 ms:
// ~24× more than it can do). Every track must be served again and again
// within a bound, the queue must stay within MaxQueue, the more salient
// faces must be served more often, and every window must be accounted for.
// Once with a queue smaller than the number of tracks (overflow drops), once
// with room for all.
func TestNoStarvationSixTracksTwoCameras(t *testing.T) {
	for _, maxQueue := range []int{4, 64} {
		t.Run(fmt.Sprintf("MaxQueue=%d", maxQueue), func(t *testing.T) { noStarvation(t, maxQueue) })
	}
}

func noStarvation(t *testing.T, maxQueue int) {
	const (
		run      = 20 * time.Millisecond
		every    = 5 * time.Millisecond
		duration = 2 * time.Second
		gain     = 2.0
	)
	type track struct {
		cam      string
		id       int
		salience float64
	}
	tracks := []track{
		{"cam1", 1, 0}, {"cam1", 2, 0.2}, {"cam1", 3, 0.4},
		{"cam2", 1, 0.6}, {"cam2", 2, 0.8}, {"cam2", 3, 1},
	}
	slow := newSlowStandIn(run)
	var (
		mu     sync.Mutex
		served = map[TrackKey][]time.Time{}
	)
	var sched *Scheduler
	var queueViolations atomic.Int64
	slow.onCall = func(_ window.Window) {
		if q := sched.Stats().QueueLen; q > maxQueue {
			queueViolations.Add(1)
		}
	}
	start := time.Now()
	sched = New(context.Background(), slow, Config{
		MaxQueue: maxQueue, MaxAge: 2 * time.Second, SalienceGain: gain,
		OnResult: func(r Result) {
			if r.Err != nil {
				t.Errorf("result %v: %v", r.Key, r.Err)
				return
			}
			validate(t, r.Tree)
			mu.Lock()
			served[r.Key.Track()] = append(served[r.Key.Track()], time.Now())
			mu.Unlock()
		},
	})

	var wg sync.WaitGroup
	var rejected atomic.Int64
	for _, tr := range tracks {
		wg.Go(func() {
			tk := time.NewTicker(every)
			defer tk.Stop()
			for seq := uint64(0); time.Since(start) < duration; seq++ {
				if !sched.Submit(mkWindow(tr.cam, tr.id, seq, time.Now(), 154, 1), tr.salience) {
					rejected.Add(1)
				}
				if q := sched.Stats().QueueLen; q > maxQueue {
					queueViolations.Add(1)
				}
				<-tk.C
			}
		})
	}
	wg.Wait()
	end := time.Now()
	st := sched.Stats()
	if err := sched.Close(); err != nil {
		t.Fatal(err)
	}
	noGoroutinesLeft(t)

	// Bound: in steady state track i is served every R·Σw/w_i (priorities
	// equalise); with weights 1 + gain·salience the worst case is
	// R·N·(1+gain) = 360 ms. Allow 4× that for a shared 2-core machine.
	bound := 4 * time.Duration(float64(run)*float64(len(tracks))*(1+gain))
	mu.Lock()
	defer mu.Unlock()
	counts := map[TrackKey]int{}
	for _, tr := range tracks {
		k := TrackKey{tr.cam, tr.id}
		times := served[k]
		counts[k] = len(times)
		if len(times) < 3 {
			t.Errorf("track %v served %d times in %v: starved", k, len(times), duration)
			continue
		}
		gap := times[0].Sub(start)
		for i := 1; i < len(times); i++ {
			gap = max(gap, times[i].Sub(times[i-1]))
		}
		gap = max(gap, end.Sub(times[len(times)-1]))
		t.Logf("track %v salience %.1f: served %d times, longest wait for a result %v", k, tr.salience, len(times), gap.Round(time.Millisecond))
		if gap > bound {
			t.Errorf("track %v waited %v for a result, bound %v", k, gap, bound)
		}
	}
	if lo, hi := counts[TrackKey{"cam1", 1}], counts[TrackKey{"cam2", 3}]; hi <= lo {
		t.Errorf("salience 1 served %d times, salience 0 %d times: salience ignored", hi, lo)
	}
	if n := queueViolations.Load(); n > 0 {
		t.Errorf("queue exceeded %d %d times", maxQueue, n)
	}
	if per, tot := slow.maxes(); per != 1 || tot != 1 {
		t.Errorf("in flight: max %d per track, %d in total; want 1, 1", per, tot)
	}
	if st.Superseded == 0 || (st.Overflow == 0) != (maxQueue >= len(tracks)) {
		t.Errorf("superseded %d, overflow %d with a queue of %d for %d tracks", st.Superseded, st.Overflow, maxQueue, len(tracks))
	}
	if st.Stale != 0 || st.Errors != 0 {
		t.Errorf("stale %d, errors %d; want 0", st.Stale, st.Errors)
	}
	if uint64(rejected.Load()) > st.Overflow {
		t.Errorf("%d submits rejected, only %d overflows", rejected.Load(), st.Overflow)
	}
	checkAccounting(t, st)
	t.Logf("stats: submitted %d, superseded %d, overflow %d, stale %d, completed %d, run p50 %v p95 %v, wait p50 %v p95 %v max %v",
		st.Submitted, st.Superseded, st.Overflow, st.Stale, st.Completed, st.Run.P50, st.Run.P95, st.Wait.P50, st.Wait.P95, st.Wait.Max)
}

// With three workers and six busy tracks, the stand-in must see three runs
// at once but never two of the same track.
func TestAtMostOneInFlightPerTrack(t *testing.T) {
	slow := newSlowStandIn(10 * time.Millisecond)
	var done atomic.Int64
	sched := New(context.Background(), slow, Config{Workers: 3, MaxQueue: 8, OnResult: func(Result) { done.Add(1) }})
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			for seq := uint64(0); time.Since(start) < time.Second; seq++ {
				sched.Submit(mkWindow([]string{"a", "b"}[i%2], i, seq, time.Now(), 100, 0.9), float64(i)/5)
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := sched.Stats()
	sched.Close()
	noGoroutinesLeft(t)
	per, tot := slow.maxes()
	t.Logf("completed %d, max in flight per track %d, in total %d", done.Load(), per, tot)
	if per != 1 {
		t.Errorf("max in flight per track %d, want 1", per)
	}
	if tot != 3 {
		t.Errorf("max in flight in total %d, want 3 (the workers)", tot)
	}
	if st.InFlight != 0 || st.QueueLen != 0 || st.Completed != uint64(done.Load()) {
		t.Errorf("after Drain: %+v, %d delivered", st, done.Load())
	}
	checkAccounting(t, st)
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// A newer window of a track replaces its queued one; the track's newest
// window is the one that runs.
func TestSupersede(t *testing.T) {
	slow := newSlowStandIn(0)
	slow.gate = make(chan struct{})
	sched := New(context.Background(), slow, Config{})
	defer sched.Close()
	now := time.Now()
	sched.Submit(mkWindow("c", 1, 0, now, 100, 1), 0.5)
	slow.waitStarted(t, WindowKey{"c", 1, 0})
	for seq := uint64(1); seq <= 3; seq++ {
		if !sched.Submit(mkWindow("c", 1, seq, now, 100, 1), 0.5) {
			t.Fatalf("window %d rejected", seq)
		}
	}
	if st := sched.Stats(); st.Superseded != 2 || st.QueueLen != 1 || st.InFlight != 1 {
		t.Fatalf("superseded %d, queue %d, in flight %d; want 2, 1, 1", st.Superseded, st.QueueLen, st.InFlight)
	}
	close(slow.gate)
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []WindowKey{{"c", 1, 0}, {"c", 1, 3}}
	if got := slow.startOrder(); !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
	checkAccounting(t, sched.Stats())
}

// When the runner stalls past MaxAge, the windows waiting behind it are
// dropped as stale instead of being run late; a window already past its
// deadline is refused at once.
func TestStaleDroppedWhenRunnerStalls(t *testing.T) {
	const maxAge = 100 * time.Millisecond
	slow := newSlowStandIn(0)
	slow.gate = make(chan struct{})
	var results []WindowKey
	var mu sync.Mutex
	sched := New(context.Background(), slow, Config{MaxAge: maxAge, OnResult: func(r Result) {
		mu.Lock()
		results = append(results, r.Key)
		mu.Unlock()
	}})
	defer sched.Close()

	sched.Submit(mkWindow("c", 0, 0, time.Now(), 100, 1), 1)
	slow.waitStarted(t, WindowKey{"c", 0, 0}) // the runner now stalls on the gate
	for id := 1; id <= 3; id++ {
		// ended 80 ms ago: 20 ms left before the deadline
		if !sched.Submit(mkWindow("c", id, 0, time.Now().Add(-80*time.Millisecond), 100, 1), 1) {
			t.Fatalf("track %d refused while fresh", id)
		}
	}
	if sched.Submit(mkWindow("c", 9, 0, time.Now().Add(-maxAge-time.Millisecond), 100, 1), 1) {
		t.Error("a window past its deadline was accepted")
	}
	eventually(t, "4 stale windows", func() bool { return sched.Stats().Stale == 4 })
	close(slow.gate) // the runner comes back
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := sched.Stats()
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(results, []WindowKey{{"c", 0, 0}}) || st.Stale != 4 || st.Completed != 1 {
		t.Errorf("results %v, stale %d, completed %d; want only c-0-0, 4 stale, 1 completed", results, st.Stale, st.Completed)
	}
	if got := slow.startOrder(); len(got) != 1 {
		t.Errorf("stale windows ran: %v", got)
	}
	checkAccounting(t, st)

	// Stale windows are also dropped at the moment they would start:
	// a window queued behind a stalled run expires while queued and the
	// worker drops it when it is free (Stats is not asked meanwhile).
	slow2 := newSlowStandIn(0)
	slow2.gate = make(chan struct{})
	s2 := New(context.Background(), slow2, Config{MaxAge: maxAge})
	defer s2.Close()
	s2.Submit(mkWindow("d", 0, 0, time.Now(), 100, 1), 1)
	slow2.waitStarted(t, WindowKey{"d", 0, 0})
	s2.Submit(mkWindow("d", 1, 0, time.Now().Add(-maxAge+30*time.Millisecond), 100, 1), 1)
	time.Sleep(60 * time.Millisecond) // let the queued window pass its deadline (not an assertion)
	close(slow2.gate)
	if err := s2.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if st := s2.Stats(); st.Stale != 1 || len(slow2.startOrder()) != 1 {
		t.Errorf("stale %d, ran %v; want 1 stale and only d-0-0 run", st.Stale, slow2.startOrder())
	}
}

// A track never served jumps ahead of a recently served one, even one that
// is more salient and was queued first.
func TestPriorityNeverServedFirst(t *testing.T) {
	slow := newSlowStandIn(0)
	slow.gate = make(chan struct{})
	sched := New(context.Background(), slow, Config{})
	defer sched.Close()

	sched.Submit(mkWindow("c", 1, 0, time.Now(), 154, 1), 1) // A is served once
	slow.waitStarted(t, WindowKey{"c", 1, 0})
	slow.gate <- struct{}{}
	eventually(t, "A served", func() bool { return sched.Stats().Completed == 1 })

	sched.Submit(mkWindow("c", 9, 0, time.Now(), 154, 1), 1) // Z occupies the runner
	slow.waitStarted(t, WindowKey{"c", 9, 0})
	sched.Submit(mkWindow("c", 1, 1, time.Now(), 154, 1), 1)  // A again, most salient, first in line
	sched.Submit(mkWindow("c", 2, 0, time.Now(), 20, 0.3), 0) // C: never served, least salient
	close(slow.gate)
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []WindowKey{{"c", 1, 0}, {"c", 9, 0}, {"c", 2, 0}, {"c", 1, 1}}
	if got := slow.startOrder(); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

// With (about) equal staleness the more salient face goes first: for two
// new tracks, and for two tracks served one run apart.
func TestPrioritySalienceOnEqualStaleness(t *testing.T) {
	slow := newSlowStandIn(0)
	slow.gate = make(chan struct{})
	sched := New(context.Background(), slow, Config{})
	defer sched.Close()

	sched.Submit(mkWindow("c", 9, 0, time.Now(), 154, 1), 1) // Z occupies the runner
	slow.waitStarted(t, WindowKey{"c", 9, 0})
	sched.Submit(mkWindow("c", 1, 0, time.Now(), 50, 0.5), 0.1) // L first in line
	sched.Submit(mkWindow("c", 2, 0, time.Now(), 154, 1), 0.9)  // H
	for range 3 {
		slow.gate <- struct{}{}
	}
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	// Now serve L, then H, so that L is the staler by one run; after
	// 50 ms both are about equally stale and H must go first.
	sched.Submit(mkWindow("c", 1, 1, time.Now(), 50, 0.5), 0.1)
	slow.gate <- struct{}{}
	eventually(t, "L served", func() bool { return sched.Stats().Completed == 4 })
	sched.Submit(mkWindow("c", 2, 1, time.Now(), 154, 1), 0.9)
	slow.gate <- struct{}{}
	eventually(t, "H served", func() bool { return sched.Stats().Completed == 5 })
	time.Sleep(50 * time.Millisecond) // staleness grows (not an assertion)
	sched.Submit(mkWindow("c", 9, 1, time.Now(), 154, 1), 1)
	eventually(t, "Z running", func() bool { return sched.Stats().InFlight == 1 })
	sched.Submit(mkWindow("c", 1, 2, time.Now(), 50, 0.5), 0.1) // L: staler, first in line
	sched.Submit(mkWindow("c", 2, 2, time.Now(), 154, 1), 0.9)
	close(slow.gate)
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []WindowKey{{"c", 9, 0}, {"c", 2, 0}, {"c", 1, 0}, {"c", 1, 1}, {"c", 2, 1}, {"c", 9, 1}, {"c", 2, 2}, {"c", 1, 2}}
	if got := slow.startOrder(); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

// A full queue drops its lowest-priority window, which may be the one
// being submitted.
func TestOverflowDropsLowestPriority(t *testing.T) {
	slow := newSlowStandIn(0)
	slow.gate = make(chan struct{})
	sched := New(context.Background(), slow, Config{MaxQueue: 2})
	defer sched.Close()

	sched.Submit(mkWindow("c", 9, 0, time.Now(), 154, 1), 1) // occupies the runner
	slow.waitStarted(t, WindowKey{"c", 9, 0})
	now := time.Now()
	for _, c := range []struct {
		id   int
		sal  float64
		want bool
	}{{1, 0, true}, {2, 1, true}, {3, 0.5, true}, {4, 0, false}} {
		if got := sched.Submit(mkWindow("c", c.id, 0, now, 100, 1), c.sal); got != c.want {
			t.Errorf("submit track %d: accepted %v, want %v", c.id, got, c.want)
		}
		if q := sched.Stats().QueueLen; q > 2 {
			t.Fatalf("queue %d > 2", q)
		}
	}
	if st := sched.Stats(); st.Overflow != 2 || st.QueueLen != 2 {
		t.Errorf("overflow %d, queue %d; want 2, 2", st.Overflow, st.QueueLen)
	}
	close(slow.gate)
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	want := []WindowKey{{"c", 9, 0}, {"c", 2, 0}, {"c", 3, 0}}
	if got := slow.startOrder(); !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	checkAccounting(t, sched.Stats())
}

// Close with a run in flight (a runner that would stall for a minute)
// returns promptly, drops the queue, delivers nothing cut short, and
// leaves no goroutine.
func TestCloseWithInFlight(t *testing.T) {
	slow := newSlowStandIn(time.Minute)
	var delivered atomic.Int64
	sched := New(context.Background(), slow, Config{Workers: 2, OnResult: func(Result) { delivered.Add(1) }})
	for id := range 5 {
		sched.Submit(mkWindow("c", id, 0, time.Now(), 100, 1), 0.5)
	}
	eventually(t, "two runs in flight", func() bool { return sched.Stats().InFlight == 2 })
	t0 := time.Now()
	if err := sched.Close(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(t0)
	t.Logf("Close took %v with 2 runs in flight", took)
	if took > time.Second {
		t.Errorf("Close took %v", took)
	}
	noGoroutinesLeft(t)
	st := sched.Stats()
	if st.Cancelled != 2 || st.Closed != 3 || st.InFlight != 0 || st.QueueLen != 0 || delivered.Load() != 0 {
		t.Errorf("after Close: %+v, delivered %d; want 2 cancelled, 3 closed, nothing delivered", st, delivered.Load())
	}
	if sched.Submit(mkWindow("c", 0, 1, time.Now(), 100, 1), 1) {
		t.Error("Submit after Close accepted")
	}
	if err := sched.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	checkAccounting(t, sched.Stats())
}

// The scheduler's lifetime follows its context: cancelling it stops the
// workers (and the run in flight) without Close.
func TestContextEndsScheduler(t *testing.T) {
	slow := newSlowStandIn(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	sched := New(ctx, slow, Config{})
	sched.Submit(mkWindow("c", 1, 0, time.Now(), 100, 1), 0.5)
	sched.Submit(mkWindow("c", 2, 0, time.Now(), 100, 1), 0.5)
	slow.waitStarted(t, WindowKey{"c", 1, 0})
	cancel()
	noGoroutinesLeft(t)
	if st := sched.Stats(); st.Cancelled != 1 || st.Closed != 1 {
		t.Errorf("cancelled %d, closed %d; want 1, 1", st.Cancelled, st.Closed)
	}
	sched.Close()
	checkAccounting(t, sched.Stats())
}

// A failing run is delivered with its error and counted, and it counts as
// the track's turn: the failing track does not monopolise the runner.
func TestRunnerErrors(t *testing.T) {
	slow := newSlowStandIn(2 * time.Millisecond)
	slow.failTrack = 1
	var errs, oks atomic.Int64
	sched := New(context.Background(), slow, Config{OnResult: func(r Result) {
		if r.Err != nil {
			errs.Add(1)
		} else {
			oks.Add(1)
		}
	}})
	defer sched.Close()
	start := time.Now()
	for seq := uint64(0); time.Since(start) < 300*time.Millisecond; seq++ {
		sched.Submit(mkWindow("c", 1, seq, time.Now(), 154, 1), 1) // failing, most salient
		sched.Submit(mkWindow("c", 2, seq, time.Now(), 50, 1), 0)
		time.Sleep(time.Millisecond)
	}
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := sched.Stats()
	t.Logf("errors %d, completed %d", st.Errors, st.Completed)
	if st.Errors == 0 || st.Errors != uint64(errs.Load()) || st.Completed != uint64(oks.Load()) {
		t.Errorf("errors %d (delivered %d), completed %d (delivered %d)", st.Errors, errs.Load(), st.Completed, oks.Load())
	}
	if st.Completed*4 < st.Errors { // weights 3:1 at most
		t.Errorf("healthy track served %d times vs %d failing runs: monopolised", st.Completed, st.Errors)
	}
	checkAccounting(t, st)
}

// Forget drops the queued window and the track's state; a run in flight
// still ends and is delivered; nothing of the track is left.
func TestForget(t *testing.T) {
	slow := newSlowStandIn(0)
	slow.gate = make(chan struct{})
	var got []WindowKey
	var mu sync.Mutex
	sched := New(context.Background(), slow, Config{OnResult: func(r Result) {
		mu.Lock()
		got = append(got, r.Key)
		mu.Unlock()
	}})
	defer sched.Close()
	sched.Submit(mkWindow("c", 1, 0, time.Now(), 100, 1), 1)
	slow.waitStarted(t, WindowKey{"c", 1, 0})
	sched.Submit(mkWindow("c", 1, 1, time.Now(), 100, 1), 1)
	sched.Submit(mkWindow("c", 2, 0, time.Now(), 100, 1), 1)
	sched.Forget("c", 1)
	sched.Forget("c", 2)
	sched.Forget("c", 3) // unknown: no-op
	if sched.Known("c", 1) || sched.Known("c", 2) {
		t.Error("forgotten tracks still known")
	}
	close(slow.gate)
	if err := sched.Drain(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	st := sched.Stats()
	mu.Lock()
	defer mu.Unlock()
	if st.Forgotten != 2 || st.Tracks != 0 || !slices.Equal(got, []WindowKey{{"c", 1, 0}}) {
		t.Errorf("forgotten %d, tracks %d, delivered %v; want 2, 0, [c-1-0]", st.Forgotten, st.Tracks, got)
	}
	checkAccounting(t, st)
}

func TestSalience(t *testing.T) {
	for _, c := range []struct {
		side  float64
		score float32
		want  float64
	}{
		{154, 1, 1}, {300, 1, 1}, {300, 0.5, 0.5}, {77, 1, 0.25}, {77, 0.8, 0.2}, {0, 1, 0},
	} {
		if got := Salience(mkWindow("c", 1, 0, time.Now(), c.side, c.score)); !near(got, c.want) {
			t.Errorf("side %v score %v: salience %v, want %v", c.side, c.score, got, c.want)
		}
	}
	if got := Salience(mkWindow("c", 1, 0, time.Now(), 154, 1)); got != 1 {
		t.Errorf("%v", got)
	}
	if Salience(window.Window{}) != 0 {
		t.Error("empty window has salience")
	}
}

func near(a, b float64) bool { return a-b < 1e-4 && b-a < 1e-4 }
