package facetrack

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"

	"gocv.io/x/gocv"
)

// maxCropSideFactor bounds the square's side to this many times the larger
// image side, so a runaway box cannot allocate an enormous border.
const maxCropSideFactor = 4

// CropFace cuts a square face crop from a BGR frame (gray and BGRA frames are
// converted). The square is centred on box, with side
// max(box.W, box.H)·(1+2·margin), rounded to whole pixels. Parts of the
// square outside the frame are filled by border replication (the nearest edge
// pixel is repeated), which keeps a half-visible face's statistics closer to
// the real image than black would. The square is resized to size×size with
// INTER_AREA when shrinking and INTER_LINEAR when growing, and returned as
// Go-owned BGR bytes; every Mat made here is closed before returning.
//
// It fails for an empty frame, a non-finite or empty box, a box that does not
// overlap the frame, margin < 0, or size < 1.
func CropFace(img gocv.Mat, box Rect, margin float64, size int) (Crop, error) {
	side, err := checkCropArgs(img, box, margin, size)
	if err != nil {
		return Crop{}, err
	}
	src, release, err := asBGR(img)
	if err != nil {
		return Crop{}, err
	}
	defer release()

	cx, cy := box.Center()
	s := max(int(math.Round(side)), 1)
	x0 := int(math.Round(cx - float64(s)/2))
	y0 := int(math.Round(cy - float64(s)/2))
	W, H := src.Cols(), src.Rows()
	ix0, iy0 := max(x0, 0), max(y0, 0)
	ix1, iy1 := min(x0+s, W), min(y0+s, H)
	if ix1 <= ix0 || iy1 <= iy0 {
		return Crop{}, fmt.Errorf("facetrack: crop square (%d,%d %d×%d) around box %+v does not overlap the %d×%d frame", x0, y0, s, s, box, W, H)
	}

	region := src.Region(image.Rect(ix0, iy0, ix1, iy1))
	defer region.Close()
	top, bottom, left, right := iy0-y0, y0+s-iy1, ix0-x0, x0+s-ix1
	if top == 0 && bottom == 0 && left == 0 && right == 0 {
		return resizeToCrop(region, size)
	}
	padded := gocv.NewMat()
	defer padded.Close()
	gocv.CopyMakeBorder(region, &padded, top, bottom, left, right, gocv.BorderReplicate, color.RGBA{})
	return resizeToCrop(padded, size)
}

// CropAligned is CropFace with roll correction: when det has at least two
// keypoints, index 0 the right eye and index 1 the left eye (the subject's;
// BlazeFace order, so index 0 is usually the one further left in the image),
// the square is rotated about the box centre so the eye line is horizontal,
// with the right eye on the image left. Without usable eye points (fewer
// than two keypoints, coincident or non-finite ones) it is exactly
// CropFace(img, det.Box, margin, size).
//
// Every roll, however small, goes through the same sub-pixel warp, so the
// crop changes smoothly with the box and the eyes: a cut-off below which
// the crop snapped to CropFace's whole-pixel square moved it by up to half a
// pixel when the roll crossed it, and the emotion head answers that with a
// different class (sad 0.79 against 0.12 on one Megamind sample whose roll
// was 0.42° on one machine and 0.51° on another).
//
// A square of at least size is warped straight to size: from twice size,
// the part of the frame it covers is first block-meaned by the whole factor
// side/size (a cheap antialiasing shrink), so the warp, most of a crop's
// cost, always makes size² pixels (0.14–0.26 ms against 0.3–1.4 ms at the
// square's resolution, BenchmarkCropAligned). The face moves the emotion
// head less than a one pixel shift of its box does, in both ranges
// (TestCropWarpToWholeFactor), and every pixel lands where the fine warp
// puts it (TestCropAlignedWholeFactorGeometry).
// CropAlignedFine warps at the square's own resolution.
func CropAligned(img gocv.Mat, det Detection, margin float64, size int) (Crop, error) {
	return cropAligned(img, det, margin, size, true)
}

// CropAlignedFine is CropAligned warping at the square's own resolution
// before shrinking it to size, whatever its side: the finer reference the
// whole-factor warp is measured against, at up to twice the cost.
func CropAlignedFine(img gocv.Mat, det Detection, margin float64, size int) (Crop, error) {
	return cropAligned(img, det, margin, size, false)
}

