package facetrack

import (
	"fmt"
	"image"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

// testFrame is messi5.jpg scaled into a 1280×720 frame.
func testFrame(tb testing.TB) gocv.Mat {
	tb.Helper()
	img := gocv.IMRead(testenv.Media(tb, "messi5.jpg"), gocv.IMReadColor)
	defer img.Close()
	frame := gocv.NewMat()
	gocv.Resize(img, &frame, image.Pt(1280, 720), 0, 0, gocv.InterpolationLinear)
	return frame
}

// noiseFrame is a w×h BGR frame of uniform noise: where a misplaced sample
// or a rounding difference shows most.
func noiseFrame(w, h int) gocv.Mat {
	m := gocv.NewMatWithSize(h, w, gocv.MatTypeCV8UC3)
	gocv.RandU(&m, gocv.NewScalar(0, 0, 0, 0), gocv.NewScalar(255, 255, 255, 0))
	return m
}

// areaCases are the letterbox's shapes: whole frames into 256 and 128
// squares (integer and not) and region checks' squares of every size.
var areaCases = []struct {
	roi    image.Rectangle
	nw, nh int
}{
	{image.Rect(0, 0, 1280, 720), 256, 144},
	{image.Rect(0, 0, 1280, 720), 128, 72},
	{image.Rect(0, 0, 1280, 720), 255, 143},
	{image.Rect(301, 97, 501, 297), 128, 128},
	{image.Rect(300, 50, 556, 306), 128, 128},
	{image.Rect(411, 33, 711, 333), 128, 128},
	{image.Rect(700, 120, 1150, 570), 128, 128},
	{image.Rect(600, 100, 1200, 700), 128, 128},
	{image.Rect(0, 600, 173, 720), 128, 89},
	// whole factors (the block-mean path): 3×, 4× (an even area, where
	// rounding ties), 7×, and unequal factors per axis
	{image.Rect(17, 9, 401, 393), 128, 128},
	{image.Rect(100, 100, 612, 612), 128, 128},
	{image.Rect(0, 0, 896, 504), 128, 72},
	{image.Rect(0, 0, 1280, 720), 128, 144},
}

// TestAreaResizeIsInterArea: areaResize gives OpenCV's INTER_AREA to within
// one grey level, on whole frames and on regions of them, on a photo and on
// noise (where rounding differences show most).
func TestAreaResizeIsInterArea(t *testing.T) {
	photo := testFrame(t)
	defer photo.Close()
	noise := noiseFrame(1280, 720)
	defer noise.Close()
	want := gocv.NewMat()
	defer want.Close()
	for name, frame := range map[string]gocv.Mat{"photo": photo, "noise": noise} {
		for _, c := range areaCases {
			src := frame.Region(c.roi)
			gocv.Resize(src, &want, image.Pt(c.nw, c.nh), 0, 0, gocv.InterpolationArea)
			ref, err := want.DataPtrUint8()
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, c.nw*c.nh*3)
			if err := areaResize(src, got, c.nw, c.nh); err != nil {
				t.Fatal(err)
			}
			src.Close()
			var off, worst int
			for i := range got {
				d := int(got[i]) - int(ref[i])
				if d != 0 {
					off++
				}
				worst = max(worst, d, -d)
			}
			if worst > 1 || off*100 > len(got) {
				t.Errorf("%s %v → %dx%d: %d of %d bytes differ from INTER_AREA, by up to %d", name, c.roi, c.nw, c.nh, off, len(got), worst)
			}
		}
	}
	// what it refuses
	if err := areaResize(photo, make([]byte, 3*2000*10), 2000, 10); err == nil {
		t.Error("a resize that grows was accepted")
	}
	if err := areaResize(photo, make([]byte, 10), 256, 144); err == nil {
		t.Error("a short destination was accepted")
	}
}

// go test -tags matprofile -run '^$' -bench AreaResize ./facetrack/
// areaResize against OpenCV's INTER_AREA on the letterbox's shapes.
func BenchmarkAreaResize(b *testing.B) {
	frame := testFrame(b)
	defer frame.Close()
	dst := gocv.NewMat()
	defer dst.Close()
	for _, c := range areaCases {
		name := fmt.Sprintf("%dx%d-to-%dx%d", c.roi.Dx(), c.roi.Dy(), c.nw, c.nh)
		src := frame.Region(c.roi)
		b.Run(name+"/inter-area", func(b *testing.B) {
			for range b.N {
				gocv.Resize(src, &dst, image.Pt(c.nw, c.nh), 0, 0, gocv.InterpolationArea)
			}
		})
		buf := make([]byte, c.nw*c.nh*3)
		b.Run(name+"/area", func(b *testing.B) {
			for range b.N {
				if err := areaResize(src, buf, c.nw, c.nh); err != nil {
					b.Fatal(err)
				}
			}
		})
		src.Close()
	}
}
