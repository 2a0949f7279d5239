package engine

import (
	"fmt"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/facetrack"
)

// TestRegionWholeFactorFindsWhatFittingFinds: region checks shrink a
// region by a whole factor (a plain block mean, several times cheaper to
// compute) where fitting it to the input would scale it within a quarter of
// that. On the region of every face blazeface-back finds in the sample
// media (every 4th frame), the front model finds the same faces either way,
// and the boxes and scores move less than they do when the fitted region
// is grown by 10% (the error of a track's predicted box that a region
// absorbs): as many faces in every region, a higher minimum and mean IoU,
// a lower mean score difference. The figures are logged.
func TestRegionWholeFactorFindsWhatFittingFinds(t *testing.T) {
	back := newTestBlazeFace(t, "blazeface-back")
	whole := newTestBlazeFace(t, "blazeface-front")
	r, err := NewBlazeFaceRunner(newTestRuntime(t, quietLogger()), faceManifest(t, "blazeface-front"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	fit, err := facetrack.NewBlazeFace(r, facetrack.BlazeFaceConfig{Name: "blazeface-front", RegionFit: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fit.Close() })

	var wf, jit stat
	var regions, faces, differ int
	for _, media := range int8Media {
		forEachFrame(t, media, func(i int, img gocv.Mat) {
			if i%4 != 0 {
				return
			}
			found, err := back.Detect(img)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range found {
				if d.Score < 0.5 {
					continue
				}
				roi := []facetrack.Rect{facetrack.Region(facetrack.Track{Box: d.Box})}
				a, err := fit.DetectRegions(img, roi)
				if err != nil {
					t.Fatal(err)
				}
				b, err := whole.DetectRegions(img, roi)
				if err != nil {
					t.Fatal(err)
				}
				g := roi[0]
				g = facetrack.Rect{X: g.X - 0.05*g.W, Y: g.Y - 0.05*g.H, W: 1.1 * g.W, H: 1.1 * g.H}
				c, err := fit.DetectRegions(img, []facetrack.Rect{g})
				if err != nil {
					t.Fatal(err)
				}
				if len(c) == len(a) {
					for j := range a {
						jit.add(a[j].Box.IoU(c[j].Box), float64(a[j].Score-c[j].Score))
					}
				}
				regions++
				if len(a) != len(b) {
					differ++
					t.Logf("%s frame %d region %+v: %d faces fitted, %d by a whole factor", media, i, roi[0], len(a), len(b))
					continue
				}
				for j := range a {
					faces++
					wf.add(a[j].Box.IoU(b[j].Box), float64(a[j].Score-b[j].Score))
				}
			}
		})
	}
	t.Logf("whole %v; fitted on the region grown 10%%: %v", wf, jit)
	t.Logf("%d regions, %d faces, %d with another count", regions, faces, differ)
	if regions < 20 || faces < 20 {
		t.Fatalf("compared %d regions and %d faces: the sample media should give more", regions, faces)
	}
	if differ > 0 || wf.minIoU < jit.minIoU || wf.sum/float64(wf.n) < jit.sum/float64(jit.n) || wf.sumD/float64(wf.n) > jit.sumD/float64(jit.n) {
		t.Errorf("a whole-factor region moves the faces found more than growing a fitted one by 10%% does (%d regions with another count)", differ)
	}
}

type stat struct {
	n           int
	minIoU, sum float64
	maxD, sumD  float64
}

func (s *stat) add(iou, d float64) {
	if s.n == 0 {
		s.minIoU = 1
	}
	s.n++
	s.minIoU = min(s.minIoU, iou)
	s.sum += iou
	s.maxD = max(s.maxD, d, -d)
	s.sumD += max(d, -d)
}

func (s stat) String() string {
	return fmt.Sprintf("n %d IoU min %.3f mean %.3f, |Δscore| max %.3f mean %.3f", s.n, s.minIoU, s.sum/float64(s.n), s.maxD, s.sumD/float64(s.n))
}
