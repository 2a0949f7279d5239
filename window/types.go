package window

import (
	"time"

	"github.com/edgemo/edgemo/facetrack"
)

// Sample is one aligned face crop of one track at one instant.
type Sample struct {
	FrameSeq uint64 // capture.Frame.Seq the crop came from
	Time     time.Time
	Box      facetrack.Rect // face box in source pixels
	Score    float32
	Crop     facetrack.Crop // aligned square crop; read-only once in a window
	Roll     float64        // degrees the crop was rotated to level the eyes (0: not aligned)
}

// Window is an immutable run of samples of one track. Its slices are never
// written after emission, so it can be shared across goroutines freely.
type Window struct {
	Camera     string
	TrackID    int
	Seq        uint64 // per track, from 0
	Start, End time.Time
	FPS        float64 // target sample rate
	Samples    []Sample
	FramesSeen int // frames in which the track was detected so far
	// LastSeen is the track's latest detection when the window was
	// emitted: End, or later for a track's final window (End). Read
	// where the window is made, it is the same however far the camera's
	// frame loop has run ahead by the time the window is analysed.
	LastSeen time.Time
}
