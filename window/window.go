// Package window keeps, per face track, a ring of aligned crops sampled at a
// target rate and emits sliding windows (length, stride) as immutable values.
// It bounds memory per track and in total and frees a track's crops the
// moment the track ends.
package window

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Config sets sampling, window shape and memory bounds.
type Config struct {
	FPS              float64 // target sample rate (default 4)
	Length           int     // samples per window (default 8: 2 s at 4 fps, a tree per face per second)
	Stride           int     // samples between consecutive window starts (default Length/2)
	MinLength        int     // shortest tail window emitted when a track ends (default Length/2; 0 disables)
	MaxBytesPerTrack int64   // crop bytes per track (default 32 MiB)
	MaxBytesTotal    int64   // crop bytes across tracks (default 512 MiB)
}

// WithDefaults fills zero fields.
func (c Config) WithDefaults() Config {
	if c.FPS == 0 {
		c.FPS = 4
	}
	if c.Length == 0 {
		c.Length = 8
	}
	if c.Stride == 0 {
		c.Stride = max(1, c.Length/2)
	}
	if c.MinLength == 0 {
		c.MinLength = max(1, c.Length/2)
	}
	if c.MaxBytesPerTrack == 0 {
		c.MaxBytesPerTrack = 32 << 20
	}
	if c.MaxBytesTotal == 0 {
		c.MaxBytesTotal = 512 << 20
	}
	return c
}

// Validate reports the first bad field, naming it.
func (c Config) Validate() error {
	switch {
	case c.FPS <= 0 || math.IsNaN(c.FPS) || math.IsInf(c.FPS, 0):
		return fmt.Errorf("window.fps must be > 0, got %v", c.FPS)
	case c.Length < 1:
		return fmt.Errorf("window.length must be >= 1, got %d", c.Length)
	case c.Stride < 1 || c.Stride > c.Length:
		return fmt.Errorf("window.stride must be in [1, length=%d], got %d", c.Length, c.Stride)
	case c.MinLength < 0 || c.MinLength > c.Length:
		return fmt.Errorf("window.min_length must be in [0, length=%d], got %d", c.Length, c.MinLength)
	case c.MaxBytesPerTrack <= 0 || c.MaxBytesTotal < c.MaxBytesPerTrack:
		return errors.New("window memory bounds must satisfy 0 < max_bytes_per_track <= max_bytes_total")
	}
	return nil
}

// Stats counts what the buffers hold and what they refused.
type Stats struct {
	Tracks         int
	Bytes          int64
	Samples        uint64 // samples kept
	Windows        uint64 // windows emitted
	DroppedMemory  uint64 // samples refused or evicted to stay within the bounds
	TracksReleased uint64
}

type track struct {
	ring      []Sample // oldest first, len <= Length
	bytes     int64
	t0        time.Time
	lastSlot  int64
	sinceEmit int // samples added since the last emitted window
	seq       uint64
	seen      int
	lastSeen  time.Time
}

// Buffers holds the rings of one camera. Not safe for concurrent use: one
// goroutine (the camera's pipeline) owns it.
type Buffers struct {
	camera string
	cfg    Config
	tracks map[int]*track
	bytes  int64
	stats  Stats
}

// New returns empty buffers for camera.
func New(camera string, cfg Config) (*Buffers, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Buffers{camera: camera, cfg: cfg, tracks: map[int]*track{}}, nil
}

// Config returns the effective configuration.
func (b *Buffers) Config() Config { return b.cfg }

func (b *Buffers) slot(tr *track, t time.Time) int64 {
	return int64(math.Floor(t.Sub(tr.t0).Seconds()*b.cfg.FPS + 1e-9))
}

// Observe records that trackID was detected at t and reports whether a
// sample is due, so the caller crops only the frames it needs. Sampling is by
// time slot (floor((t-t0)·fps)), which keeps the average rate exact whatever
// the camera's frame rate.
func (b *Buffers) Observe(trackID int, t time.Time) (due bool) {
	tr := b.track(trackID, t)
	tr.seen++
	if t.After(tr.lastSeen) {
		tr.lastSeen = t
	}
	return b.slot(tr, t) > tr.lastSlot
}

