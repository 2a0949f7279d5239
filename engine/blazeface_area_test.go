package engine

import (
	"fmt"
	"image"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/facetrack"
)

// TestBlazeFaceLetterboxMatchesInterArea: the detector's own shrink
// (facetrack's area resize, INTER_AREA's weights in vectorised code) finds
// what it finds on a frame OpenCV's INTER_AREA shrank to the letterbox's
// size first (which the detector then only copies): the same faces, boxes
// at IoU ≥ 0.99 on the default detector, scores within 0.01. A face may come
// or go only at the score threshold (0.3), as float noise does anywhere.
func TestBlazeFaceLetterboxMatchesInterArea(t *testing.T) {
	const minScore, scoreTol = 0.3, 0.01
	for _, c := range []struct {
		name   string
		minIoU float64
	}{{"blazeface-back", 0.99}, {"blazeface-front", 0.95}} {
		t.Run(c.name, func(t *testing.T) {
			d := newTestBlazeFace(t, c.name)
			size := faceManifest(t, c.name).Input.Shape[1]
			small := gocv.NewMat()
			defer small.Close()
			var frames, faces int
			worstIoU, worstMarginal, worstScore := 1.0, 1.0, 0.0
			for _, media := range []string{"astronaut.png", "messi5.jpg", "Megamind.avi", "vtest.avi"} {
				forEachFrame(t, media, func(i int, img gocv.Mat) {
					if i%3 != 0 {
						return
					}
					frames++
					W, H := img.Cols(), img.Rows()
					s := float64(size) / float64(max(W, H))
					nw, nh := int(math.Round(float64(W)*s)), int(math.Round(float64(H)*s))
					gocv.Resize(img, &small, image.Pt(nw, nh), 0, 0, gocv.InterpolationArea)
					got, err := d.Detect(img)
					if err != nil {
						t.Fatal(err)
					}
					ref, err := d.Detect(small)
					if err != nil {
						t.Fatal(err)
					}
					kx, ky := float64(W)/float64(nw), float64(H)/float64(nh)
					at := fmt.Sprintf("%s frame %d", media, i)
					used := make([]bool, len(got))
					for _, r := range ref {
						r.Box = facetrack.Rect{X: r.Box.X * kx, Y: r.Box.Y * ky, W: r.Box.W * kx, H: r.Box.H * ky}
						best, bi := 0.0, -1
						for j, g := range got {
							if v := r.Box.IoU(g.Box); !used[j] && v > best {
								best, bi = v, j
							}
						}
						if bi < 0 || best < 0.5 {
							if r.Score > minScore+scoreTol {
								t.Errorf("%s: face %+v (score %.3f) of the INTER_AREA letterbox not found", at, r.Box, r.Score)
							}
							continue
						}
						used[bi] = true
						faces++
						ds := math.Abs(float64(r.Score - got[bi].Score))
						worstScore = math.Max(worstScore, ds)
						// A face within scoreTol of the threshold is the weighted
						// mean of anchors on both sides of it: a one-level change
						// in a byte may add or drop one, so only its score is held.
						marginal := min(r.Score, got[bi].Score) <= minScore+scoreTol
						if marginal {
							worstMarginal = math.Min(worstMarginal, best)
						} else {
							worstIoU = math.Min(worstIoU, best)
						}
						if (best < c.minIoU && !marginal) || ds > scoreTol {
							t.Errorf("%s: box %+v score %.4f, with INTER_AREA %+v score %.4f (IoU %.4f)", at, got[bi].Box, got[bi].Score, r.Box, r.Score, best)
						}
					}
					for j, g := range got {
						if !used[j] && g.Score > minScore+scoreTol {
							t.Errorf("%s: face %+v (score %.3f) not found on the INTER_AREA letterbox", at, g.Box, g.Score)
						}
					}
				})
			}
			if faces == 0 {
				t.Fatal("no faces compared")
			}
			t.Logf("%d frames, %d faces: min IoU %.4f (%.4f for faces within %.2f of the threshold), max score difference %.4f", frames, faces, worstIoU, worstMarginal, scoreTol, worstScore)
		})
	}
}
