package facetrack

import (
	"fmt"
	"math"
	"sort"
	"time"
)

// TrackState is where a track is in its lifecycle.
type TrackState int

const (
	// Tentative: seen fewer than MinHits times in a row; not reported and
	// without an ID yet. One missed detection frame deletes it silently.
	Tentative TrackState = iota
	// Tracked: confirmed and matched in the latest detection frame.
	Tracked
	// Lost: confirmed but unmatched for 1..MaxAge detection frames; the
	// Kalman filter keeps predicting it and a high-score detection revives it
	// under the same ID.
	Lost
	// Removed: unmatched for more than MaxAge detection frames; final.
	Removed
)

func (s TrackState) String() string {
	switch s {
	case Tentative:
		return "tentative"
	case Tracked:
		return "tracked"
	case Lost:
		return "lost"
	case Removed:
		return "removed"
	}
	return fmt.Sprintf("TrackState(%d)", int(s))
}

// EventType names a lifecycle event.
type EventType string

const (
	EventNew    EventType = "new"    // track confirmed (MinHits reached); first report of its ID
	EventUpdate EventType = "update" // confirmed track matched a detection (also when revived from lost)
	EventLost   EventType = "lost"   // first detection frame a confirmed track went unmatched
	EventEnd    EventType = "end"    // track removed after more than MaxAge missed detection frames
)

// Event is one lifecycle change, carrying a snapshot of the track after it.
type Event struct {
	Type  EventType
	Track Track
	Time  time.Time
}

// Track is a snapshot of one tracked face.
type Track struct {
	ID    int        // stable, from 1, never reused; 0 while Tentative
	Box   Rect       // Kalman state: corrected on a matched frame, predicted otherwise
	Score float32    // score of the last matched detection
	Det   Detection  // last matched detection (raw box, keypoints for alignment)
	State TrackState // Tentative, Tracked, Lost, Removed

	Hits              int // detections matched over the track's life
	Age               int // steps (Update and Predict calls) since the track began
	FramesSinceUpdate int // steps since the last matched detection (0 on a matched frame)
	Misses            int // consecutive detection frames (Update calls) without a match

	FirstSeen, LastSeen time.Time // first and latest matched detection
}

// TrackerConfig tunes the tracker. Zero fields take the defaults of
// DefaultTrackerConfig.
type TrackerConfig struct {
	// HighThreshold splits detections: Score >= HighThreshold are "high"
	// (first association pass, may start tracks). Default 0.5.
	HighThreshold float32
	// LowThreshold: detections with LowThreshold <= Score < HighThreshold
	// are "low" (second pass only: they keep tracks alive, never start
	// them); lower scores are ignored. Default 0.1.
	LowThreshold float32
	// NewTrackThreshold: an unmatched high detection starts a track only
	// with Score >= NewTrackThreshold. Default 0.6.
	NewTrackThreshold float32
	// MatchIoU: minimum IoU between a track's predicted box and a high
	// detection in the first pass. Default 0.2 (ByteTrack's match_thresh 0.8
	// as a distance).
	MatchIoU float64
	// LowMatchIoU: minimum IoU for the second pass (low detections vs still
	// tracked tracks). Default 0.5: low detections are less trustworthy, so
	// they must overlap more (ByteTrack's distance threshold 0.5).
	LowMatchIoU float64
	// UnconfirmedMatchIoU: minimum IoU for tentative tracks vs the high
	// detections left after the first pass. Default 0.3 (ByteTrack's 0.7).
	UnconfirmedMatchIoU float64
	// MaxScaleChange gates every pass: a detection can match a track only
	// if its height is within a factor MaxScaleChange of the track's
	// predicted height. Faces do not double in size between frames; without
	// this gate a lost track latches onto a different, much larger face
	// overlapping it after a scene cut. Default 1.5.
	MaxScaleChange float64
	// MaxAge: detection frames a lost track is kept; it ends on the
	// (MaxAge+1)th consecutive miss. Default 30.
	MaxAge int
	// MinHits: consecutive matched detection frames before a track is
	// confirmed (gets an ID, emits "new"). 1 confirms at birth. Default 3.
	MinHits int
	// FirstID is the first track ID handed out (default 1). A camera whose
	// tracker restarts (a looping file, a reconnect) continues its IDs so
	// that tree ids "<camera>-<track>-<window>" stay unique.
	FirstID int
}

