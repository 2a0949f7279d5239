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
	shrink(src, &got, &scratch, 80, 45, motionTaps)
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
	shrink(small, &got, &scratch, 80, 45, motionTaps)
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
			shrink(src, &dst, &scratch, 80, 45, motionTaps)
		}
	})
}
