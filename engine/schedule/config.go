package schedule

import "time"

// Config tunes a Scheduler. Zero values take the defaults.
type Config struct {
	// Workers: how many windows run at once (default 1: one GPU, one
	// runner). Never more than one per track.
	Workers int
	// MaxQueue bounds the windows waiting in total, over all tracks
	// (default 64). When full, the lowest-priority window is dropped
	// (Stats.Overflow), which may be the one being submitted.
	MaxQueue int
	// MaxAge: a window's deadline is its End + MaxAge; a window that has
	// not started by then is dropped (Stats.Stale). Default 5 s. Negative:
	// no deadline (offline analysis, where window times are media times
	// and not the wall clock).
	MaxAge time.Duration
	// SalienceGain: a window's priority is its track's staleness times
	// (1 + SalienceGain × salience), salience in [0, 1]. Default 2, so
	// the most salient face is weighted 3× the least salient: it is served
	// up to 3× as often, and the least salient is never starved. Negative:
	// salience is ignored.
	SalienceGain float64
	// NewTrackBoost is added to the staleness of a track that has never
	// had its turn, so new tracks go first (default 30 s). It is finite so
	// that a stream of new tracks cannot starve the served ones: a served
	// track whose weighted staleness exceeds a new track's weighted boost
	// goes first.
	NewTrackBoost time.Duration
	// OnResult receives every run that finished (tree or error), from the
	// worker goroutine that ran it, before that worker takes the next
	// window. With several workers calls may be concurrent. Runs cut short
	// by Close or the context are counted (Stats.Cancelled) but not
	// delivered. Keep it short: the GPU waits for it.
	OnResult func(Result)
}

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = 1
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 64
	}
	if c.MaxAge == 0 {
		c.MaxAge = 5 * time.Second
	}
	if c.SalienceGain == 0 {
		c.SalienceGain = 2
	}
	if c.SalienceGain < 0 {
		c.SalienceGain = 0
	}
	if c.NewTrackBoost <= 0 {
		c.NewTrackBoost = 30 * time.Second
	}
	return c
}
