package engine

import (
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/facetrack"
)

// TestCropWarpToWholeFactor: an aligned crop whose square is at least the
// crop size is warped straight to the size, from twice the size after a
// block mean of the frame by the whole factor side/size: a quarter of the
// warp's pixels or less against warping at the square's own resolution
// (facetrack.CropAlignedFine). On the faces blazeface-back finds (score >=
// 0.5) in every frame of the sample media, in both ranges, the emotion
// head's class probabilities on those crops move less from the fine crops'
// than the fine crops' own move when the box shifts by one pixel: no more
// label changes, smaller largest and mean |Δp|.
func TestCropWarpToWholeFactor(t *testing.T) {
	back := newTestBlazeFace(t, "blazeface-back")
	head := newTestHead(t)
	const margin, size = 0.25, 192
	type crops struct{ fine, whole, shifted []facetrack.Crop }
	ranges := []struct {
		name     string
		from, to float64 // the square's side
		min      int     // faces the sample media has in the range
		got      crops
	}{
		{"direct warp to the size (side 1–2× size)", size, 2 * size, 100, crops{}},
		{"block mean by k, then warp to the size (side ≥ 2× size)", 2 * size, 1e9, 30, crops{}},
	}
	for _, media := range int8Media {
		forEachFrame(t, media, func(_ int, img gocv.Mat) {
			dets, err := back.Detect(img)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range dets {
				side := max(d.Box.W, d.Box.H) * (1 + 2*margin)
				for i := range ranges {
					r := &ranges[i]
					if d.Score < 0.5 || side < r.from || side >= r.to {
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
					r.got.fine, r.got.whole, r.got.shifted = append(r.got.fine, f), append(r.got.whole, w), append(r.got.shifted, s)
				}
			}
		})
	}
	predict := func(c []facetrack.Crop) [][]float32 {
		p, err := head.Predict(c)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, r := range ranges {
		t.Run(r.name, func(t *testing.T) {
			if len(r.got.fine) < r.min {
				t.Fatalf("%d faces in the sample media: too few to compare (want %d)", len(r.got.fine), r.min)
			}
			pf := predict(r.got.fine)
			w, jitter := compareProbs(pf, predict(r.got.whole)), compareProbs(pf, predict(r.got.shifted))
			t.Logf("%d crops; whole-factor warp vs fine: %v", len(r.got.fine), w)
			t.Logf("fine vs fine on the box moved 1 px: %v", jitter)
			if w.same < jitter.same || w.maxDiff >= jitter.maxDiff || w.mean() >= jitter.mean() {
				t.Errorf("the whole-factor warp moves the head's answers more than a 1 px box shift does")
			}
		})
	}
}
