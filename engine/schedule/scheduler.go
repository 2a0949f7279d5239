// Package schedule shares one slow analyzer (the VidEmo VLM runner, hundreds
// of milliseconds to seconds per window on a GPU) between every track of
// every camera, and merges its latest answer per track into the fast tier's
// live trees (Tiered). Policy, formula, statistics and merge rules:
// README.md in this directory.
package schedule

import (
	"context"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/window"
)

// TrackKey names one track of one camera.
type TrackKey struct {
	Camera  string
	TrackID int
}

// WindowKey names one window of one track (the tree's id without the
// formatting: tree.MakeID(Camera, TrackID, Seq)).
type WindowKey struct {
	Camera  string
	TrackID int
	Seq     uint64
}

// Track is the key of the window's track.
func (k WindowKey) Track() TrackKey { return TrackKey{k.Camera, k.TrackID} }

// KeyOf is the key of w.
func KeyOf(w window.Window) WindowKey { return WindowKey{w.Camera, w.TrackID, w.Seq} }

// job is one queued or running window.
type job struct {
	w        window.Window
	salience float64
	deadline time.Time // zero: none
	enqueued time.Time
}

// trackState is the scheduler's memory of one track.
type trackState struct {
	queued    *job      // at most one waiting
	running   bool      // at most one in flight
	lastTurn  time.Time // when its last run finished; zero: never
	firstAsk  time.Time // first submission of this life of the track
	forgotten bool      // Forget while running: delete when the run ends
}

// Scheduler shares one slow analyzer between all tracks and cameras. Submit
// never blocks; Workers goroutines run the analyzer on the window with the
// highest priority. Safe for concurrent use.
type Scheduler struct {
	runner engine.Analyzer
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stopAfter    func() bool // unregisters shutdown from ctx
	shutdownOnce sync.Once
	shutdownDone chan struct{}

	mu       sync.Mutex
	cond     *sync.Cond
	changed  chan struct{} // closed and replaced on every state change (Drain)
	closed   bool
	tracks   map[TrackKey]*trackState
	queue    []TrackKey // tracks with a queued window, in submission order
	inflight int
	st       Stats // counters only; the rest is computed
	runLat   latencyRing
	waitLat  latencyRing
}

// New starts a scheduler over runner; it runs until ctx is cancelled or
// Close is called. The scheduler does not own runner (it never closes it).
func New(ctx context.Context, runner engine.Analyzer, cfg Config) *Scheduler {
	cfg = cfg.withDefaults()
	s := &Scheduler{
		runner:       runner,
		cfg:          cfg,
		tracks:       map[TrackKey]*trackState{},
		changed:      make(chan struct{}),
		shutdownDone: make(chan struct{}),
	}
	s.cond = sync.NewCond(&s.mu)
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.stopAfter = context.AfterFunc(s.ctx, s.shutdown)
	s.wg.Add(cfg.Workers)
	for range cfg.Workers {
		go s.worker()
	}
	return s
}

// Config is the scheduler's configuration with defaults applied.
func (s *Scheduler) Config() Config { return s.cfg }

