package audience

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/engine/tree"
)

// Cone is the looking cone: a face looks at the camera or screen when its
// head pose lies within Yaw and Pitch degrees of (YawOffset, PitchOffset)
// and its eyes are open. The offsets are the head pose of a face looking at
// the screen's centre: 0, 0 with the camera in the screen; a kiosk camera
// mounted above its screen sees a face reading the screen pitched down
// (negative pitch, as the face mesh measures it), one below it pitched up.
type Cone struct {
	Yaw, Pitch             float64 // half-angles, degrees
	YawOffset, PitchOffset float64 // degrees
}

// Defaults, in the face mesh's degrees, measured on the sample media
// (engine/audience/README.md): the mesh reads frontal faces as pitch
// −19° to −5° (the astronaut −11°) and a three-quarter view that is turned about 35° by eye
// as yaw 13° to 21° (its depth axis is compressed, so it reads about half
// of a turn). The default cone is centred on the frontal pitch and lets
// through what looks frontal by eye.
const (
	DefaultYaw         = 12
	DefaultPitch       = 15
	DefaultPitchOffset = -10
	// maxClosure: eyes closed this far (0 open as at rest, 1 shut) are not
	// looking; the mesh's blink threshold (engine/cues.go closedRatio).
	maxClosure = 0.5
)

// DefaultCone is the cone of the zero Cone.
func DefaultCone() Cone {
	return Cone{Yaw: DefaultYaw, Pitch: DefaultPitch, PitchOffset: DefaultPitchOffset}
}

// Validate names the first bad field.
func (c Cone) Validate() error {
	for _, f := range []struct {
		name      string
		v, lo, hi float64
	}{{"yaw", c.Yaw, 1, 90}, {"pitch", c.Pitch, 1, 90}, {"yaw_offset", c.YawOffset, -90, 90}, {"pitch_offset", c.PitchOffset, -90, 90}} {
		if math.IsNaN(f.v) || f.v < f.lo || f.v > f.hi {
			return fmt.Errorf("attention.%s: %v: must be between %v and %v degrees", f.name, f.v, f.lo, f.hi)
		}
	}
	return nil
}

// Looking judges one sample.
func (c Cone) Looking(g tree.Gaze) bool {
	return math.Abs(g.Yaw-c.YawOffset) <= c.Yaw && math.Abs(g.Pitch-c.PitchOffset) <= c.Pitch && g.Closure < maxClosure
}
