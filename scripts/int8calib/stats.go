package main

import "math"

// bins is the histogram resolution between a tensor's min and max: a
// percentile is found to within 1/16384 of the tensor's whole range, far
// below one of the 255 steps uint8 quantisation makes of it.
const bins = 1 << 14

// stats is one tensor's values over the calibration inputs: min and max
// (pass 1), then a histogram between them (pass 2).
type stats struct {
	lo, hi float32
	n      uint64 // values counted into h
	h      []uint32
}

func (s *stats) minmax(v []float32) {
	for _, x := range v {
		s.lo, s.hi = min(s.lo, x), max(s.hi, x)
	}
}

func (s *stats) hist(v []float32) {
	if s.h == nil {
		s.h = make([]uint32, bins)
	}
	w := float64(s.hi) - float64(s.lo)
	for _, x := range v {
		i := bins - 1
		if w > 0 {
			i = min(bins-1, max(0, int((float64(x)-float64(s.lo))/w*bins)))
		}
		s.h[i]++
	}
	s.n += uint64(len(v))
}

// percentile is the value below which fraction q of the values lie: the
// lower edge of the bin where the count passes q·n for q < 0.5 (so a low
// percentile never rises above the values it cuts), the upper edge for
// q >= 0.5, clamped to [min, max]. q of 0 or 1 is min or max.
func (s *stats) percentile(q float64) float32 {
	if q <= 0 || s.n == 0 {
		return s.lo
	}
	if q >= 1 {
		return s.hi
	}
	w := (float64(s.hi) - float64(s.lo)) / bins
	target := q * float64(s.n)
	var c float64
	for i, k := range s.h {
		c += float64(k)
		if c >= target {
			edge := i
			if q >= 0.5 {
				edge = i + 1
			}
			return float32(math.Min(float64(s.hi), math.Max(float64(s.lo), float64(s.lo)+float64(edge)*w)))
		}
	}
	return s.hi
}
