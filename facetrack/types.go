// Package facetrack finds faces in frames (BlazeFace, Haar), follows them
// over time with stable IDs (a Kalman + Hungarian tracker) and cuts square,
// roll-aligned crops for the windows downstream. It knows nothing about
// emotions.
package facetrack

import (
	"math"

	"gocv.io/x/gocv"
)

// Rect is an axis-aligned box in source pixels.
type Rect struct{ X, Y, W, H float64 }

func (r Rect) Area() float64 { return math.Max(r.W, 0) * math.Max(r.H, 0) }

// Center returns the box centre.
func (r Rect) Center() (float64, float64) { return r.X + r.W/2, r.Y + r.H/2 }

// IoU is intersection over union; 0 for disjoint or empty boxes.
func (r Rect) IoU(o Rect) float64 {
	x1, y1 := math.Max(r.X, o.X), math.Max(r.Y, o.Y)
	x2, y2 := math.Min(r.X+r.W, o.X+o.W), math.Min(r.Y+r.H, o.Y+o.H)
	if x2 <= x1 || y2 <= y1 {
		return 0
	}
	inter := (x2 - x1) * (y2 - y1)
	u := r.Area() + o.Area() - inter
	if u <= 0 {
		return 0
	}
	return inter / u
}

// Point is a keypoint in source pixels.
type Point struct{ X, Y float64 }

// Detection is one face found in one frame.
type Detection struct {
	Box       Rect
	Score     float32 // 0..1; detectors without scores report 1
	Keypoints []Point // optional (BlazeFace gives 6; Haar none)
}

// Detector finds faces in a BGR frame. Implementations own their native
// resources and release them in Close.
type Detector interface {
	Name() string
	Detect(img gocv.Mat) ([]Detection, error)
	Close() error
}

// Crop is an aligned, square face image owned by Go memory (not a Mat), so
// windows can hold and share it without native lifetimes. Pix is BGR, row
// stride W*3.
type Crop struct {
	W, H int
	Pix  []byte
}
