package facetrack

/*
#cgo CXXFLAGS: --std=c++11
#include "area.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gocv.io/x/gocv"
)

// areaResize shrinks src, an 8-bit BGR Mat (a whole frame or a region of
// one), to nw×nh into dst (nw·nh·3 bytes) with the weights of OpenCV's
// INTER_AREA: each output pixel is the mean of the source area it covers,
// partial pixels weighted by how much of them it covers. The result is
// INTER_AREA's to within one grey level (float summation order), at a
// fraction of its cost: OpenCV 4.6 runs INTER_AREA with scalar code except
// at exactly half size (0.79 ms for a 720p frame into BlazeFace's 256×144
// on one core), and it is the letterbox of every detection.
func areaResize(src gocv.Mat, dst []byte, nw, nh int) error {
	if src.Type() != gocv.MatTypeCV8UC3 || nw < 1 || nh < 1 || nw > src.Cols() || nh > src.Rows() {
		return fmt.Errorf("facetrack: area resize of a %dx%d Mat of type %v to %dx%d: want 8-bit BGR, shrinking", src.Cols(), src.Rows(), src.Type(), nw, nh)
	}
	if len(dst) != nw*nh*3 {
		return fmt.Errorf("facetrack: area resize into %d bytes, want %d", len(dst), nw*nh*3)
	}
	if rc := C.edgemo_area_bgr(unsafe.Pointer(src.Ptr()), (*C.uchar)(unsafe.Pointer(&dst[0])), C.int(nw), C.int(nh)); rc != 0 {
		return fmt.Errorf("facetrack: area resize of a %dx%d Mat to %dx%d failed (%d)", src.Cols(), src.Rows(), nw, nh, int(rc))
	}
	return nil
}

// motionGrid is the motion grid in one pass (grid.cpp): what shrink to
// w×h with taps (at most 16) samples per cell side, then the BT.601
// integer luma, gives for a frame larger than 2·taps per cell, bit for bit
// (TestMotionGridIsShrinkThenLuma), without the two resizes' Mats and
// passes. grey has w·h bytes.
func motionGrid(src gocv.Mat, grey []byte, w, h, taps int) error {
	if len(grey) != w*h {
		return fmt.Errorf("facetrack: motion grid into %d bytes, want %d", len(grey), w*h)
	}
	if rc := C.edgemo_motion_grid(unsafe.Pointer(src.Ptr()), (*C.uchar)(unsafe.Pointer(&grey[0])), C.int(w), C.int(h), C.int(taps)); rc != 0 {
		return fmt.Errorf("facetrack: motion grid of a %dx%d Mat of type %v to %dx%d failed (%d): want 8-bit grey, BGR or BGRA, at least %d× the grid", src.Cols(), src.Rows(), src.Type(), w, h, int(rc), taps)
	}
	return nil
}