func cropAligned(img gocv.Mat, det Detection, margin float64, size int, whole bool) (Crop, error) {
	angle, ok := eyeRoll(det.Keypoints)
	if !ok {
		return CropFace(img, det.Box, margin, size)
	}
	side, err := checkCropArgs(img, det.Box, margin, size)
	if err != nil {
		return Crop{}, err
	}
	src, release, err := asBGR(img)
	if err != nil {
		return Crop{}, err
	}
	defer release()
	cx, cy := det.Box.Center()
	W, H := src.Cols(), src.Rows()
	if cx+side/2 <= 0 || cy+side/2 <= 0 || cx-side/2 >= float64(W) || cy-side/2 >= float64(H) {
		return Crop{}, fmt.Errorf("facetrack: aligned crop around box %+v does not overlap the %d×%d frame", det.Box, W, H)
	}
	s := max(int(math.Round(side)), 1)
	// The warp's source, the square's centre in its pixel-centre
	// coordinates, and the square's side in its pixels.
	from, pcx, pcy, fs := src, cx-0.5, cy-0.5, float64(s)
	out := s // the warp's side
	if k := s / size; whole && k >= 1 {
		out = size
		if k >= 2 {
			small, x0, y0, ok := shrinkAround(src, cx, cy, float64(s), angle, k)
			if ok {
				defer small.Close()
				from, pcx, pcy, fs = small, (cx-float64(x0))/float64(k)-0.5, (cy-float64(y0))/float64(k)-0.5, float64(s)/float64(k)
			}
		}
	}

	// Forward map (pixel-centre coordinates), the square of side fs onto
	// out pixels: dst = (out/fs)·R(−angle)·(src − c) + (out−1)/2.
	sc := float64(out) / fs
	cos, sin := sc*math.Cos(angle), sc*math.Sin(angle)
	half := float64(out-1) / 2
	m := gocv.NewMatWithSize(2, 3, gocv.MatTypeCV64F)
	defer m.Close()
	m.SetDoubleAt(0, 0, cos)
	m.SetDoubleAt(0, 1, sin)
	m.SetDoubleAt(0, 2, half-(cos*pcx+sin*pcy))
	m.SetDoubleAt(1, 0, -sin)
	m.SetDoubleAt(1, 1, cos)
	m.SetDoubleAt(1, 2, half-(-sin*pcx+cos*pcy))

	rot := gocv.NewMat()
	defer rot.Close()
	gocv.WarpAffineWithParams(from, &rot, m, image.Pt(out, out), gocv.InterpolationLinear, gocv.BorderReplicate, color.RGBA{})
	return resizeToCrop(rot, size)
}

// shrinkAround block-means, by k, the part of src the square of side s
// centred on (cx, cy) and rolled by angle covers (its bounding box, a pixel
// more for the warp's taps, in whole blocks, clipped to src), and
// returns it with its top-left corner in src. ok is false where nothing is
// left of it.
func shrinkAround(src gocv.Mat, cx, cy, s, angle float64, k int) (small gocv.Mat, x0, y0 int, ok bool) {
	h := s/2*(math.Abs(math.Cos(angle))+math.Abs(math.Sin(angle))) + 1
	span := func(c float64, n int) (lo, blocks int) {
		lo = max(0, int(math.Floor(c-h)))
		hi := min(n, int(math.Ceil(c+h)))
		blocks = (hi - lo + k - 1) / k
		if lo+blocks*k > n { // past the far edge: end the blocks on it
			if lo = n - blocks*k; lo < 0 { // wider than src: the far edge's part block goes
				lo, blocks = 0, n/k
			}
		}
		return lo, blocks
	}
	x0, nw := span(cx, src.Cols())
	y0, nh := span(cy, src.Rows())
	if nw < 1 || nh < 1 {
		return gocv.Mat{}, 0, 0, false
	}
	region := src.Region(image.Rect(x0, y0, x0+nw*k, y0+nh*k))
	defer region.Close()
	small = gocv.NewMatWithSize(nh, nw, gocv.MatTypeCV8UC3)
	pix, err := small.DataPtrUint8()
	if err == nil {
		err = areaResize(region, pix, nw, nh)
	}
	if err != nil {
		small.Close()
		return gocv.Mat{}, 0, 0, false
	}
	return small, x0, y0, true
}

