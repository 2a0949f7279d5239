package facetrack

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

// gradient returns a 256×256 BGR frame with B = x, G = y, R = 200, so a
// pixel's value says where it came from.
func gradient(t *testing.T) gocv.Mat {
	t.Helper()
	pix := make([]byte, 256*256*3)
	for y := 0; y < 256; y++ {
		for x := 0; x < 256; x++ {
			o := (y*256 + x) * 3
			pix[o], pix[o+1], pix[o+2] = byte(x), byte(y), 200
		}
	}
	m, err := gocv.NewMatFromBytes(256, 256, gocv.MatTypeCV8UC3, pix)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func at(c Crop, x, y int) (b, g, r int) {
	o := (y*c.W + x) * 3
	return int(c.Pix[o]), int(c.Pix[o+1]), int(c.Pix[o+2])
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestCropFaceCentreAndSize(t *testing.T) {
	img := gradient(t)
	defer img.Close()
	for _, c := range []struct {
		box    Rect
		margin float64
		size   int
	}{
		{Rect{100, 60, 50, 70}, 0.25, 64},  // shrink (INTER_AREA)
		{Rect{30, 150, 12, 10}, 0.2, 96},   // grow (linear)
		{Rect{120.4, 33.7, 41, 41}, 0, 41}, // same size, fractional box
	} {
		crop, err := CropFace(img, c.box, c.margin, c.size)
		if err != nil {
			t.Fatal(err)
		}
		if crop.W != c.size || crop.H != c.size || len(crop.Pix) != c.size*c.size*3 {
			t.Fatalf("box %+v: crop %d×%d with %d bytes, want %d×%d", c.box, crop.W, crop.H, len(crop.Pix), c.size, c.size)
		}
		cx, cy := c.box.Center()
		b, g, r := at(crop, c.size/2, c.size/2)
		// One source pixel of rounding plus one of resize blur.
		tol := 2 + 0.5*math.Max(c.box.W, c.box.H)*(1+2*c.margin)/float64(c.size)
		if !near(float64(b), cx, tol) || !near(float64(g), cy, tol) || r != 200 {
			t.Fatalf("box %+v: crop centre pixel (B %d, G %d, R %d), want ≈ (%.1f, %.1f, 200) ±%.1f", c.box, b, g, r, cx, cy, tol)
		}
		// The crop spans side pixels: left→right B grows by ≈ side.
		side := math.Max(c.box.W, c.box.H) * (1 + 2*c.margin)
		bl, _, _ := at(crop, 0, c.size/2)
		br, _, _ := at(crop, c.size-1, c.size/2)
		if span := float64(br - bl); !near(span, side, 3+side/float64(c.size)) {
			t.Fatalf("box %+v: crop spans %.0f source pixels, want ≈ %.0f", c.box, span, side)
		}
	}
}

func TestCropFacePartlyOutside(t *testing.T) {
	img := gradient(t)
	defer img.Close()
	// Top-left corner: the square is (−34..66) in both axes.
	crop, err := CropFace(img, Rect{-30, -30, 80, 80}, 0.125, 50)
	if err != nil {
		t.Fatal(err)
	}
	if b, g, _ := at(crop, 0, 0); b != 0 || g != 0 {
		t.Fatalf("outside pixel (B %d, G %d), want the replicated corner (0, 0)", b, g)
	}
	if b, g, _ := at(crop, 25, 25); !near(float64(b), 10, 3) || !near(float64(g), 10, 3) {
		t.Fatalf("centre (B %d, G %d), want ≈ (10, 10)", b, g)
	}
	// Bottom-right corner.
	crop, err = CropFace(img, Rect{220, 230, 60, 60}, 0, 30)
	if err != nil {
		t.Fatal(err)
	}
	if b, g, _ := at(crop, 29, 29); b != 255 || g != 255 {
		t.Fatalf("outside pixel (B %d, G %d), want the replicated corner (255, 255)", b, g)
	}
	// Entirely outside, empty box, bad args: errors, not crashes.
	for _, c := range []struct {
		box    Rect
		margin float64
		size   int
	}{
		{Rect{400, 400, 50, 50}, 0.1, 32},
		{Rect{10, 10, 0, 50}, 0.1, 32},
		{Rect{math.NaN(), 10, 50, 50}, 0.1, 32},
		{Rect{10, 10, 50, 50}, -0.1, 32},
		{Rect{10, 10, 50, 50}, 0.1, 0},
		{Rect{10, 10, 5000, 5000}, 0.1, 32},
	} {
		if _, err := CropFace(img, c.box, c.margin, c.size); err == nil {
			t.Fatalf("CropFace(%+v, %g, %d) succeeded", c.box, c.margin, c.size)
		}
	}
	empty := gocv.NewMat()
	defer empty.Close()
	if _, err := CropFace(empty, Rect{0, 0, 10, 10}, 0, 8); err == nil {
		t.Fatal("crop of an empty frame succeeded")
	}
}

func TestCropAligned(t *testing.T) {
	img := gradient(t)
	defer img.Close()
	box := Rect{100, 100, 60, 60}
	plain, err := CropFace(img, box, 0.1, 48)
	if err != nil {
		t.Fatal(err)
	}
	// No keypoints, or level eyes around a box on the pixel grid: exactly
	// CropFace (the warp is then a whole-pixel shift).
	for _, kp := range [][]Point{nil, {{115, 120}}, {{115, 120}, {145, 120}}} {
		c, err := CropAligned(img, Detection{Box: box, Keypoints: kp}, 0.1, 48)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.Pix, plain.Pix) {
			t.Fatalf("keypoints %v: aligned crop differs from CropFace", kp)
		}
	}
	// Eye line pointing straight down (roll 90°): after alignment, moving
	// right in the crop moves down in the source (G grows, B stays).
	c, err := CropAligned(img, Detection{Box: box, Keypoints: []Point{{130, 115}, {130, 145}}}, 0.1, 48)
	if err != nil {
		t.Fatal(err)
	}
	b0, g0, _ := at(c, 24, 24)
	b1, g1, _ := at(c, 40, 24)
	if !near(float64(b0), 130, 3) || !near(float64(g0), 130, 3) {
		t.Fatalf("aligned centre (B %d, G %d), want ≈ (130, 130)", b0, g0)
	}
	if !near(float64(b1-b0), 0, 2) || g1-g0 < 15 {
		t.Fatalf("rightwards in the crop: ΔB %d ΔG %d, want ΔB≈0, ΔG≈+22", b1-b0, g1-g0)
	}
	// 30° roll: the right eye→left eye direction becomes the crop's +x.
	ang := 30 * math.Pi / 180
	kp := []Point{{130 - 15*math.Cos(ang), 130 - 15*math.Sin(ang)}, {130 + 15*math.Cos(ang), 130 + 15*math.Sin(ang)}}
	c, err = CropAligned(img, Detection{Box: box, Keypoints: kp}, 0.1, 48)
	if err != nil {
		t.Fatal(err)
	}
	b0, g0, _ = at(c, 24, 24)
	b1, g1, _ = at(c, 44, 24)
	got := math.Atan2(float64(g1-g0), float64(b1-b0)) * 180 / math.Pi
	if !near(got, 30, 4) {
		t.Fatalf("crop +x maps to source direction %.1f°, want 30°", got)
	}
	if c.W != 48 || len(c.Pix) != 48*48*3 {
		t.Fatalf("aligned crop %d×%d", c.W, c.H)
	}
}

// TestCropAlignedIsContinuous: a roll that changes a little changes the
// crop a little, on a real face, at every angle: 0.49° and 0.51° (either
// side of the old 0.5° cut-off, where the crop jumped to CropFace's
// whole-pixel square) differ no more than 0.51° and 0.53° do, and a box
// moved by a tenth of a pixel moves the crop by about that.
func TestCropAlignedIsContinuous(t *testing.T) {
	img := gocv.IMRead(testenv.Media(t, "messi5.jpg"), gocv.IMReadColor)
	defer img.Close()
	box := Rect{207.3, 84.6, 61.7, 61.7} // messi5's face, off the pixel grid
	crop := func(deg, dx float64) Crop {
		t.Helper()
		a := deg * math.Pi / 180
		cx, cy := box.Center()
		kp := []Point{{cx - 15*math.Cos(a), cy - 15*math.Sin(a)}, {cx + 15*math.Cos(a), cy + 15*math.Sin(a)}}
		b := box
		b.X += dx
		c, err := CropAligned(img, Detection{Box: b, Keypoints: kp}, 0.25, 64)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	diff := func(a, b Crop) float64 {
		var sum float64
		for i := range a.Pix {
			sum += math.Abs(float64(a.Pix[i]) - float64(b.Pix[i]))
		}
		return sum / float64(len(a.Pix))
	}
	across, beside := diff(crop(0.49, 0), crop(0.51, 0)), diff(crop(0.51, 0), crop(0.53, 0))
	shift := diff(crop(0.2, 0), crop(0.2, 0.1))
	t.Logf("mean |Δ| grey levels: 0.49°→0.51° %.3f, 0.51°→0.53° %.3f, box +0.1 px %.3f", across, beside, shift)
	if across > 2*beside+0.05 || shift > 2 {
		t.Fatalf("the crop jumps: 0.49°→0.51° %.3f against 0.51°→0.53° %.3f, a 0.1 px shift %.3f", across, beside, shift)
	}
}

// TestCropAlignedWholeFactorGeometry: the cheaper warps (straight to the
// size from 1× to 2× it; from 2×, a block mean by the whole factor first,
// then the warp) put every source pixel where the fine warp puts it, rolled
// or not, inside the frame or hanging over its edge (border replication):
// on the gradient, where a pixel's value says where it came from, they
// agree with CropAlignedFine to within a grey level or two, axis by axis.
func TestCropAlignedWholeFactorGeometry(t *testing.T) {
	img := gradient(t)
	defer img.Close()
	const size = 24
	for _, c := range []struct {
		name   string
		cx, cy float64
		side   float64 // the box's; the square is 1.2× it (margin 0.1)
		// Largest |Δ| allowed: 2 inside the frame; over its edge the
		// replicated border is the edge block's mean, not the edge pixel,
		// up to the factor away on the gradient.
		worst float64
	}{
		{"1.5x, inside", 128, 128, 30, 2},
		{"2.5x, inside", 128, 128, 50, 2},
		{"3.5x, inside", 120.3, 131.7, 70, 2},
		{"5x, inside", 128, 128, 100, 2},
		{"3x, over the top-left corner", 20, 15, 60, 3},
		{"3x, over the right edge", 240, 128, 60, 3},
		{"9x, wider than the frame", 128, 128, 180, 9},
	} {
		for _, deg := range []float64{0, 12, 30} {
			a := deg * math.Pi / 180
			kp := []Point{{c.cx - 15*math.Cos(a), c.cy - 15*math.Sin(a)}, {c.cx + 15*math.Cos(a), c.cy + 15*math.Sin(a)}}
			det := Detection{Box: Rect{c.cx - c.side/2, c.cy - c.side/2, c.side, c.side}, Keypoints: kp}
			fine, err := CropAlignedFine(img, det, 0.1, size)
			if err != nil {
				t.Fatal(err)
			}
			got, err := CropAligned(img, det, 0.1, size)
			if err != nil {
				t.Fatal(err)
			}
			// B says x and G says y: each channel's own mean, so a shift
			// along one axis is not diluted by the other two.
			for ch, axis := range []string{"x (B)", "y (G)"} {
				var sum, worst float64
				for i := ch; i < len(fine.Pix); i += 3 {
					d := math.Abs(float64(fine.Pix[i]) - float64(got.Pix[i]))
					sum, worst = sum+d, max(worst, d)
				}
				if mean := sum / float64(len(fine.Pix)/3); mean > 0.6 || worst > c.worst {
					t.Errorf("%s, roll %g°: %s |Δ| mean %.2f, max %.0f against the fine warp, want ≤ 0.6 and ≤ %g", c.name, deg, axis, mean, worst, c.worst)
				}
			}
		}
	}
}

func TestCropGrayInput(t *testing.T) {
	img := gradient(t)
	defer img.Close()
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(img, &gray, gocv.ColorBGRToGray)
	c, err := CropFace(gray, Rect{50, 50, 40, 40}, 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	if b, g, r := at(c, 10, 10); b != g || g != r {
		t.Fatalf("gray input gave a non-gray BGR pixel %d %d %d", b, g, r)
	}
}

// go test -tags matprofile -run '^$' -bench CropAligned ./facetrack/
// An aligned 192 px crop of a rolled face, warped at the square's own
// resolution (fine) against straight to 192, block-meaned first from 384
// (the default), for squares of 225, 450 and 675 px on a 720p frame.
func BenchmarkCropAligned(b *testing.B) {
	frame := testFrame(b)
	defer frame.Close()
	for _, side := range []float64{150, 300, 450} {
		det := Detection{Box: Rect{X: 400, Y: 150, W: side, H: side}, Keypoints: []Point{{X: 400 + side*0.3, Y: 150 + side*0.4}, {X: 400 + side*0.7, Y: 150 + side*0.43}}}
		for _, v := range []struct {
			name string
			crop func(gocv.Mat, Detection, float64, int) (Crop, error)
		}{{"fine", CropAlignedFine}, {"whole", CropAligned}} {
			b.Run(fmt.Sprintf("square-%d/%s", int(side*1.5), v.name), func(b *testing.B) {
				for b.Loop() {
					if _, err := v.crop(frame, det, 0.25, 192); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
