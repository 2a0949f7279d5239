package capture

import (
	"testing"

	"gocv.io/x/gocv"
)

// FrameFromBGR copies the bytes into a BGR Mat of the given size (the
// caller's buffer can be reused at once), rejects a size or length that do
// not match, and its frame's Close leaves no Mat behind.
func TestFrameFromBGR(t *testing.T) {
	defer leakCheck(t)()
	const w, h = 5, 3
	bgr := make([]byte, w*h*3)
	for i := range bgr {
		bgr[i] = byte(i)
	}
	f, err := FrameFromBGR(w, h, bgr)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := range bgr {
		bgr[i] = 0 // the frame must not share the buffer
	}
	if f.Mat.Cols() != w || f.Mat.Rows() != h || f.Mat.Type() != gocv.MatTypeCV8UC3 {
		t.Fatalf("Mat %d×%d type %v, want %d×%d CV_8UC3", f.Mat.Cols(), f.Mat.Rows(), f.Mat.Type(), w, h)
	}
	// Pixel (x=4, y=2), channel 2 (red) is byte (2*w+4)*3+2.
	if v := f.Mat.GetVecbAt(2, 4); v[0] != 42 || v[1] != 43 || v[2] != 44 {
		t.Fatalf("pixel (4,2) = %v, want [42 43 44]", v)
	}
	f.Close()

	for _, c := range []struct {
		w, h, n int
	}{{w, h, w*h*3 - 1}, {w, h, w * h * 4}, {0, h, 0}, {w, -1, 0}} {
		if f, err := FrameFromBGR(c.w, c.h, make([]byte, c.n)); err == nil {
			f.Close()
			t.Errorf("FrameFromBGR(%d, %d, %d bytes) gave no error", c.w, c.h, c.n)
		}
	}
}
