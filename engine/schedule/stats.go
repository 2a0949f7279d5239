package schedule

import (
	"math"
	"time"

	"github.com/edgemo/edgemo/engine/ring"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/window"
)

// Result is one finished run of the slow analyzer.
type Result struct {
	Key      WindowKey
	Window   window.Window
	Salience float64
	Tree     *tree.Tree // nil when Err is set
	Err      error
	Wait     time.Duration // submitted → started
	Run      time.Duration // the runner's Analyze call
}

// Stats are the scheduler's counters. Every submitted window is in exactly
// one of: Superseded, Stale, Overflow, Forgotten, Closed, Completed, Errors,
// Cancelled, InFlight, QueueLen — so Submitted is their sum.
type Stats struct {
	Submitted uint64 // Submit calls
	// Dropped before running:
	Superseded uint64 // replaced by a newer window of the same track
	Stale      uint64 // past their deadline at submission or when they would start
	Overflow   uint64 // lowest priority when the queue was full
	Forgotten  uint64 // queued when their track ended (Forget)
	Closed     uint64 // queued at Close, or submitted after it
	// Ran:
	Completed uint64 // a tree came back
	Errors    uint64 // the runner failed
	Cancelled uint64 // cut short by Close or the context
	// Now:
	InFlight int // running (including delivery of the result)
	QueueLen int // waiting
	Tracks   int // tracks with state (queued, running, or served before)
	// Latencies of completed runs.
	Run  Latency // the runner's Analyze call
	Wait Latency // submitted → started
}

// Latency summarises durations: count, mean and max over all, and p50/p95
// over the most recent 1024.
type Latency struct {
	Count          uint64
	Mean, P50, P95 time.Duration
	Max            time.Duration
}

type latencyRing struct {
	sum  time.Duration
	max  time.Duration
	last *ring.Ring[time.Duration] // the most recent 1024; nil until the first add
}

func (l *latencyRing) add(d time.Duration) {
	if l.last == nil {
		l.last = ring.New[time.Duration](1024)
	}
	l.last.Add(d)
	l.sum += d
	l.max = max(l.max, d)
}

func (l *latencyRing) summary() Latency {
	if l.last == nil {
		return Latency{}
	}
	n, v := l.last.Count(), l.last.Sorted()
	q := func(p float64) time.Duration { return v[int(math.Ceil(p*float64(len(v))))-1] }
	return Latency{Count: n, Mean: l.sum / time.Duration(n), P50: q(0.5), P95: q(0.95), Max: l.max}
}
