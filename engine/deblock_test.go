package engine

import (
	"context"
	"math"
	"testing"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// deblockCompare is what skipping the loop filter changed on the 720p
// sample: faces paired by IoU, the worst IoU and score change, and the
// emotion head's answers on the aligned crops against the deblocked frame's,
// beside the same head's answers with the deblocked box moved 1 px.
type deblockCompare struct {
	faces, lost        int
	minIoU, worstScore float64
	probs, jitter      agreement
}

func compareDeblock(t *testing.T, deblock string) deblockCompare {
	t.Helper()
	path := testenv.Path(t, "deps/streams/megamind-720p.mp4")
	det := newTestBlazeFace(t, "blazeface-back")
	head := newTestHead(t)
	open := func(deblock string) *capture.Source {
		src, err := capture.Open(context.Background(), capture.Config{Source: path, Deblock: deblock, DecodeThreads: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { src.Close() })
		return src
	}
	bf, gf := open(registry.DeblockAll).Frames(), open(deblock).Frames()
	r := deblockCompare{minIoU: 1}
	var base, got, shifted []facetrack.Crop
	for i := 0; ; i++ {
		b, okB := <-bf
		g, okG := <-gf
		if okB != okG {
			t.Fatalf("frame %d: all decoded %v, %s %v", i, okB, deblock, okG)
		}
		if !okB {
			break
		}
		if i%2 == 0 {
			db, err := det.Detect(b.Mat)
			if err != nil {
				t.Fatal(err)
			}
			dg, err := det.Detect(g.Mat)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range db {
				if d.Score < 0.5 { // a face at the threshold may come or go with any pixel
					continue
				}
				best, bi := 0.0, -1
				for j, e := range dg {
					if v := d.Box.IoU(e.Box); v > best {
						best, bi = v, j
					}
				}
				if bi < 0 || best < 0.5 {
					r.lost++
					t.Logf("%s: frame %d: face %.0f (score %.3f) not found", deblock, i, d.Box, d.Score)
					continue
				}
				r.faces++
				r.minIoU = math.Min(r.minIoU, best)
				r.worstScore = math.Max(r.worstScore, math.Abs(float64(d.Score-dg[bi].Score)))
				c, sh := cropAndShifted(t, b.Mat, d)
				v, err := facetrack.CropAligned(g.Mat, dg[bi], 0.25, 192)
				if err != nil {
					t.Fatal(err)
				}
				base, got, shifted = append(base, c), append(got, v), append(shifted, sh)
			}
		}
		b.Close()
		g.Close()
	}
	if r.faces < 100 {
		t.Fatalf("only %d faces compared: the sample is not exercising the detector", r.faces)
	}
	pb, err := head.Predict(base)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := head.Predict(got)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := head.Predict(shifted)
	if err != nil {
		t.Fatal(err)
	}
	r.probs, r.jitter = compareProbs(pb, pg), compareProbs(pb, ps)
	t.Logf("%s against all: %d faces (score >= 0.5), %d lost; IoU >= %.3f, score within %.4f", deblock, r.faces, r.lost, r.minIoU, r.worstScore)
	t.Logf("emotion head: %v", r.probs)
	t.Logf("the same head on the box moved 1 px: %v", r.jitter)
	return r
}

// The capture default, "reference" (the loop filter skipped only on frames
// no other frame is predicted from), changes nothing the pipeline reports
// on the 720p H.264 sample (B-frames, as most encoded files have): every
// face blazeface-back finds with every frame deblocked (score >= 0.5) is
// found, at IoU >= 0.95 and its score within 0.02, and the emotion head's
// answers on its aligned crop move less than they do when the box moves by
// one pixel (as it does between frames): no more label changes, a smaller
// largest and mean |Δp|. The figures are in docs/performance.md.
func TestDeblockReferenceKeepsFacesAndEmotions(t *testing.T) {
	mats := testenv.MatCount(t)
	t.Cleanup(func() { // after compareDeblock's cleanups close the detector and sources
		if got := testenv.MatCount(t); got != mats {
			t.Errorf("Mat leak: %d live Mats, %d before:\n%s", got, mats, testenv.MatLeaks())
		}
	})
	r := compareDeblock(t, registry.DeblockReference)
	if r.lost != 0 || r.minIoU < 0.95 || r.worstScore > 0.02 {
		t.Errorf("%d faces lost, IoU >= %.3f, score within %.4f: want none lost, >= 0.95, 0.02", r.lost, r.minIoU, r.worstScore)
	}
	if r.probs.same < r.jitter.same || r.probs.maxDiff >= r.jitter.maxDiff || r.probs.mean() >= r.jitter.mean() {
		t.Errorf("skipping the loop filter moves the emotion head more than a 1 px box shift does")
	}
}

// "none" (no frame deblocked) is measured, not held to those bounds: its
// error carries from frame to frame until the next keyframe, so it is an
// option for a machine that cannot decode its cameras otherwise. The test
// fails only if it compared nothing; docs/performance.md has its figures.
func TestDeblockNoneMeasured(t *testing.T) {
	compareDeblock(t, registry.DeblockNone)
}
