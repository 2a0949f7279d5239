package capture

import (
	"math"
	"slices"
	"testing"
	"time"
)

const ms = time.Millisecond

func TestPTSClock(t *testing.T) {
	c := ptsClock{interval: 40 * ms}
	// Origin at the first reading; then believed while plausible.
	in := []float64{41.7, 81.7, 121.7, 0 /* zero (OpenCV 4.6, last frame) */, 201.7 /* timeline resumes */, 150 /* backwards */, math.NaN(), -3.7e20, 1e6 /* 16 min leap */, 401.7 /* back on the timeline */}
	want := []time.Duration{0, 40 * ms, 80 * ms, 120 * ms, 160 * ms, 200 * ms, 240 * ms, 280 * ms, 320 * ms, 360 * ms}
	for i, p := range in {
		got := c.next(p)
		if absDur(got-want[i]) > 10*time.Microsecond {
			t.Errorf("reading %d (%v ms): PTS %v, want %v", i, p, got, want[i])
		}
	}
	if c.repaired != 5 {
		t.Errorf("repaired = %d, want 5 (zero, backwards, NaN, garbage, leap)", c.repaired)
	}
	// A timeline that restarts (concatenated recordings) is followed by
	// frame count: PTS never goes back.
	c2 := ptsClock{interval: 100 * ms}
	for _, p := range []float64{0, 100, 200} {
		c2.next(p)
	}
	for i, p := range []float64{0, 100, 200} {
		if got, want := c2.next(p), time.Duration(300+100*i)*ms; got != want {
			t.Errorf("restarted timeline reading %v: %v, want %v", p, got, want)
		}
	}
	if nominalInterval(0) != 40*ms || nominalInterval(1e6) != 40*ms || nominalInterval(10) != 100*ms {
		t.Error("nominalInterval")
	}
}

func TestRateCap(t *testing.T) {
	kept := func(fps, capFPS float64, n int, jitter time.Duration) []int {
		r := newRateCap(capFPS)
		var idx []int
		for i := 0; i < n; i++ {
			pts := time.Duration(float64(i) * float64(time.Second) / fps)
			if i%2 == 0 && i > 0 {
				pts -= jitter // timestamps rounded down by the container, on frames the cap keeps
			}
			if r.keep(pts) {
				idx = append(idx, i)
			}
		}
		return idx
	}
	cases := []struct {
		fps, cap float64
		n, want  int
	}{
		{25, 12.5, 100, 50},
		{30, 20, 300, 200},
		{30, 10, 300, 100},
		{25, 30, 100, 100},
		{25, 0, 100, 100},
	}
	for _, c := range cases {
		exact := kept(c.fps, c.cap, c.n, 0)
		if len(exact) != c.want {
			t.Errorf("%v fps capped at %v: kept %d of %d, want %d", c.fps, c.cap, len(exact), c.n, c.want)
		}
		// Rounded timestamps must not change which frames are kept.
		if j := kept(c.fps, c.cap, c.n, 500*time.Microsecond); !slices.Equal(j, exact) {
			t.Errorf("%v fps capped at %v: with 0.5ms rounding kept %v, want %v", c.fps, c.cap, j[:min(8, len(j))], exact[:min(8, len(exact))])
		}
	}
	if got := kept(25, 12.5, 10, 0); !slices.Equal(got, []int{0, 2, 4, 6, 8}) {
		t.Errorf("25→12.5 fps kept %v, want every other frame", got)
	}
	// After a gap the slots restart instead of letting a burst through.
	r := newRateCap(10)
	r.keep(0)
	r.keep(100 * ms)
	if !r.keep(5 * time.Second) {
		t.Error("first frame after a gap dropped")
	}
	if r.keep(5*time.Second + 40*ms) {
		t.Error("burst after a gap kept")
	}
}

func TestBackoff(t *testing.T) {
	b := backoff{min: 100 * ms, max: 1 * time.Second}
	steps := []time.Duration{100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second}
	for i, step := range steps {
		d := b.next()
		if d < step/2 || d > step {
			t.Errorf("wait %d = %v, want within [%v, %v]", i, d, step/2, step)
		}
	}
	b.reset()
	if d := b.next(); d > 100*ms {
		t.Errorf("after reset wait %v, want ≤ 100ms", d)
	}
	// Jitter: waits at one step are not all equal.
	seen := map[time.Duration]bool{}
	for i := 0; i < 20; i++ {
		b.reset()
		seen[b.next()] = true
	}
	if len(seen) < 5 {
		t.Errorf("only %d distinct waits in 20: no jitter", len(seen))
	}
}
