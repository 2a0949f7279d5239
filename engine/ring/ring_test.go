package ring

import (
	"slices"
	"testing"
)

func TestRingKeepsTheLastN(t *testing.T) {
	r := New[int](3)
	if got := r.Sorted(); len(got) != 0 || r.Count() != 0 {
		t.Fatalf("empty ring: %v, count %d", got, r.Count())
	}
	for _, v := range []int{5, 1, 4} {
		r.Add(v)
	}
	if got := r.Sorted(); !slices.Equal(got, []int{1, 4, 5}) {
		t.Fatalf("full ring: %v", got)
	}
	for _, v := range []int{9, 2, 7, 3} {
		r.Add(v)
	}
	if got := r.Sorted(); !slices.Equal(got, []int{2, 3, 7}) || r.Count() != 7 {
		t.Fatalf("after wrapping: %v, count %d; want [2 3 7], 7", got, r.Count())
	}
}
