package facetrack

import (
	"image"
	"image/color"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

// Motion counts the grid cells that changed against the last committed
// frame, except those over (or below) the boxes it is told to keep.
func TestMotionMeasuresChangeOutsideKeptBoxes(t *testing.T) {
	mats := testenv.MatCount(t)
	m := NewMotion(0)
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 100, 100, 0), 720, 1280, gocv.MatTypeCV8UC3)
	defer frame.Close()
	if f, err := m.Measure(frame, nil, nil); err != nil || f != 1 {
		t.Fatalf("first frame: %v %v, want 1 (no reference yet)", f, err)
	}
	m.Commit()
	if f, _ := m.Measure(frame, nil, nil); f != 0 {
		t.Fatalf("same frame: %v changed, want 0", f)
	}
	// A 160×160 bright patch: 10×10 of the 80×45 cells.
	gocv.Rectangle(&frame, image.Rect(320, 160, 480, 320), color.RGBA{250, 250, 250, 0}, -1)
	f, _ := m.Measure(frame, nil, nil)
	if want := 100.0 / (80 * 45); f < want*0.9 || f > want*1.3 {
		t.Fatalf("patch: %v changed, want about %v", f, want)
	}
	if f, _ := m.Measure(frame, nil, []Rect{{320, 160, 160, 160}}); f != 0 {
		t.Fatalf("patch under a kept box: %v changed, want 0", f)
	}
	m.Close()
	if got := testenv.MatCount(t); got != mats+1 { // frame is closed by the defer
		t.Fatalf("Mat leak: %d live Mats, want %d", got, mats+1)
	}
}

// A decoder's grid of the frame's size stands in for the frame: its cells
// are compared, not the frame's. One of another size is ignored, and a
// grid compared against a reference made from the frame (or the other way
// round) counts as no reference, since the two are not the same numbers.
func TestMotionUsesTheDecodersGrid(t *testing.T) {
	m := NewMotion(0)
	defer m.Close()
	frame := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(100, 100, 100, 0), 720, 1280, gocv.MatTypeCV8UC3)
	defer frame.Close()
	grey := &Grey{W: 80, H: 45, Pix: make([]uint8, 80*45)}
	for i := range grey.Pix {
		grey.Pix[i] = 100
	}
	if f, _ := m.Measure(frame, grey, nil); f != 1 {
		t.Fatalf("first grid: %v, want 1", f)
	}
	m.Commit()
	for i := range 10 { // ten cells brighter in the grid; the frame unchanged
		grey.Pix[i] = 200
	}
	if f, _ := m.Measure(frame, grey, nil); f != 10.0/(80*45) {
		t.Fatalf("grid with 10 cells changed: %v, want %v", f, 10.0/(80*45))
	}
	if f, _ := m.Measure(frame, &Grey{W: 40, H: 45, Pix: grey.Pix}, nil); f != 1 {
		t.Fatalf("grid of another size against a grid reference: %v, want 1 (made from the frame: no reference)", f)
	}
	m.Commit()
	if f, _ := m.Measure(frame, nil, nil); f != 0 {
		t.Fatalf("frame against the frame's reference: %v, want 0", f)
	}
}
