package engine

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// countRuns is a BlazeFace model that counts its Runs.
type countRuns struct {
	*BlazeFaceRunner
	n int
}

func (c *countRuns) InferFill(fill func(dst []float32, k, bias float32) error) ([]float32, []float32, error) {
	c.n++
	return c.BlazeFaceRunner.InferFill(fill)
}

// A 16:9 frame runs blazeface-back on its 256×160 conversion, not the 256²
// square, and finds the faces the square finds. The picture is at the same
// scale in both; what differs is the padding the network sees above and
// below it (56 rows of black in the square, 8 in the wide input), which
// reaches faces near the frame's top and bottom, so the inputs include 16:9
// cuts that put faces there. Every face that could start a track (score ≥
// 0.5, the tracker's HighThreshold) is found at IoU ≥ 0.8 and a score within
// 0.2. The faces only one input finds are weak (< 0.5) and in the top or
// bottom fifth of the frame: heads cut by the edge, which the square's wider
// black margin lets the network complete. For scale, the test also moves
// the picture down by one input pixel (5 rows of 1280) in the square and
// logs how much that changes the square's own finds: about as much
// (docs/performance.md has both).
func TestBlazeFaceWideFindsTheSquaresFaces(t *testing.T) {
	sq, sqRun := newBlazeFaceFrom(t, faceManifest(t, "blazeface-back"))
	wideRun, err := NewBlazeFaceRunner(newTestRuntime(t, quietLogger()), faceManifest(t, "blazeface-back-wide"))
	if err != nil {
		t.Fatal(err)
	}
	defer wideRun.Close()
	sqCount, wideCount := &countRuns{BlazeFaceRunner: sqRun}, &countRuns{BlazeFaceRunner: wideRun}
	shaped, err := facetrack.NewBlazeFace(sqCount, facetrack.BlazeFaceConfig{Name: "blazeface-back"}, wideCount)
	if err != nil {
		t.Fatal(err)
	}
	defer shaped.Close()

	var inputs, strong, weakLost, weakExtra int
	minIoU, maxDScore := 1.0, 0.0
	// unmatched checks a detection the other input did not find.
	unmatched := func(what, side string, d facetrack.Detection, h int) {
		nearEdge := d.Box.Y < float64(h)/5 || d.Box.Y+d.Box.H > float64(h)*4/5
		if d.Score >= 0.5 || !nearEdge {
			t.Errorf("%s: only the %s input found %+v (score %.3f): want every face of either found by both, but weak ones in the top or bottom fifth", what, side, d.Box, d.Score)
		}
	}
	// shift is the reference: the square's finds on img against its finds
	// on img moved down by 5 rows (one input pixel at 1280 wide).
	var shiftLost, shiftExtra int
	shiftIoU, shiftDScore := 1.0, 0.0
	moved := gocv.NewMat()
	defer moved.Close()
	shift := func(img gocv.Mat, a []facetrack.Detection) {
		gocv.CopyMakeBorder(img, &moved, 5, 0, 0, 0, gocv.BorderConstant, color.RGBA{})
		b, err := sq.Detect(moved)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i].Box.Y -= 5
		}
		m := matchFaces(a, b)
		shiftLost, shiftExtra = shiftLost+len(m.onlyA), shiftExtra+len(m.onlyB)
		for _, p := range m.pairs {
			if a[p.a].Score >= 0.5 {
				shiftIoU = min(shiftIoU, p.iou)
				shiftDScore = max(shiftDScore, math.Abs(float64(a[p.a].Score-b[p.b].Score)))
			}
		}
	}
	compare := func(what string, img gocv.Mat) {
		inputs++
		a, err := sq.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		b, err := shaped.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		shift(img, a)
		m := matchFaces(a, b)
		for _, i := range m.onlyA {
			weakLost++
			unmatched(what, "square", a[i], img.Rows())
		}
		for _, j := range m.onlyB {
			weakExtra++
			unmatched(what, "wide", b[j], img.Rows())
		}
		for _, p := range m.pairs {
			if a[p.a].Score >= 0.5 {
				strong++
				minIoU = min(minIoU, p.iou)
				maxDScore = max(maxDScore, math.Abs(float64(a[p.a].Score-b[p.b].Score)))
			}
		}
	}
	cut := func(img gocv.Mat, y0 int, what string) {
		h := img.Cols() * 9 / 16
		y0 = max(0, min(y0, img.Rows()-h))
		sub := img.Region(image.Rect(0, y0, img.Cols(), y0+h))
		defer sub.Close()
		compare(fmt.Sprintf("%s y0=%d", what, y0), sub)
	}
	// The 16:9 stream the streams benchmark plays, and 16:9 cuts of the
	// 4:3 and square samples at their top, middle and bottom.
	forEachFrameAt(t, testenv.Path(t, "deps/streams/megamind-720p.mp4"), func(i int, img gocv.Mat) {
		if i%3 == 0 {
			compare(fmt.Sprintf("megamind-720p.mp4 frame %d", i), img)
		}
	})
	forEachFrame(t, "Megamind.avi", func(i int, img gocv.Mat) {
		if i%3 == 0 {
			for _, y0 := range []int{0, img.Rows()} {
				cut(img, y0, fmt.Sprintf("Megamind.avi frame %d", i))
			}
		}
	})
	for _, media := range []string{"astronaut.png", "messi5.jpg"} {
		forEachFrame(t, media, func(_ int, img gocv.Mat) {
			for _, y0 := range []int{0, img.Rows()/2 - img.Cols()*9/32, img.Rows()} {
				cut(img, y0, media)
			}
		})
	}
	if wideCount.n != inputs || sqCount.n != 0 {
		t.Fatalf("of %d 16:9 inputs the wide model ran %d, the square %d: want every one on the wide", inputs, wideCount.n, sqCount.n)
	}
	if strong < 200 {
		t.Fatalf("only %d faces of score ≥ 0.5 compared", strong)
	}
	if minIoU < 0.8 || maxDScore > 0.2 {
		t.Errorf("faces of score ≥ 0.5: min IoU %.3f (want ≥ 0.8), score differs by up to %.3f (want ≤ 0.2)", minIoU, maxDScore)
	}
	t.Logf("wide against square, %d inputs, %d faces of score ≥ 0.5: min IoU %.3f, |Δscore| max %.3f; weak boxes only the square found %d, only the wide %d",
		inputs, strong, minIoU, maxDScore, weakLost, weakExtra)
	t.Logf("square moved 1 input pixel against square: min IoU %.3f, |Δscore| max %.3f; weak boxes lost %d, new %d",
		shiftIoU, shiftDScore, shiftLost, shiftExtra)
}

// faceMatch pairs two lists of detections, each of a with the unused one
// of b it overlaps most (IoU ≥ 0.5), in a's order.
type faceMatch struct {
	pairs        []facePair
	onlyA, onlyB []int // indices with no partner
}

type facePair struct {
	a, b int
	iou  float64
}

func matchFaces(a, b []facetrack.Detection) faceMatch {
	var m faceMatch
	used := make([]bool, len(b))
	for i, da := range a {
		best, bi := 0.0, -1
		for j, db := range b {
			if iou := da.Box.IoU(db.Box); !used[j] && iou > best {
				best, bi = iou, j
			}
		}
		if best < 0.5 {
			m.onlyA = append(m.onlyA, i)
			continue
		}
		used[bi] = true
		m.pairs = append(m.pairs, facePair{i, bi, best})
	}
	for j := range b {
		if !used[j] {
			m.onlyB = append(m.onlyB, j)
		}
	}
	return m
}
