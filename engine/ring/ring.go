// Package ring keeps the most recent values of a stream, for percentiles
// over recent samples: the daemon's capture → tree latencies per camera and
// the scheduler's run and wait times. It imports nothing of edgemo's.
package ring

import (
	"cmp"
	"slices"
)

// Ring holds the last n values added (n from New). Not safe for concurrent use.
type Ring[T cmp.Ordered] struct {
	buf []T
	n   uint64 // values added, ever
}

// New is a ring of the last n values (n > 0).
func New[T cmp.Ordered](n int) *Ring[T] {
	return &Ring[T]{buf: make([]T, 0, n)}
}

// Add records v, dropping the oldest value when the ring is full.
func (r *Ring[T]) Add(v T) {
	if len(r.buf) < cap(r.buf) {
		r.buf = append(r.buf, v)
	} else {
		r.buf[r.n%uint64(cap(r.buf))] = v
	}
	r.n++
}

// Count is how many values were ever added.
func (r *Ring[T]) Count() uint64 { return r.n }

// Sorted is a sorted copy of the values held, the most recent n.
func (r *Ring[T]) Sorted() []T {
	v := slices.Clone(r.buf)
	slices.Sort(v)
	return v
}