// Submit offers w for a slow run, with the face's salience in [0, 1] (see
// Salience). It never blocks. A queued older window of the same track is
// replaced (Superseded). It reports whether w is now queued: false when w
// is already past its deadline, when it was the lowest priority of a full
// queue, or after Close.
func (s *Scheduler) Submit(w window.Window, salience float64) bool {
	now := time.Now()
	j := &job{w: w, salience: clamp01(salience), enqueued: now}
	if s.cfg.MaxAge > 0 {
		j.deadline = w.End.Add(s.cfg.MaxAge)
	}
	k := TrackKey{w.Camera, w.TrackID}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Submitted++
	if s.closed {
		s.st.Closed++
		return false
	}
	if !j.deadline.IsZero() && now.After(j.deadline) {
		s.st.Stale++
		return false
	}
	s.purgeLocked(now)
	ts := s.tracks[k]
	if ts == nil {
		ts = &trackState{firstAsk: now}
		s.tracks[k] = ts
	} else if ts.forgotten { // the track came back while its last run was in flight
		ts.forgotten = false
		ts.firstAsk, ts.lastTurn = now, time.Time{}
	}
	if ts.queued != nil {
		ts.queued = j
		s.st.Superseded++
		s.notifyLocked()
		return true
	}
	if len(s.queue) >= s.cfg.MaxQueue {
		// Drop the lowest priority of the queued windows and this one.
		victim, vp := -1, s.priorityLocked(k, ts, j, now)
		for i, qk := range s.queue {
			qt := s.tracks[qk]
			if p := s.priorityLocked(qk, qt, qt.queued, now); p < vp {
				victim, vp = i, p
			}
		}
		s.st.Overflow++
		if victim < 0 {
			if ts.lastTurn.IsZero() && !ts.running {
				delete(s.tracks, k) // nothing to remember
			}
			return false
		}
		vk := s.queue[victim]
		s.tracks[vk].queued = nil
		s.queue = slices.Delete(s.queue, victim, victim+1)
		s.dropIfIdleLocked(vk)
	}
	ts.queued = j
	s.queue = append(s.queue, k)
	s.notifyLocked()
	return true
}

// Forget drops the track's queued window (Stats.Forgotten) and its history;
// a run in flight finishes and is delivered. Call it when the track ends.
func (s *Scheduler) Forget(camera string, trackID int) {
	k := TrackKey{camera, trackID}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.tracks[k]
	if ts == nil {
		return
	}
	if ts.queued != nil {
		ts.queued = nil
		s.st.Forgotten++
		s.queue = slices.DeleteFunc(s.queue, func(q TrackKey) bool { return q == k })
	}
	if ts.running {
		ts.forgotten = true
	} else {
		delete(s.tracks, k)
	}
	s.notifyLocked()
}

var _ engine.TrackForgetter = (*Scheduler)(nil)

// Known reports whether the scheduler holds live state for the track (it
// has a window queued or running, or was served, and was not forgotten).
func (s *Scheduler) Known(camera string, trackID int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.tracks[TrackKey{camera, trackID}]
	return ts != nil && !ts.forgotten
}

// Stats returns a snapshot of the counters (windows past their deadline
// are counted as stale first).
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.purgeLocked(time.Now())
	}
	st := s.st
	st.InFlight = s.inflight
	st.QueueLen = len(s.queue)
	st.Tracks = len(s.tracks)
	st.Run = s.runLat.summary()
	st.Wait = s.waitLat.summary()
	return st
}