// eyeRoll returns the angle (radians, image coordinates, y down) of the line
// from the right eye (kp[0]) to the left eye (kp[1]).
func eyeRoll(kp []Point) (float64, bool) {
	if len(kp) < 2 {
		return 0, false
	}
	dx, dy := kp[1].X-kp[0].X, kp[1].Y-kp[0].Y
	if math.IsNaN(dx) || math.IsNaN(dy) || math.IsInf(dx, 0) || math.IsInf(dy, 0) || math.Hypot(dx, dy) < 1 {
		return 0, false
	}
	return math.Atan2(dy, dx), true
}

func checkCropArgs(img gocv.Mat, box Rect, margin float64, size int) (side float64, err error) {
	if img.Empty() {
		return 0, errors.New("facetrack: crop got an empty frame")
	}
	if !validBox(box) {
		return 0, fmt.Errorf("facetrack: crop got an empty or non-finite box %+v", box)
	}
	if !(margin >= 0) || math.IsInf(margin, 0) {
		return 0, fmt.Errorf("facetrack: crop margin %g must be a finite number >= 0", margin)
	}
	if size < 1 {
		return 0, fmt.Errorf("facetrack: crop size %d must be >= 1", size)
	}
	side = math.Max(box.W, box.H) * (1 + 2*margin)
	if limit := float64(maxCropSideFactor * max(img.Cols(), img.Rows())); side > limit {
		return 0, fmt.Errorf("facetrack: crop side %.0f for box %+v exceeds %.0f (%d× the frame): the box is implausible", side, box, limit, maxCropSideFactor)
	}
	return side, nil
}

// asBGR returns img as an 8-bit 3-channel Mat, converting gray or BGRA into a
// new Mat that release closes.
func asBGR(img gocv.Mat) (gocv.Mat, func(), error) {
	if img.Type()&7 != 0 {
		return gocv.Mat{}, nil, fmt.Errorf("facetrack: crop needs an 8-bit frame, got Mat type %v", img.Type())
	}
	var code gocv.ColorConversionCode
	switch ch := img.Channels(); ch {
	case 3:
		return img, func() {}, nil
	case 1:
		code = gocv.ColorGrayToBGR
	case 4:
		code = gocv.ColorBGRAToBGR
	default:
		return gocv.Mat{}, nil, fmt.Errorf("facetrack: crop needs a 1, 3 or 4 channel frame, got %d", ch)
	}
	out := gocv.NewMat()
	gocv.CvtColor(img, &out, code)
	return out, func() { out.Close() }, nil
}

// resizeToCrop resizes src to size×size (INTER_AREA when shrinking, linear
// when growing) and copies the pixels into Go memory.
func resizeToCrop(src gocv.Mat, size int) (Crop, error) {
	if src.Type() == gocv.MatTypeCV8UC3 && src.Cols() == size && src.Rows() == size && src.IsContinuous() {
		return Crop{W: size, H: size, Pix: src.ToBytes()}, nil // already the crop (a warp straight to size)
	}
	if src.Type() == gocv.MatTypeCV8UC3 && src.Cols() >= size && src.Rows() >= size {
		// Shrinking, INTER_AREA's weights in our faster code (area.go),
		// straight into the crop's Go memory.
		pix := make([]byte, size*size*3)
		if err := areaResize(src, pix, size, size); err != nil {
			return Crop{}, err
		}
		return Crop{W: size, H: size, Pix: pix}, nil
	}
	interp := gocv.InterpolationLinear
	if src.Cols() > size || src.Rows() > size {
		interp = gocv.InterpolationArea
	}
	dst := gocv.NewMat()
	defer dst.Close()
	gocv.Resize(src, &dst, image.Pt(size, size), 0, 0, interp)
	if dst.Cols() != size || dst.Rows() != size || dst.Channels() != 3 || !dst.IsContinuous() {
		return Crop{}, fmt.Errorf("facetrack: crop resize gave %d×%d×%d, want %d×%d×3", dst.Cols(), dst.Rows(), dst.Channels(), size, size)
	}
	pix := dst.ToBytes() // copies into Go memory
	if len(pix) != size*size*3 {
		return Crop{}, fmt.Errorf("facetrack: crop has %d bytes, want %d", len(pix), size*size*3)
	}
	return Crop{W: size, H: size, Pix: pix}, nil
}
