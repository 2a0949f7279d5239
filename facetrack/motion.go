package facetrack

import (
	"errors"
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// MotionCells is the width of the motion grid: a frame is averaged down to
// MotionCells columns (a 1280-wide frame: 16×16 px blocks, each the mean of
// MotionTaps² samples spread over it), so sensor noise averages out and the
// difference costs two small resizes.
const MotionCells = 80

// MotionTaps: samples per cell side (shrink).
const MotionTaps = 4

// Grey is a frame's motion grid made elsewhere: the decoder's, from the
// picture's luma plane (capture.LumaGrid), MotionCells columns of the
// mean of MotionTaps² samples, full-range grey.
type Grey struct {
	W, H int
	Pix  []uint8
}

// Motion measures how much of a frame changed since a reference frame, on a
// downscaled grey copy. The reference is the frame of the last full
// detection (Commit): slow changes accumulate until they count, and a face
// that walked in slowly is not missed.
type Motion struct {
	// PixelDelta: a cell has changed when its grey level differs from the
	// reference by more than this (0..255).
	PixelDelta int

	small, sampled gocv.Mat
	cur, ref       []uint8
	w, h           int
	hasRef         bool
	curGrey        bool // cur came from a Grey, not the frame
	refGrey        bool // and ref
}

// NewMotion returns a motion meter; pixelDelta 0 takes 12.
func NewMotion(pixelDelta int) *Motion {
	if pixelDelta <= 0 {
		pixelDelta = 12
	}
	return &Motion{PixelDelta: pixelDelta, small: gocv.NewMat(), sampled: gocv.NewMat()}
}

// Measure downsizes img (BGR, BGRA or grey) and returns the fraction of
// grid cells that changed against the reference and lie outside every box
// in keep (source pixels, each grown by half its size per side and by three
// heights downwards, where the face's body moves). grey, when it is the
// grid of img's size, is used instead of downsizing img (the decoder made
// it from the luma plane); nil or another size: img is downsized. Without
// a reference (first frame, a new frame size, or a grid made the other way
// than the reference's) it returns 1: everything is new.
func (m *Motion) Measure(img gocv.Mat, grey *Grey, keep []Rect) (float64, error) {
	if img.Empty() {
		return 0, errors.New("facetrack: motion got an empty frame")
	}
	W, H := img.Cols(), img.Rows()
	w := min(MotionCells, W)
	h := max(1, (H*w+W/2)/W)
	if w != m.w || h != m.h {
		m.w, m.h, m.hasRef = w, h, false
		m.cur, m.ref = make([]uint8, w*h), make([]uint8, w*h)
	}
	m.curGrey = grey != nil && grey.W == w && grey.H == h && len(grey.Pix) >= w*h
	if m.curGrey {
		copy(m.cur, grey.Pix[:w*h])
	} else if err := m.grid(img, w, h); err != nil {
		return 0, err
	}
	if !m.hasRef || m.refGrey != m.curGrey {
		return 1, nil
	}
	sx, sy := float64(w)/float64(W), float64(h)/float64(H)
	var masked []image.Rectangle
	for _, b := range keep {
		masked = append(masked, image.Rect(int((b.X-b.W/2)*sx), int((b.Y-b.H/2)*sy), int((b.X+1.5*b.W)*sx)+1, int((b.Y+4*b.H)*sy)+1))
	}
	changed := 0
	for y := range h {
		for x := range w {
			d := int(m.cur[y*w+x]) - int(m.ref[y*w+x])
			if d <= m.PixelDelta && d >= -m.PixelDelta {
				continue
			}
			inside := false
			for _, r := range masked {
				if image.Pt(x, y).In(r) {
					inside = true
					break
				}
			}
			if !inside {
				changed++
			}
		}
	}
	return float64(changed) / float64(w*h), nil
}

// grid fills m.cur with img's w×h grey grid: the per-channel mean of
// MotionTaps² samples per cell, then BT.601 integer luma. A camera-sized
// 8-bit frame takes one C pass over the sampled pixels (motionGrid); a
// frame too small to sample, or of another depth, goes through shrink.
func (m *Motion) grid(img gocv.Mat, w, h int) error {
	ch := img.Channels()
	if ch != 1 && ch != 3 && ch != 4 {
		return fmt.Errorf("facetrack: motion: %d channels, want 1, 3 or 4", ch)
	}
	if img.Cols() > w*MotionTaps*2 && img.Rows() > h*MotionTaps*2 && img.Type()&7 == 0 /* CV_8U */ {
		return motionGrid(img, m.cur, w, h, MotionTaps)
	}
	shrink(img, &m.small, &m.sampled, w, h, MotionTaps)
	if m.small.Cols() != w || m.small.Rows() != h || !m.small.IsContinuous() {
		return fmt.Errorf("facetrack: motion resize gave %dx%d, want %dx%d", m.small.Cols(), m.small.Rows(), w, h)
	}
	pix, err := m.small.DataPtrUint8()
	if err != nil {
		return fmt.Errorf("facetrack: motion: %w", err)
	}
	luma(m.cur, pix, ch)
	return nil
}

// luma writes the grey of len(grey) pixels of ch channels (1, 3 or 4):
// grey as is, colour as BT.601 integer luma, as grid.cpp computes it.
func luma(grey, pix []byte, ch int) {
	if ch == 1 {
		copy(grey, pix)
		return
	}
	for i := range grey {
		b, g, r := int(pix[ch*i]), int(pix[ch*i+1]), int(pix[ch*i+2])
		grey[i] = uint8((29*b + 150*g + 77*r) >> 8)
	}
}

// Commit makes the last measured frame the reference.
func (m *Motion) Commit() {
	if m.w == 0 {
		return
	}
	copy(m.ref, m.cur)
	m.hasRef, m.refGrey = true, m.curGrey
}

// Close releases the scratch Mat.
func (m *Motion) Close() error { return errors.Join(m.small.Close(), m.sampled.Close()) }
