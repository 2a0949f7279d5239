package webrtc

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pion "github.com/pion/webrtc/v4"
)

// Data channel labels. The browser creates them before its offer.
const (
	// TreesLabel carries every tree, one JSON object per message, in order.
	TreesLabel = "trees"
	// EventsLabel (optional) carries track and camera-status envelopes.
	EventsLabel = "events"
)

type msgKind uint8

const (
	kindTree msgKind = iota
	kindEvent
)

type message struct {
	kind msgKind
	text string
}

// queue is a bounded FIFO that drops its oldest message when full.
type queue struct {
	mu      sync.Mutex
	buf     []message // ring
	head, n int
	wake    chan struct{} // 1-buffered: something was pushed
}

func newQueue(size int) *queue {
	return &queue{buf: make([]message, size), wake: make(chan struct{}, 1)}
}

// push appends m and reports whether the oldest message was dropped for it.
func (q *queue) push(m message) (dropped bool) {
	q.mu.Lock()
	if q.n == len(q.buf) {
		q.buf[q.head] = message{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		dropped = true
	}
	q.buf[(q.head+q.n)%len(q.buf)] = m
	q.n++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return dropped
}

func (q *queue) pop() (message, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return message{}, false
	}
	m := q.buf[q.head]
	q.buf[q.head] = message{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return m, true
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// viewer is one browser (or any WebRTC peer): its peer connection, its
// camera filter, its own queue and its one sender goroutine.
type viewer struct {
	id      string
	cameras []string // empty: all
	since   time.Time
	pc      *pion.PeerConnection
	q       *queue
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelCauseFunc

	mu     sync.Mutex
	trees  *pion.DataChannel // set when open
	events *pion.DataChannel // set when open; optional
	opened chan struct{}     // closed when trees opens
	low    chan struct{}     // 1-buffered: OnBufferedAmountLow fired

	sent, dropped atomic.Uint64
}

func (v *viewer) wants(camera string) bool {
	return len(v.cameras) == 0 || slices.Contains(v.cameras, camera)
}

// onDataChannel adopts the browser's "trees" and "events" channels.
func (v *viewer) onDataChannel(dc *pion.DataChannel, highWater uint64, eventsOpen func()) {
	label := dc.Label()
	if label != TreesLabel && label != EventsLabel {
		v.log.Debug("webrtc: ignoring data channel", "viewer", v.id, "label", label)
		return
	}
	if !dc.Ordered() {
		v.log.Warn("webrtc: data channel is unordered; trees may arrive out of order", "viewer", v.id, "label", label)
	}
	dc.SetBufferedAmountLowThreshold(highWater / 2)
	dc.OnBufferedAmountLow(func() {
		select {
		case v.low <- struct{}{}:
		default:
		}
	})
	dc.OnOpen(func() {
		v.mu.Lock()
		if label == EventsLabel {
			v.events = dc
			v.mu.Unlock()
			eventsOpen()
			return
		}
		if v.trees == nil {
			v.trees = dc
			close(v.opened)
		}
		v.mu.Unlock()
	})
	if label == TreesLabel {
		dc.OnClose(func() { v.cancel(errTreesClosed) })
	}
}

// run sends the viewer's queue until its context ends, then closes the peer
// connection. It is the viewer's only goroutine.
func (v *viewer) run(connectTimeout time.Duration, highWater uint64, s *Sink) {
	defer func() {
		if err := v.pc.Close(); err != nil {
			v.log.Debug("webrtc: close peer connection", "viewer", v.id, "err", err)
		}
		s.remove(v)
	}()
	t := time.NewTimer(connectTimeout)
	select {
	case <-v.opened:
		t.Stop()
	case <-t.C:
		v.cancel(errConnectTimeout)
		return
	case <-v.ctx.Done():
		t.Stop()
		return
	}
	v.log.Info("webrtc: viewer connected", "viewer", v.id, "cameras", v.cameras, "after", time.Since(v.since).Round(time.Millisecond))
	for {
		select {
		case <-v.ctx.Done():
			return
		case <-v.q.wake:
		}
		for {
			m, ok := v.q.pop()
			if !ok {
				break
			}
			v.mu.Lock()
			dc := v.trees
			if m.kind == kindEvent {
				dc = v.events
			}
			v.mu.Unlock()
			if dc == nil { // viewer did not open "events": not wanted, not a drop
				continue
			}
			// Backpressure: never let the SCTP send buffer grow past the
			// high-water mark; while it is full, new messages wait in the
			// queue, which drops its oldest.
			for dc.BufferedAmount() > highWater {
				select {
				case <-v.ctx.Done():
					return
				case <-v.low:
				case <-time.After(250 * time.Millisecond): // re-check: the callback may have fired before we waited
				}
			}
			if err := dc.SendText(m.text); err != nil {
				v.cancel(err)
				return
			}
			v.sent.Add(1)
			s.sent.Add(1)
		}
	}
}
