package engine

import (
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/facetrack"
)

// TestCropWarpToWholeFactor: an aligned crop whose square is at least
// twice the crop size is warped to a whole multiple of it and shrunk by a
// block mean, at half the cost or less of warping at the square's own
// resolution (facetrack.CropAlignedFine). On the faces blazeface-back finds
// (score >= 0.5) in every frame of the sample media, the emotion head's
// class probabilities on those crops move less from the fine crops' than
// the fine crops' own move when the box shifts by one pixel: no more label
// changes, smaller largest and mean |Δp|.
func TestCropWarpToWholeFactor(t *testing.T) {
	back := newTestBlazeFace(t, "blazeface-back")
	head := newTestHead(t)
	const margin, size = 0.25, 192
	var fine, whole, shifted []facetrack.Crop
	for _, media := range int8Media {
		forEachFrame(t, media, func(_ int, img gocv.Mat) {
			dets, err := back.Detect(img)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range dets {
				// only squares the whole-factor warp takes: side ≥ 2·size
				if d.Score < 0.5 || max(d.Box.W, d.Box.H)*(1+2*margin) < 2*size {
					continue
				}
				f, err := facetrack.CropAlignedFine(img, d, margin, size)
				if err != nil {
					t.Fatal(err)
				}
				w, err := facetrack.CropAligned(img, d, margin, size)
				if err != nil {
					t.Fatal(err)
				}
				s, err := facetrack.CropAlignedFine(img, movedRight(d), margin, size)
				if err != nil {
					t.Fatal(err)
				}
				fine, whole, shifted = append(fine, f), append(whole, w), append(shifted, s)
			}
		})
	}
	if len(fine) < 30 {
		t.Fatalf("%d faces of more than %d px in the sample media: too few to compare", len(fine), 2*size)
	}
	predict := func(c []facetrack.Crop) [][]float32 {
		p, err := head.Predict(c)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	pf := predict(fine)
	w, jitter := compareProbs(pf, predict(whole)), compareProbs(pf, predict(shifted))
	t.Logf("%d crops; whole-factor warp vs fine: %v", len(fine), w)
	t.Logf("fine vs fine on the box moved 1 px: %v", jitter)
	if w.same < jitter.same || w.maxDiff >= jitter.maxDiff || w.mean() >= jitter.mean() {
		t.Errorf("the whole-factor warp moves the head's answers more than a 1 px box shift does")
	}
}
