package facetrack

import (
	"fmt"
	"math"

	"gocv.io/x/gocv"
)

// RegionDetector is a Detector that can also look only inside given
// regions of a frame, more cheaply than over the whole frame. The adaptive
// schedule uses it to verify tracked faces between full detections.
type RegionDetector interface {
	Detector
	// DetectRegions returns the faces found inside rois (source pixels),
	// in source pixels, overlapping finds merged.
	DetectRegions(img gocv.Mat, rois []Rect) ([]Detection, error)
}

// Mode is what a frame gets from the detector.
type Mode int

const (
	ModeFull    Mode = iota // the detector on the whole frame
	ModeRegions             // the detector on regions around the tracked faces only
	ModePredict             // no detection: the tracker predicts
	ModeSkip                // motion gate: no face is live and nothing moved
)

func (m Mode) String() string {
	switch m {
	case ModeFull:
		return "full"
	case ModeRegions:
		return "regions"
	case ModePredict:
		return "predicted"
	case ModeSkip:
		return "motion_skipped"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ScheduleConfig chooses, frame by frame, how much detection a frame gets.
type ScheduleConfig struct {
	// Every: with Adaptive off, the detector runs on every Every-th frame
	// and the tracker predicts in between. With Adaptive on it is the
	// shortest interval between full detections. Default 1.
	Every int
	// Adaptive: while every face is tracked with a confident, steady box,
	// the interval between full detections doubles after each full
	// detection, up to MaxEvery; in between the faces are verified in
	// regions around their boxes (RegionDetector) or, without one,
	// predicted. The interval falls back to Every at once when a score
	// drops, a box grows or moves fast, a track is new or lost, or
	// something moves outside the tracked faces.
	Adaptive bool
	MaxEvery int // default 8
	// RegionEvery: between full detections, faces are verified in their
	// regions on one frame in RegionEvery and the tracker predicts the
	// others (a steady face moves little in 40 ms, and a region check costs
	// a front-model Run per face). 1 verifies every frame. Default 2.
	RegionEvery int
	// StableScore: tracks scoring below it on a full detection are not
	// steady. Default 0.5 (the tracker's HighThreshold).
	StableScore float32
	// ScoreDrop: a face verified in its region with a score below this
	// fraction of its last full detection's score is not steady (the
	// front model scores faces in regions lower than the back model does in
	// frames). Default 0.6.
	ScoreDrop float32
	// MaxGrowth: a box whose height changed by more than this factor since
	// the last full detection is not steady. Default 1.25.
	MaxGrowth float64
	// MaxShift: a box whose centre moved more than this fraction of its
	// height since the last full detection is not steady. Default 0.5.
	MaxShift float64

	// Motion gates detection: while no track (not even a tentative one) is
	// live and at most MotionThreshold of the frame changed since the last
	// full detection, the frame is skipped. With tracks live, motion above
	// MotionThreshold outside them forces a full detection (Adaptive).
	Motion          bool
	MotionThreshold float64 // fraction of grid cells; default 0.002 (8 cells of an 80×45 grid)
	// MotionOutside: with faces tracked, the fraction of the frame outside
	// them (and below them: their bodies) that must change to force a full
	// detection; above MotionThreshold because people move more than their
	// faces, and a new face is found at the next interval anyway. Default 0.03.
	MotionOutside float64
	PixelDelta    int // grey levels a cell must change by; default 12
	// Recheck: while the gate skips, a full detection still runs every
	// Recheck frames (a face that sat down while the gate was closed...
	// cannot happen without motion, but a camera that froze can). Default 250.
	Recheck int
}

func (c ScheduleConfig) withDefaults() ScheduleConfig {
	orDefault(&c.Every, 1)
	orDefault(&c.MaxEvery, max(8, c.Every))
	orDefault(&c.RegionEvery, 2)
	orDefault(&c.StableScore, 0.5)
	orDefault(&c.ScoreDrop, 0.6)
	orDefault(&c.MaxGrowth, 1.25)
	orDefault(&c.MaxShift, 0.5)
	orDefault(&c.MotionThreshold, 0.002)
	orDefault(&c.MotionOutside, 0.03)
	orDefault(&c.PixelDelta, 12)
	orDefault(&c.Recheck, 250)
	return c
}

// Scheduler decides each frame's Mode from the tracks and the motion, and
// learns from what the detector found. Not safe for concurrent use.
type Scheduler struct {
	cfg    ScheduleConfig
	motion *Motion
	n      uint64        // frames seen (fixed schedule)
	since  int           // frames since the last full detection
	every  int           // current interval between full detections
	force  bool          // the last frame asked for a full detection
	ref    map[int]Track // each track at the last full detection
	scale  map[int]float64
	why    [NumReasons]uint64
	last   Reason
}

// Reason is why a full detection ran.
type Reason int

// Reasons a full detection ran, for FullReasons and LastReason.
const (
	ReasonInterval Reason = iota // the interval was up
	ReasonMotion                 // something moved outside the tracked faces (or anywhere, with none)
	ReasonNew                    // a tentative track needs confirming
	ReasonLost                   // a track is lost: look for it everywhere
	ReasonUnsteady               // a verified track's score dropped or its box grew or moved fast
	ReasonRecheck                // the motion gate's periodic check
	NumReasons
)

var reasonNames = [NumReasons]string{"interval", "motion", "new_track", "lost_track", "unsteady", "recheck"}

func (r Reason) String() string {
	if r >= 0 && r < NumReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", int(r))
}

// FullReasons counts the full detections by why they ran.
func (s *Scheduler) FullReasons() map[string]uint64 {
	m := make(map[string]uint64, NumReasons)
	for i, n := range s.why {
		if n > 0 {
			m[reasonNames[i]] = n
		}
	}
	return m
}

// LastReason is why the last full detection ran (Plan returned ModeFull).
func (s *Scheduler) LastReason() Reason { return s.last }

// NewScheduler validates cfg (zero fields take defaults).
func NewScheduler(cfg ScheduleConfig) (*Scheduler, error) {
	cfg = cfg.withDefaults()
	if cfg.Every < 1 || cfg.MaxEvery < cfg.Every || cfg.RegionEvery < 1 {
		return nil, fmt.Errorf("facetrack: schedule: Every %d must be >= 1, MaxEvery %d >= Every and RegionEvery %d >= 1", cfg.Every, cfg.MaxEvery, cfg.RegionEvery)
	}
	if !(cfg.MotionThreshold > 0 && cfg.MotionThreshold < 1) || !(cfg.MotionOutside > 0 && cfg.MotionOutside < 1) || cfg.PixelDelta < 1 || cfg.PixelDelta > 255 || cfg.Recheck < 1 {
		return nil, fmt.Errorf("facetrack: schedule: MotionThreshold %.3g and MotionOutside %.3g must be in (0, 1), PixelDelta %d in 1..255, Recheck %d >= 1", cfg.MotionThreshold, cfg.MotionOutside, cfg.PixelDelta, cfg.Recheck)
	}
	s := &Scheduler{cfg: cfg, every: cfg.Every, ref: map[int]Track{}, scale: map[int]float64{}}
	if cfg.MeasuresMotion() {
		s.motion = NewMotion(cfg.PixelDelta)
	}
	return s, nil
}

// MeasuresMotion reports whether a schedule of this config measures each
// frame's motion (Plan's grey is then worth making).
func (c ScheduleConfig) MeasuresMotion() bool { return c.Motion || c.Adaptive }

// Config is the effective configuration.
func (s *Scheduler) Config() ScheduleConfig { return s.cfg }

// Interval is the current number of frames between full detections.
func (s *Scheduler) Interval() int { return s.every }

// Plan picks the mode of the next frame, img. grey is its motion grid
// where the decoder made one (nil: made from img; Motion.Measure). tracks
// are the tracker's confirmed tracks, tentative the number of unconfirmed
// ones, regions whether a RegionDetector is at hand.
func (s *Scheduler) Plan(img gocv.Mat, grey *Grey, tracks []Track, tentative int, regions bool) (Mode, error) {
	s.n++
	if !s.cfg.Adaptive && !s.cfg.Motion { // the fixed schedule, as before
		if (s.n-1)%uint64(s.cfg.Every) == 0 {
			return s.full(ReasonInterval), nil
		}
		return ModePredict, nil
	}
	moved := 1.0
	if s.motion != nil {
		keep := make([]Rect, len(tracks))
		for i, t := range tracks {
			keep[i] = t.Box
		}
		var err error
		if moved, err = s.motion.Measure(img, grey, keep); err != nil {
			return ModeFull, err
		}
	}
	motion := moved > s.cfg.MotionThreshold
	if len(tracks) == 0 && tentative == 0 {
		switch {
		case !s.cfg.Motion || motion || s.force:
			return s.full(ReasonMotion), nil
		case s.since+1 >= s.cfg.Recheck:
			return s.full(ReasonRecheck), nil
		}
		s.since++
		return ModeSkip, nil
	}
	if !s.cfg.Adaptive {
		if s.force || s.since+1 >= s.cfg.Every {
			return s.full(ReasonInterval), nil
		}
		s.since++
		return ModePredict, nil
	}
	lost := false
	for _, t := range tracks { // just lost: look everywhere; lost longer: it ages at the interval's pace
		lost = lost || t.State != Tracked && t.Misses <= LostFullFrames
	}
	why := Reason(-1)
	switch {
	case s.force:
		why = ReasonUnsteady
	case tentative > 0:
		why = ReasonNew
	case lost:
		why = ReasonLost
	case moved > s.cfg.MotionOutside:
		why = ReasonMotion
	}
	if why >= 0 {
		s.every = s.cfg.Every
		return s.full(why), nil
	}
	if s.since+1 >= s.every {
		return s.full(ReasonInterval), nil
	}
	s.since++
	if regions && len(tracks) <= MaxRegionFaces && s.since%s.cfg.RegionEvery == 1%s.cfg.RegionEvery {
		return ModeRegions, nil
	}
	return ModePredict, nil
}

// MaxRegionFaces: with more tracked faces than this, verifying each in its
// region costs more than a full detection (a front-model Run is about a
// quarter of a back-model one), so the tracker predicts between full
// detections instead.
const MaxRegionFaces = 4

func (s *Scheduler) full(why Reason) Mode {
	s.why[why]++
	s.last = why
	s.since, s.force = 0, false
	if s.motion != nil {
		s.motion.Commit()
	}
	return ModeFull
}

// Observe tells the scheduler what the tracker made of the frame it
// planned: tracks and events from Tracker.Update (nil for predicted and
// skipped frames).
func (s *Scheduler) Observe(mode Mode, tracks []Track, events []Event) {
	if !s.cfg.Adaptive {
		return
	}
	switch mode {
	case ModeFull:
		steady := true
		for _, ev := range events {
			steady = steady && ev.Type == EventUpdate
		}
		clear(s.ref)
		clear(s.scale)
		n := 0
		for _, t := range tracks {
			if t.State != Tracked && t.Misses > LostFullFrames {
				continue // long lost: aging, not looked for at full rate
			}
			n++
			steady = steady && t.State == Tracked && t.Score >= s.cfg.StableScore
			s.ref[t.ID] = t
		}
		if steady && n > 0 {
			s.every = min(2*s.every, s.cfg.MaxEvery)
		} else {
			s.every = s.cfg.Every
		}
	case ModeRegions:
		for _, t := range tracks {
			r, ok := s.ref[t.ID]
			if !ok {
				continue // long lost
			}
			if t.State != Tracked || t.FramesSinceUpdate > 0 || t.Score < s.cfg.ScoreDrop*r.Score || !s.near(r.Box, t.Box) {
				s.force = true
			}
		}
		for _, ev := range events {
			s.force = s.force || ev.Type != EventUpdate
		}
	}
}

// Calibrate scales d, the face of track id found in its region, about its
// centre so its height matches the track's full-detection box. The region
// verifier is another model (BlazeFace front) whose boxes differ from the
// detector's per face (on Megamind from 0.9 to 1.4 times); the factor is
// learned on the first region frame after each full detection, so the
// tracker and the crops see one model's box sizes.
func (s *Scheduler) Calibrate(id int, d Detection) Detection {
	r, ok := s.ref[id]
	if !ok || !(d.Box.H > 0) {
		return d
	}
	k, ok := s.scale[id]
	if !ok {
		k = math.Max(0.6, math.Min(1.6, r.Box.H/d.Box.H))
		s.scale[id] = k
	}
	cx, cy := d.Box.Center()
	w, h := d.Box.W*k, d.Box.H*k
	d.Box = Rect{cx - w/2, cy - h/2, w, h}
	return d
}

// near: b has neither grown nor moved too much from r.
func (s *Scheduler) near(r, b Rect) bool {
	g := b.H / r.H
	if !(g <= s.cfg.MaxGrowth && g >= 1/s.cfg.MaxGrowth) {
		return false
	}
	rx, ry := r.Center()
	bx, by := b.Center()
	return math.Hypot(bx-rx, by-ry) <= s.cfg.MaxShift*r.H
}

// Region is the area to verify a track in: its box's square grown to
// RegionScale times its side, so one frame's motion stays inside.
func Region(t Track) Rect {
	cx, cy := t.Box.Center()
	side := RegionScale * math.Max(t.Box.W, t.Box.H)
	return Rect{cx - side/2, cy - side/2, side, side}
}

// VerifyRegions looks for each tracked face of tracks in its region with
// rd and returns the strongest find of each, calibrated (Calibrate).
// Tracks lost for a while are not looked for.
func (s *Scheduler) VerifyRegions(rd RegionDetector, img gocv.Mat, tracks []Track) ([]Detection, error) {
	var out []Detection
	for _, t := range tracks {
		if t.State != Tracked {
			continue
		}
		dets, err := rd.DetectRegions(img, []Rect{Region(t)})
		if err != nil {
			return nil, err
		}
		best := -1
		for i, d := range dets {
			if best < 0 || d.Score > dets[best].Score {
				best = i
			}
		}
		if best >= 0 {
			out = append(out, s.Calibrate(t.ID, dets[best]))
		}
	}
	return out, nil
}

// LostFullFrames: a track lost for up to this many detection frames keeps
// detection at full rate (it may be found again nearby); after that it ages
// at the interval's pace until the tracker ends it.
const LostFullFrames = 3

// RegionScale is the side of a verification region in face-box sides: the
// face fills about half of it, the scale BlazeFace's front model sees.
const RegionScale = 2.0

// Close releases the motion meter's scratch Mat.
func (s *Scheduler) Close() error {
	if s.motion != nil {
		return s.motion.Close()
	}
	return nil
}
