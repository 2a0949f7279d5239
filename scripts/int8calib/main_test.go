package main

import (
	"math"
	"testing"
)

// TestPercentile: on 0..9999 the 99.99th percentile is found within one bin
// of 9999 and never below the values it keeps, the 0.01th at or below 1;
// q 0 and 1 are the min and max; a constant tensor has one value.
func TestPercentile(t *testing.T) {
	s := &stats{lo: float32(math.Inf(1)), hi: float32(math.Inf(-1))}
	v := make([]float32, 10000)
	for i := range v {
		v[i] = float32(i)
	}
	s.minmax(v)
	s.hist(v)
	if s.lo != 0 || s.hi != 9999 || s.n != 10000 {
		t.Fatalf("min %v max %v n %d", s.lo, s.hi, s.n)
	}
	bin := float32(9999) / bins
	if p := s.percentile(0.9999); p < 9998 || p > 9999 {
		t.Errorf("99.99th: %v, want 9998..9999", p)
	}
	if p := s.percentile(0.5); math.Abs(float64(p)-5000) > float64(bin)+1 {
		t.Errorf("median: %v", p)
	}
	if p := s.percentile(0.0001); p > 1 {
		t.Errorf("0.01th: %v, want <= 1", p)
	}
	if s.percentile(0) != 0 || s.percentile(1) != 9999 {
		t.Errorf("q 0, 1: %v %v", s.percentile(0), s.percentile(1))
	}
	c := &stats{lo: float32(math.Inf(1)), hi: float32(math.Inf(-1))}
	c.minmax([]float32{2, 2, 2})
	c.hist([]float32{2, 2, 2})
	if c.percentile(0.001) != 2 || c.percentile(0.999) != 2 {
		t.Errorf("constant: %v %v", c.percentile(0.001), c.percentile(0.999))
	}
}

// TestOutliersAreClipped: 1 value in 100000 at 100, the rest in 0..1: the
// 99.999th percentile stays near 1, which is what lets a uint8 scale
// resolve the bulk instead of the outlier.
func TestOutliersAreClipped(t *testing.T) {
	s := &stats{lo: float32(math.Inf(1)), hi: float32(math.Inf(-1))}
	v := make([]float32, 200000)
	for i := range v {
		v[i] = float32(i%1000) / 1000
	}
	v[0], v[1] = 100, 100
	s.minmax(v)
	s.hist(v)
	if p := s.percentile(0.99999); p > 1.1 {
		t.Errorf("99.999th with 2 outliers in 200000: %v, want about 1", p)
	}
	if p := s.percentile(0.999999); p < 99 {
		t.Errorf("99.9999th: %v, want the outlier", p)
	}
}