// DefaultTrackerConfig returns the defaults documented on TrackerConfig.
func DefaultTrackerConfig() TrackerConfig {
	return TrackerConfig{
		HighThreshold:       0.5,
		LowThreshold:        0.1,
		NewTrackThreshold:   0.6,
		MatchIoU:            0.2,
		LowMatchIoU:         0.5,
		UnconfirmedMatchIoU: 0.3,
		MaxScaleChange:      1.5,
		MaxAge:              30,
		MinHits:             3,
		FirstID:             1,
	}
}

func (c TrackerConfig) withDefaults() TrackerConfig {
	d := DefaultTrackerConfig()
	orDefault(&c.HighThreshold, d.HighThreshold)
	orDefault(&c.LowThreshold, d.LowThreshold)
	orDefault(&c.NewTrackThreshold, d.NewTrackThreshold)
	orDefault(&c.MatchIoU, d.MatchIoU)
	orDefault(&c.LowMatchIoU, d.LowMatchIoU)
	orDefault(&c.UnconfirmedMatchIoU, d.UnconfirmedMatchIoU)
	orDefault(&c.MaxScaleChange, d.MaxScaleChange)
	orDefault(&c.MaxAge, d.MaxAge)
	orDefault(&c.MinHits, d.MinHits)
	orDefault(&c.FirstID, 1)
	return c
}

func (c TrackerConfig) validate() error {
	if c.LowThreshold < 0 || c.LowThreshold > c.HighThreshold {
		return fmt.Errorf("facetrack: tracker LowThreshold %.3g must be in [0, HighThreshold %.3g]: lower it or raise HighThreshold", c.LowThreshold, c.HighThreshold)
	}
	if c.NewTrackThreshold < c.HighThreshold {
		return fmt.Errorf("facetrack: tracker NewTrackThreshold %.3g is below HighThreshold %.3g: only high detections can start tracks, so set it >= HighThreshold", c.NewTrackThreshold, c.HighThreshold)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"MatchIoU", c.MatchIoU}, {"LowMatchIoU", c.LowMatchIoU}, {"UnconfirmedMatchIoU", c.UnconfirmedMatchIoU}} {
		if !(f.v > 0 && f.v <= 1) {
			return fmt.Errorf("facetrack: tracker %s %.3g must be in (0, 1]", f.name, f.v)
		}
	}
	if !(c.MaxScaleChange >= 1) || math.IsInf(c.MaxScaleChange, 0) {
		return fmt.Errorf("facetrack: tracker MaxScaleChange %.3g must be a finite factor >= 1 (e.g. 1.5)", c.MaxScaleChange)
	}
	if c.FirstID < 1 {
		return fmt.Errorf("facetrack: tracker FirstID %d must be >= 1", c.FirstID)
	}
	if c.MaxAge < 0 || c.MinHits < 0 {
		return fmt.Errorf("facetrack: tracker MaxAge %d and MinHits %d must not be negative", c.MaxAge, c.MinHits)
	}
	return nil
}

// Tracker is a ByteTrack-style multi-face tracker: a constant-velocity
// Kalman filter per track, IoU costs and Hungarian assignment in two passes
// (high-score detections against all confirmed tracks, then low-score
// detections against the still-tracked rest), and tentative tracks that need
// MinHits consecutive matches before they get an ID.
//
// A Tracker is not safe for concurrent use.
type Tracker struct {
	cfg    TrackerConfig
	tracks []*track // live tracks (Tentative, Tracked, Lost), oldest first
	nextID int
}

type track struct {
	Track
	kf *Kalman
}

// NewTracker returns a tracker; zero config fields take their defaults.
func NewTracker(cfg TrackerConfig) (*Tracker, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Tracker{cfg: cfg, nextID: cfg.FirstID}, nil
}

// NextID is the ID the next confirmed track will get.
func (tr *Tracker) NextID() int { return tr.nextID }

// Config returns the effective configuration (defaults filled in).
func (tr *Tracker) Config() TrackerConfig { return tr.cfg }

