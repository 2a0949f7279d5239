package mqtt

import (
	"context"
	"encoding/json"
	"time"

	"github.com/edgemo/edgemo/publish"
)

// Track events: the per-track rate limit on updates and the queue shares
// that keep track events from crowding out trees.

// trackMessage is the payload of <prefix>/<camera>/tracks.
type trackMessage struct {
	Type  string             `json:"type"`
	Track publish.TrackEvent `json:"track"`
}

// Track queues ev for <prefix>/<camera>/tracks (in order with the trees) and
// keeps the salient emotion current: the box of a live track counts, an
// ended track no longer does. "update" events are rate-limited per track
// (TrackUpdateInterval): one within the interval of the track's last queued
// event is held back, replaced by a later one (the latest wins), queued when
// the interval has passed, or dropped when a lifecycle event of the track
// comes first (that event carries the newer box). Salience follows every
// event either way.
func (s *Sink) Track(ev publish.TrackEvent) {
	cam := safeName(ev.Camera)
	b, err := json.Marshal(trackMessage{Type: ev.Type, Track: ev})
	if err != nil { // a TrackEvent always marshals; NaN scores are the only way here
		s.log.Warn("MQTT track event not marshalled", "camera", cam, "track", ev.TrackID, "err", err)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.trackLocked(cam, ev)
	it := item{topic: s.topic(cam, "tracks"), payload: b, kind: kindTrack}
	if ev.Type == "update" {
		it.kind = kindUpdate
	}
	if s.cfg.TrackUpdateInterval > 0 && !s.rateLimitLocked(trackKey{cam, ev.TrackID}, ev.Type, it) {
		s.mu.Unlock()
		return
	}
	s.enqueueLocked(it)
	s.mu.Unlock()
	s.notify()
}

// rateLimitLocked applies TrackUpdateInterval; it reports whether it goes
// into the queue now.
func (s *Sink) rateLimitLocked(k trackKey, typ string, it item) bool {
	now := time.Now()
	u := s.upd[k]
	if typ != "update" {
		if u != nil && u.pending != nil {
			s.suppressed.Add(1) // superseded by this lifecycle event
		}
		if typ == "end" {
			delete(s.upd, k)
		} else {
			s.upd[k] = &updState{last: now}
		}
		return true
	}
	if u == nil {
		s.upd[k] = &updState{last: now}
		return true
	}
	if now.Sub(u.last) >= s.cfg.TrackUpdateInterval && u.pending == nil {
		u.last = now
		return true
	}
	if u.pending != nil {
		s.suppressed.Add(1) // the latest wins
	} else {
		select { // a first held-back update: the pump sets its timer
		case s.updKick <- struct{}{}:
		default:
		}
	}
	u.pending = &it
	return false
}

// pumpUpdates queues held-back track updates once their track's interval
// has passed, so the latest position of a track arrives even when its
// updates stop. It sleeps while nothing is held back.
func (s *Sink) pumpUpdates(ctx context.Context) {
	defer close(s.pumpDone)
	for {
		s.mu.Lock()
		next := s.duePendingLocked(time.Now())
		s.mu.Unlock()
		var timer <-chan time.Time
		var t *time.Timer
		if !next.IsZero() {
			t = time.NewTimer(time.Until(next))
			timer = t.C
		}
		select {
		case <-ctx.Done():
		case <-s.updKick:
		case <-timer:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// duePendingLocked queues the held-back updates that are due and returns
// when the next one is (zero: none held back).
func (s *Sink) duePendingLocked(now time.Time) time.Time {
	var next time.Time
	queued := false
	for _, u := range s.upd {
		if u.pending == nil {
			continue
		}
		due := u.last.Add(s.cfg.TrackUpdateInterval)
		if !due.After(now) {
			if !s.closed {
				s.enqueueLocked(*u.pending)
				queued = true
			}
			u.pending, u.last = nil, now
			continue
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	if queued {
		s.notify()
	}
	return next
}

func (s *Sink) notify() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// enqueueLocked appends it, dropping the oldest when the queue is full.
func (s *Sink) enqueueLocked(it item) {
	s.q.pushBack(it)
	s.trimLocked()
}

// trackShare is the most track events the queue holds.
func (s *Sink) trackShare() int { return max(1, s.cfg.QueueSize/TrackShareDivisor) }

// trimLocked enforces the queue's shares and counts what it drops: track
// events beyond their share go, oldest updates first; beyond QueueSize the
// oldest track update goes, else the oldest other track event, and only a
// queue of nothing but trees drops its oldest tree. Trees stay in order.
func (s *Sink) trimLocked() {
	trees, tracks := 0, 0
	evictTrack := func() bool {
		if s.q.removeOldest(kindUpdate) || s.q.removeOldest(kindTrack) {
			tracks++
			return true
		}
		return false
	}
	for s.q.count(kindUpdate)+s.q.count(kindTrack) > s.trackShare() && evictTrack() {
	}
	for s.q.len() > s.cfg.QueueSize {
		if !evictTrack() {
			s.q.removeOldest(kindTree)
			trees++
		}
	}
	if trees+tracks == 0 {
		return
	}
	s.treesDropped.Add(uint64(trees))
	s.tracksDropped.Add(uint64(tracks))
	total := s.dropped.Add(uint64(trees + tracks))
	if now := time.Now(); now.Sub(s.lastDropLog) >= dropLogEvery {
		s.lastDropLog = now
		msg := "MQTT queue: track events over their share dropped, oldest updates first (trees are kept; raise mqtt.queue_size for more, or bring the broker back)"
		if s.treesDropped.Load() > 0 {
			msg = "MQTT queue full of trees: dropping the oldest trees (raise mqtt.queue_size, or bring the broker back)"
		}
		s.log.Warn(msg, "queue_size", s.cfg.QueueSize, "track_share", s.trackShare(), "dropped_total", total,
			"trees_dropped_total", s.treesDropped.Load(), "connected", s.connected.Load())
	}
}

func (s *Sink) discardQueue() int {
	s.mu.Lock()
	trees := s.q.count(kindTree)
	n := s.q.clear()
	s.mu.Unlock()
	s.treesDropped.Add(uint64(trees))
	s.tracksDropped.Add(uint64(n - trees))
	s.dropped.Add(uint64(n))
	return n
}
