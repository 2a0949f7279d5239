package engine

import (
	"fmt"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine/registry"
)

// TestBlazeFaceArm64VariantSameBoxes: the arm64 conversion of each detector
// (models/arm64/, no --pad-channels) finds the same faces as the AVX-512
// one (models/, channels zero-padded to 16) on the sample media: the same
// detections in the same order, boxes and keypoints within 1e-3 px, scores
// within 1e-5. Padding adds zero channels and identity convolutions, so
// only float32 summation order may differ. Both run here on amd64's ORT;
// the arm64 binary's own trees are compared by scripts/arm64.sh test. Each
// detector has its other input shapes (blazeface-back-wide) beside it.
func TestBlazeFaceArm64VariantSameBoxes(t *testing.T) {
	const boxTol, scoreTol = 1e-3, 1e-5
	for _, name := range []string{"blazeface-front", "blazeface-back"} {
		t.Run(name, func(t *testing.T) {
			if m := faceManifest(t, name); m.Target != "amd64-avx512" || len(m.Source.ConverterArgs) == 0 {
				t.Fatalf("models/%s: target %q, converter args %v: want the padded amd64-avx512 variant", name, m.Target, m.Source.ConverterArgs)
			}
			if m := faceManifest(t, "arm64/"+name); m.Target != "arm64" || len(m.Source.ConverterArgs) != 0 {
				t.Fatalf("models/arm64/%s: target %q, converter args %v: want the unpadded arm64 variant", name, m.Target, m.Source.ConverterArgs)
			}
			// With the detector's other input shapes, as the daemon opens it
			// (messi5.jpg, 16:10, runs blazeface-back-wide).
			part, _ := registry.Detectors.Get(name)
			arm := make([]string, len(part.Shapes))
			for i, s := range part.Shapes {
				arm[i] = "arm64/" + s
			}
			padded, plain := newTestBlazeFace(t, name, part.Shapes...), newTestBlazeFace(t, "arm64/"+name, arm...)
			var frames, faces int
			var maxBox, maxScore float64
			for _, media := range []string{"astronaut.png", "messi5.jpg", "Megamind.avi", "vtest.avi"} {
				forEachFrame(t, media, func(i int, img gocv.Mat) {
					if i%8 != 0 {
						return
					}
					frames++
					a, err := padded.Detect(img)
					if err != nil {
						t.Fatal(err)
					}
					b, err := plain.Detect(img)
					if err != nil {
						t.Fatal(err)
					}
					at := fmt.Sprintf("%s frame %d", media, i)
					if len(a) != len(b) {
						t.Errorf("%s: %d detections padded, %d unpadded", at, len(a), len(b))
						return
					}
					for j := range a {
						faces++
						d := max(math.Abs(a[j].Box.X-b[j].Box.X), math.Abs(a[j].Box.Y-b[j].Box.Y),
							math.Abs(a[j].Box.W-b[j].Box.W), math.Abs(a[j].Box.H-b[j].Box.H))
						for k := range a[j].Keypoints {
							d = max(d, math.Abs(a[j].Keypoints[k].X-b[j].Keypoints[k].X), math.Abs(a[j].Keypoints[k].Y-b[j].Keypoints[k].Y))
						}
						s := math.Abs(float64(a[j].Score - b[j].Score))
						maxBox, maxScore = max(maxBox, d), max(maxScore, s)
						if d > boxTol || s > scoreTol {
							t.Errorf("%s detection %d: padded %+v score %.6f, unpadded %+v score %.6f", at, j, a[j].Box, a[j].Score, b[j].Box, b[j].Score)
						}
					}
				})
			}
			if faces == 0 {
				t.Fatal("no detections on the sample media: nothing compared")
			}
			t.Logf("%d frames, %d detections: max box/keypoint diff %.2g px, max score diff %.2g", frames, faces, maxBox, maxScore)
		})
	}
}
