package facetrack

import (
	"image"

	"gocv.io/x/gocv"
)

// interNearestExact is OpenCV's INTER_NEAREST_EXACT (pixel centres, as
// PIL's nearest), which gocv v0.31 does not name.
const interNearestExact gocv.InterpolationFlags = 6

// shrink resizes src to w×h into dst, antialiased. INTER_AREA reads every
// source pixel: a 1280×720 frame costs about 0.6 ms whatever the target
// size, more than the rest of a skipped frame. When the target is more
// than taps times smaller per axis, src is first sampled at pixel centres
// down to taps×(w×h) (reading only those pixels), and that is area-averaged:
// each output pixel is then the mean of taps×taps evenly spread samples of
// its block rather than of all of them, about 6x cheaper. taps < 1 is 1.
//
// The motion grid uses it; BlazeFace's letterbox does not: with taps 2 on
// the 720p Megamind clip the front model's boxes moved (mean IoU 0.97 with
// INTER_AREA's, 3 faces of 367 missed), and a full detection is not every
// frame, so the area resize costs it about 0.2 ms a frame on average.
func shrink(src gocv.Mat, dst, scratch *gocv.Mat, w, h, taps int) {
	taps = max(taps, 1)
	if src.Cols() <= w || src.Rows() <= h {
		interp := gocv.InterpolationArea
		if src.Cols() < w || src.Rows() < h {
			interp = gocv.InterpolationLinear
		}
		gocv.Resize(src, dst, image.Pt(w, h), 0, 0, interp)
		return
	}
	if src.Cols() <= w*taps*2 || src.Rows() <= h*taps*2 {
		gocv.Resize(src, dst, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
		return
	}
	gocv.Resize(src, scratch, image.Pt(w*taps, h*taps), 0, 0, interNearestExact)
	gocv.Resize(*scratch, dst, image.Pt(w, h), 0, 0, gocv.InterpolationArea)
}