// Update runs one detection frame taken at t: every track is predicted one
// step, then associated with dets. It returns the confirmed tracks (Tracked
// and Lost, by ID) and the lifecycle events of this frame.
//
// Update(nil, t) means "the detector ran and found nothing": tracked faces
// become lost and lost ones age. For frames where detection is skipped, call
// Predict instead.
func (tr *Tracker) Update(dets []Detection, t time.Time) (tracks []Track, events []Event) {
	for _, tk := range tr.tracks {
		tr.predict(tk)
	}

	var high, low []Detection
	for _, d := range dets {
		if !validBox(d.Box) {
			continue
		}
		switch {
		case d.Score >= tr.cfg.HighThreshold:
			high = append(high, d)
		case d.Score >= tr.cfg.LowThreshold:
			low = append(low, d)
		}
	}

	var pool, unconfirmed []*track
	for _, tk := range tr.tracks {
		if tk.State == Tentative {
			unconfirmed = append(unconfirmed, tk)
		} else {
			pool = append(pool, tk)
		}
	}
	emit := func(typ EventType, tk *track) {
		events = append(events, Event{Type: typ, Track: tk.Track, Time: t})
	}

	// Pass 1: high detections vs all confirmed tracks (tracked and lost).
	m1, poolLeft, highLeft := tr.associate(pool, high, tr.cfg.MatchIoU)
	for _, m := range m1 {
		tk := pool[m[0]]
		tr.correct(tk, high[m[1]], t)
		tk.State = Tracked
		emit(EventUpdate, tk)
	}

	// Pass 2: low detections vs the tracks still Tracked last frame.
	var stillTracked []*track
	for _, i := range poolLeft {
		if pool[i].State == Tracked {
			stillTracked = append(stillTracked, pool[i])
		} else {
			tk := pool[i] // lost and still unmatched
			tk.Misses++
		}
	}
	m2, trackedLeft, _ := tr.associate(stillTracked, low, tr.cfg.LowMatchIoU)
	for _, m := range m2 {
		tk := stillTracked[m[0]]
		tr.correct(tk, low[m[1]], t)
		emit(EventUpdate, tk)
	}
	for _, i := range trackedLeft {
		tk := stillTracked[i]
		tk.State = Lost
		tk.Misses = 1
		emit(EventLost, tk)
	}

	// Pass 3: tentative tracks vs the high detections left over.
	rest := make([]Detection, len(highLeft))
	for i, j := range highLeft {
		rest[i] = high[j]
	}
	m3, unconfLeft, restLeft := tr.associate(unconfirmed, rest, tr.cfg.UnconfirmedMatchIoU)
	for _, m := range m3 {
		tk := unconfirmed[m[0]]
		tr.correct(tk, rest[m[1]], t)
		if tk.Hits >= tr.cfg.MinHits {
			tr.confirm(tk)
			emit(EventNew, tk)
		}
	}
	for _, i := range unconfLeft {
		unconfirmed[i].State = Removed // never announced: no event
	}

	// New tracks from unmatched, confident high detections.
	for _, j := range restLeft {
		d := rest[j]
		if d.Score < tr.cfg.NewTrackThreshold {
			continue
		}
		tk := &track{kf: NewKalman(d.Box)}
		tk.Box = tk.kf.Box()
		tk.Score, tk.Det, tk.Hits = d.Score, d, 1
		tk.FirstSeen, tk.LastSeen = t, t
		tk.State = Tentative
		if tk.Hits >= tr.cfg.MinHits {
			tr.confirm(tk)
			emit(EventNew, tk)
		}
		tr.tracks = append(tr.tracks, tk)
	}

	// Lost tracks past MaxAge end.
	for _, tk := range tr.tracks {
		if tk.State == Lost && tk.Misses > tr.cfg.MaxAge {
			tk.State = Removed
			emit(EventEnd, tk)
		}
	}
	tr.compact()
	return tr.confirmed(), events
}

// Predict advances every track one step without a detection (a frame where
// the detector was skipped): boxes move by the Kalman prediction, Age and
// FramesSinceUpdate grow, but nothing is lost, ended or confirmed and no
// events are emitted. It returns the confirmed tracks.
func (tr *Tracker) Predict(t time.Time) []Track {
	for _, tk := range tr.tracks {
		tr.predict(tk)
	}
	return tr.confirmed()
}

