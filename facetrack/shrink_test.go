package facetrack

import (
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

// hd720 is the astronaut photo scaled to 1280×720: a natural picture at a
// camera's size.
func hd720(tb testing.TB) gocv.Mat {
	tb.Helper()
	img := gocv.IMRead(testenv.Media(tb, "astronaut.png"), gocv.IMReadColor)
	defer img.Close()
	if img.Empty() {
		tb.Fatal("astronaut.png did not decode")
	}
	out := gocv.NewMat()
	gocv.Resize(img, &out, image.Pt(1280, 720), 0, 0, gocv.InterpolationCubic)
	return out
}

// The sampled shrink stays close to a full INTER_AREA on a real picture:
// the motion grid sees the same scene, at a sixth of the cost
// (BenchmarkShrink).
func TestShrinkIsCloseToArea(t *testing.T) {
	src := hd720(t)
	defer src.Close()
	area, got, scratch := gocv.NewMat(), gocv.NewMat(), gocv.NewMat()
	defer area.Close()
	defer got.Close()
	defer scratch.Close()
	gocv.Resize(src, &area, image.Pt(80, 45), 0, 0, gocv.InterpolationArea)
	shrink(src, &got, &scratch, 80, 45, MotionTaps)
	if got.Cols() != 80 || got.Rows() != 45 || got.Channels() != 3 {
		t.Fatalf("shrink gave %dx%dx%d, want 80x45x3", got.Cols(), got.Rows(), got.Channels())
	}
	a, _ := area.DataPtrUint8()
	g, _ := got.DataPtrUint8()
	var sum, worst float64
	for i := range a {
		d := math.Abs(float64(a[i]) - float64(g[i]))
		sum += d
		worst = max(worst, d)
	}
	mean := sum / float64(len(a))
	t.Logf("shrink vs INTER_AREA on 80x45: mean |diff| %.2f, max %.0f grey levels", mean, worst)
	// The motion gate's default cell threshold is 12 levels: a still scene
	// must stay well under it on average.
	if mean > 3 {
		t.Fatalf("mean |diff| %.2f grey levels against INTER_AREA, want <= 3", mean)
	}
	// Too small to sample: plain INTER_AREA.
	small := gocv.NewMat()
	defer small.Close()
	gocv.Resize(src, &small, image.Pt(320, 180), 0, 0, gocv.InterpolationArea)
	shrink(small, &got, &scratch, 80, 45, MotionTaps)
	want := gocv.NewMat()
	defer want.Close()
	gocv.Resize(small, &want, image.Pt(80, 45), 0, 0, gocv.InterpolationArea)
	diff := gocv.NewMat()
	defer diff.Close()
	gocv.AbsDiff(got, want, &diff)
	if n := gocv.CountNonZero(diff.Reshape(1, 0)); n != 0 {
		t.Fatalf("a 320x180 source: %d values differ from INTER_AREA, want the same resize", n)
	}
}

// go test -run '^$' -bench Shrink ./facetrack/
// The motion grid's resize from 720p: INTER_AREA against the sampled shrink.
func BenchmarkShrink(b *testing.B) {
	src := hd720(b)
	defer src.Close()
	dst, scratch := gocv.NewMat(), gocv.NewMat()
	defer dst.Close()
	defer scratch.Close()
	b.Run("area", func(b *testing.B) {
		for b.Loop() {
			gocv.Resize(src, &dst, image.Pt(80, 45), 0, 0, gocv.InterpolationArea)
		}
	})
	b.Run("shrink", func(b *testing.B) {
		for b.Loop() {
			shrink(src, &dst, &scratch, 80, 45, MotionTaps)
		}
	})
	grey := make([]byte, 80*45)
	b.Run("grid", func(b *testing.B) { // what Motion runs: shrink and luma in one pass
		for b.Loop() {
			if err := motionGrid(src, grey, 80, 45, MotionTaps); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// shrinkLuma is the motion grid the long way: shrink, then BT.601 luma.
func shrinkLuma(src gocv.Mat, w, h int) []byte {
	small, scratch := gocv.NewMat(), gocv.NewMat()
	defer small.Close()
	defer scratch.Close()
	shrink(src, &small, &scratch, w, h, MotionTaps)
	pix, _ := small.DataPtrUint8()
	out := make([]byte, w*h)
	luma(out, pix, small.Channels())
	return out
}

// The one-pass motion grid is shrink then luma, bit for bit: on a photo
// and on noise (where any misplaced sample or rounding shows), in BGR,
// BGRA and grey, at camera sizes that divide into the grid and ones that
// do not, and on a region of a frame (rows not contiguous).
func TestMotionGridIsShrinkThenLuma(t *testing.T) {
	photo := hd720(t)
	defer photo.Close()
	noise := noiseFrame(1920, 1080)
	defer noise.Close()
	type pic struct {
		name string
		mat  gocv.Mat
	}
	var pics []pic
	add := func(name string, m gocv.Mat) { pics = append(pics, pic{name, m}) }
	add("photo 1280x720", photo.Clone())
	add("noise 1920x1080", noise.Clone())
	add("noise region 1001x563", noise.Region(image.Rect(13, 7, 1014, 570)))
	odd := gocv.NewMat()
	gocv.Resize(photo, &odd, image.Pt(1279, 721), 0, 0, gocv.InterpolationLinear)
	add("photo 1279x721", odd)
	bgra, grey := gocv.NewMat(), gocv.NewMat()
	gocv.CvtColor(photo, &bgra, gocv.ColorBGRToBGRA)
	gocv.CvtColor(noise, &grey, gocv.ColorBGRToGray)
	add("photo BGRA", bgra)
	add("noise grey", grey)
	for _, p := range pics {
		w := MotionCells
		h := max(1, (p.mat.Rows()*w+p.mat.Cols()/2)/p.mat.Cols())
		want := shrinkLuma(p.mat, w, h)
		got := make([]byte, w*h)
		if err := motionGrid(p.mat, got, w, h, MotionTaps); err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		off := 0
		for i := range got {
			if got[i] != want[i] {
				if off == 0 {
					t.Errorf("%s: cell %d (%d,%d) is %d, shrink then luma gives %d", p.name, i, i%w, i/w, got[i], want[i])
				}
				off++
			}
		}
		if off > 0 {
			t.Errorf("%s: %d of %d cells differ", p.name, off, len(got))
		}
		p.mat.Close()
	}
	if err := motionGrid(photo, make([]byte, 10), 80, 45, MotionTaps); err == nil {
		t.Error("a short grid was accepted")
	}
	if err := motionGrid(photo, make([]byte, 2000*10), 2000, 10, MotionTaps); err == nil {
		t.Error("a grid wider than the frame's samples was accepted")
	}
}