// Drain waits until no window is queued or running, or ctx ends.
func (s *Scheduler) Drain(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle := len(s.queue) == 0 && s.inflight == 0
		ch := s.changed
		s.mu.Unlock()
		if idle {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops the scheduler: queued windows are dropped (Stats.Closed),
// runs in flight see their context cancelled, and Close returns when every
// worker has returned (including delivery of their results). Idempotent.
// The runner is not closed.
func (s *Scheduler) Close() error {
	if s.stopAfter() {
		s.shutdown() // here, rather than in a goroutine of context.AfterFunc
	} else {
		<-s.shutdownDone // the context ended first: shutdown is running or ran
	}
	s.cancel()
	s.wg.Wait()
	return nil
}

// shutdown runs once, when the scheduler's context ends or at Close.
func (s *Scheduler) shutdown() {
	s.shutdownOnce.Do(func() {
		defer close(s.shutdownDone)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.closed = true
		for _, k := range s.queue {
			s.tracks[k].queued = nil
			s.dropIfIdleLocked(k)
			s.st.Closed++
		}
		s.queue = nil
		s.notifyLocked()
	})
}

func (s *Scheduler) worker() {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		var (
			k  TrackKey
			ts *trackState
			j  *job
		)
		for {
			if s.closed || s.ctx.Err() != nil { // shutdown drops the queue
				s.mu.Unlock()
				return
			}
			now := time.Now()
			s.purgeLocked(now)
			if k, j = s.pickLocked(now); j != nil {
				break
			}
			s.cond.Wait()
		}
		ts = s.tracks[k]
		ts.queued, ts.running = nil, true
		s.inflight++
		started := time.Now()
		s.mu.Unlock()

		tr, err := s.runner.Analyze(s.ctx, j.w)
		ran := time.Since(started)
		cancelled := err != nil && s.ctx.Err() != nil
		if err == nil && tr == nil {
			err = errNilTree
		}
		if !cancelled && s.cfg.OnResult != nil {
			s.cfg.OnResult(Result{
				Key: KeyOf(j.w), Window: j.w, Salience: j.salience,
				Tree: tr, Err: err, Wait: started.Sub(j.enqueued), Run: ran,
			})
		}

		s.mu.Lock()
		s.inflight--
		ts.running = false
		switch {
		case cancelled:
			s.st.Cancelled++
		case err != nil:
			s.st.Errors++
		default:
			s.st.Completed++
			s.runLat.add(ran)
			s.waitLat.add(started.Sub(j.enqueued))
		}
		if !cancelled {
			// An error is a turn too: a window the model rejects must not
			// keep its track at the top and monopolise the GPU.
			ts.lastTurn = time.Now()
		}
		if ts.forgotten || cancelled {
			s.dropIfIdleLocked(k)
		}
		s.notifyLocked()
		s.mu.Unlock()
	}
}

type schedError string

func (e schedError) Error() string { return string(e) }

const errNilTree = schedError("schedule: runner returned no tree and no error")

// dropIfIdleLocked deletes the track's state when nothing keeps it:
// forgotten, or never served, with nothing queued or running.
func (s *Scheduler) dropIfIdleLocked(k TrackKey) {
	ts := s.tracks[k]
	if ts == nil || ts.queued != nil || ts.running {
		return
	}
	if ts.forgotten || ts.lastTurn.IsZero() {
		delete(s.tracks, k)
	}
}

// purgeLocked drops queued windows past their deadline.
func (s *Scheduler) purgeLocked(now time.Time) {
	if s.cfg.MaxAge < 0 {
		return
	}
	s.queue = slices.DeleteFunc(s.queue, func(k TrackKey) bool {
		ts := s.tracks[k]
		if now.After(ts.queued.deadline) {
			ts.queued = nil
			s.st.Stale++
			s.dropIfIdleLocked(k)
			return true
		}
		return false
	})
}

// pickLocked removes and returns the highest-priority window whose track
// has nothing in flight; ties go to the earlier submission.
func (s *Scheduler) pickLocked(now time.Time) (TrackKey, *job) {
	best, bp := -1, math.Inf(-1)
	for i, k := range s.queue {
		ts := s.tracks[k]
		if ts.running {
			continue
		}
		p := s.priorityLocked(k, ts, ts.queued, now)
		if best < 0 || p > bp || (p == bp && ts.queued.enqueued.Before(s.tracks[s.queue[best]].queued.enqueued)) {
			best, bp = i, p
		}
	}
	if best < 0 {
		return TrackKey{}, nil
	}
	k := s.queue[best]
	s.queue = slices.Delete(s.queue, best, best+1)
	return k, s.tracks[k].queued
}

// priorityLocked is the policy (README.md):
//
//	priority = staleness × (1 + SalienceGain × salience)
//	staleness = now − last turn of the track, or, for a track never
//	            served, now − its first submission + NewTrackBoost.
func (s *Scheduler) priorityLocked(_ TrackKey, ts *trackState, j *job, now time.Time) float64 {
	var stale time.Duration
	if ts.lastTurn.IsZero() {
		stale = now.Sub(ts.firstAsk) + s.cfg.NewTrackBoost
	} else {
		stale = now.Sub(ts.lastTurn)
	}
	return max(stale.Seconds(), 0) * (1 + s.cfg.SalienceGain*j.salience)
}

func (s *Scheduler) notifyLocked() {
	s.cond.Broadcast()
	close(s.changed)
	s.changed = make(chan struct{})
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return min(max(x, 0), 1)
}