// Reset ends every track, for a scene cut or a source switch the caller
// knows about: confirmed tracks emit "end", tentative ones vanish. IDs keep
// counting up.
func (tr *Tracker) Reset(t time.Time) []Event {
	var events []Event
	for _, tk := range tr.tracks {
		if tk.State == Tracked || tk.State == Lost {
			tk.State = Removed
			events = append(events, Event{Type: EventEnd, Track: tk.Track, Time: t})
		}
	}
	clear(tr.tracks)
	tr.tracks = tr.tracks[:0]
	return events
}

// Tracks returns the confirmed tracks (Tracked and Lost), by ID.
func (tr *Tracker) Tracks() []Track { return tr.confirmed() }

// Tentative is the number of tracks not yet confirmed: faces being seen
// for the first frames, which need full detections to be confirmed.
func (tr *Tracker) Tentative() int {
	n := 0
	for _, tk := range tr.tracks {
		if tk.State == Tentative {
			n++
		}
	}
	return n
}

func (tr *Tracker) predict(tk *track) {
	if tk.State != Tracked {
		tk.kf.Mean[7] = 0 // as ByteTrack: no height velocity while not tracked
	}
	tk.kf.Predict()
	tk.Box = tk.kf.Box()
	tk.Age++
	tk.FramesSinceUpdate++
}

func (tr *Tracker) correct(tk *track, d Detection, t time.Time) {
	tk.kf.Update(d.Box)
	tk.Box = tk.kf.Box()
	tk.Score, tk.Det = d.Score, d
	tk.Hits++
	tk.FramesSinceUpdate, tk.Misses = 0, 0
	tk.LastSeen = t
}

func (tr *Tracker) confirm(tk *track) {
	tk.State = Tracked
	tk.ID = tr.nextID
	tr.nextID++
}

func (tr *Tracker) compact() {
	live := tr.tracks[:0]
	for _, tk := range tr.tracks {
		if tk.State != Removed {
			live = append(live, tk)
		}
	}
	clear(tr.tracks[len(live):])
	tr.tracks = live
}

func (tr *Tracker) confirmed() []Track {
	out := make([]Track, 0, len(tr.tracks))
	for _, tk := range tr.tracks {
		if tk.State == Tracked || tk.State == Lost {
			out = append(out, tk.Track)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// associate matches tracks to dets by Hungarian assignment on 1−IoU, allowing
// only pairs with IoU >= minIoU and a height ratio within MaxScaleChange. It
// returns matched (track, det) index pairs
// and the unmatched track and detection indices, in ascending order.
func (tr *Tracker) associate(tracks []*track, dets []Detection, minIoU float64) (matches [][2]int, tracksLeft, detsLeft []int) {
	maxScale := tr.cfg.MaxScaleChange
	detUsed := make([]bool, len(dets))
	if len(tracks) > 0 && len(dets) > 0 {
		cost := make([][]float64, len(tracks))
		for i, tk := range tracks {
			cost[i] = make([]float64, len(dets))
			for j, d := range dets {
				iou := tk.Box.IoU(d.Box)
				ratio := d.Box.H / tk.Box.H
				if iou >= minIoU && iou > 0 && ratio <= maxScale && ratio >= 1/maxScale {
					cost[i][j] = 1 - iou
				} else {
					cost[i][j] = math.Inf(1)
				}
			}
		}
		for i, j := range Hungarian(cost) {
			if j >= 0 {
				matches = append(matches, [2]int{i, j})
				detUsed[j] = true
			} else {
				tracksLeft = append(tracksLeft, i)
			}
		}
	} else {
		for i := range tracks {
			tracksLeft = append(tracksLeft, i)
		}
	}
	for j, used := range detUsed {
		if !used {
			detsLeft = append(detsLeft, j)
		}
	}
	return matches, tracksLeft, detsLeft
}

func validBox(b Rect) bool {
	for _, v := range []float64{b.X, b.Y, b.W, b.H} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return b.W > 0 && b.H > 0
}
