package capture

import (
	"math"
	"math/rand/v2"
	"time"
)

// defaultFPS is the frame interval assumed when a container reports no
// usable frame rate.
const defaultFPS = 25

// maxPTSJump is the largest forward step between two consecutive file
// timestamps that is believed; a bigger one is treated as a broken
// timestamp (see ptsClock).
const maxPTSJump = 10 * time.Second

// nominalInterval is 1/fps, or 1/defaultFPS when fps is not plausible.
func nominalInterval(fps float64) time.Duration {
	if !(fps > 0.01 && fps <= 1000) {
		fps = defaultFPS
	}
	return time.Duration(float64(time.Second) / fps)
}

// ptsClock turns the container's CAP_PROP_POS_MSEC readings into
// presentation times that start at 0 and strictly increase.
//
// OpenCV's reading is relative to the container's own origin (Megamind.avi
// reports 41.7 ms for its first frame), so the first reading becomes the
// origin. It is believed while it moves forward by at most maxPTSJump; when
// it is missing, negative, not finite, stalls, goes back or leaps (OpenCV
// 4.6 reports 0 for the last frame of Megamind.avi, Megamind_bugy.avi and
// truncated files, and garbage for streams), the frame gets previous PTS +
// 1/fps. The origin is kept, so a container that skips one timestamp and
// resumes its timeline is followed again; one whose timeline restarts or
// leaps is followed by frame count until it is plausible again.
type ptsClock struct {
	interval time.Duration
	origin   float64 // ms
	prev     time.Duration
	started  bool
	repaired uint64
}

func (c *ptsClock) next(posMsec float64) time.Duration {
	valid := !math.IsNaN(posMsec) && !math.IsInf(posMsec, 0) && posMsec >= 0 && posMsec < 1e12
	if !c.started {
		c.started = true
		if valid {
			c.origin = posMsec
		}
		c.prev = 0
		return 0
	}
	if valid {
		pts := time.Duration((posMsec - c.origin) * float64(time.Millisecond))
		if pts > c.prev && pts-c.prev <= maxPTSJump {
			c.prev = pts
			return pts
		}
	}
	c.repaired++
	c.prev += c.interval
	return c.prev
}

// rateCap keeps frames so that no more than fps are emitted per second of
// PTS. A frame is kept when it reaches the next slot (with a tolerance of an
// eighth of the slot, so timestamps rounded by the container do not make a
// 25→12.5 fps cap lose every other kept frame); slots advance by exactly
// 1/fps, so the long-run rate never exceeds the cap.
type rateCap struct {
	interval time.Duration // 0: keep everything
	next     time.Duration
	started  bool
}

func newRateCap(fps float64) rateCap {
	if fps <= 0 {
		return rateCap{}
	}
	return rateCap{interval: time.Duration(float64(time.Second) / fps)}
}

func (r *rateCap) keep(pts time.Duration) bool {
	if r.interval == 0 {
		return true
	}
	if !r.started {
		r.started = true
		r.next = pts + r.interval
		return true
	}
	if pts+r.interval/8 < r.next {
		return false
	}
	r.next += r.interval
	if r.next <= pts { // a gap (reconnect, stall): restart the slots here
		r.next = pts + r.interval
	}
	return true
}

// backoff is capped exponential backoff with "equal jitter": each wait is
// between half and all of the current step, so many cameras that lost the
// same network do not reconnect in lockstep.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) next() time.Duration {
	if b.cur < b.min {
		b.cur = b.min
	}
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

func (b *backoff) reset() { b.cur = b.min }