func (b *Buffers) track(id int, t time.Time) *track {
	tr, ok := b.tracks[id]
	if !ok {
		tr = &track{t0: t, lastSlot: -1}
		b.tracks[id] = tr
	}
	return tr
}

// Add offers a sample. It returns a window when this sample completes one.
// A sample in a time slot already filled is ignored.
func (b *Buffers) Add(trackID int, s Sample) (Window, bool) {
	tr := b.track(trackID, s.Time)
	slot := b.slot(tr, s.Time)
	if slot <= tr.lastSlot {
		return Window{}, false
	}
	size := int64(len(s.Crop.Pix))
	if size > b.cfg.MaxBytesPerTrack || b.bytes-b.evictable(tr)+size > b.cfg.MaxBytesTotal {
		b.stats.DroppedMemory++
		return Window{}, false
	}
	tr.lastSlot = slot
	// Make room: ring length and per-track bytes.
	for len(tr.ring) > 0 && (len(tr.ring) >= b.cfg.Length || tr.bytes+size > b.cfg.MaxBytesPerTrack) {
		if len(tr.ring) < b.cfg.Length {
			b.stats.DroppedMemory++
		}
		b.dropOldest(tr)
	}
	tr.ring = append(tr.ring, s)
	tr.bytes += size
	b.bytes += size
	tr.sinceEmit++
	b.stats.Samples++
	if len(tr.ring) == b.cfg.Length && (tr.seq == 0 && tr.sinceEmit == b.cfg.Length || tr.seq > 0 && tr.sinceEmit >= b.cfg.Stride) {
		return b.emit(trackID, tr), true
	}
	return Window{}, false
}

// evictable is what adding to tr would free first (the oldest crop, when the
// ring is full).
func (b *Buffers) evictable(tr *track) int64 {
	if len(tr.ring) >= b.cfg.Length {
		return int64(len(tr.ring[0].Crop.Pix))
	}
	return 0
}

func (b *Buffers) dropOldest(tr *track) {
	n := int64(len(tr.ring[0].Crop.Pix))
	tr.ring[0] = Sample{} // let the crop be collected even while the backing array lives
	tr.ring = tr.ring[1:]
	tr.bytes -= n
	b.bytes -= n
}

func (b *Buffers) emit(id int, tr *track) Window {
	samples := make([]Sample, len(tr.ring)) // a copy: the ring moves on, the window does not
	copy(samples, tr.ring)
	// Compact so the ring's backing array does not grow without bound.
	tr.ring = append(make([]Sample, 0, b.cfg.Length), tr.ring...)
	w := Window{
		Camera:     b.camera,
		TrackID:    id,
		Seq:        tr.seq,
		Start:      samples[0].Time,
		End:        samples[len(samples)-1].Time,
		FPS:        b.cfg.FPS,
		Samples:    samples,
		FramesSeen: tr.seen,
		LastSeen:   tr.lastSeen,
	}
	if w.End.After(w.LastSeen) { // samples added without Observe
		w.LastSeen = w.End
	}
	tr.seq++
	tr.sinceEmit = 0
	b.stats.Windows++
	return w
}

// End releases trackID's crops at once. If the track has samples no window
// has covered yet and at least MinLength samples, the last ones are emitted
// as a final (possibly shorter) window so a brief face still gets a tree.
func (b *Buffers) End(trackID int) (Window, bool) {
	tr, ok := b.tracks[trackID]
	if !ok {
		return Window{}, false
	}
	var w Window
	emitted := false
	if tr.sinceEmit > 0 && b.cfg.MinLength > 0 && len(tr.ring) >= b.cfg.MinLength {
		w, emitted = b.emit(trackID, tr), true
	}
	b.bytes -= tr.bytes
	delete(b.tracks, trackID)
	b.stats.TracksReleased++
	return w, emitted
}

// Tracks lists the tracks currently buffered.
func (b *Buffers) Tracks() []int {
	ids := make([]int, 0, len(b.tracks))
	for id := range b.tracks {
		ids = append(ids, id)
	}
	return ids
}

// Stats returns counters and current holdings.
func (b *Buffers) Stats() Stats {
	s := b.stats
	s.Tracks = len(b.tracks)
	s.Bytes = b.bytes
	return s
}
