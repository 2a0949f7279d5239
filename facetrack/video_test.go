package facetrack

import (
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

// frameRecord is what the video test keeps of one frame.
type frameRecord struct {
	dets   []Detection
	tracks []Track
}

// TestVideoMegamindMainFaceKeepsID runs Haar + tracker over every frame of
// Megamind.avi (and crops every tracked face, to prove no Mat leaks).
//
// "Main face" is the confirmed track with the most matched detections (Hits).
// The frames where the main face is detected are:
//   - inside the track's span (its first to last matched detection): frames
//     where the main track was matched, or where a high-score detection
//     overlaps the main track's box (IoU >= 0.3);
//   - outside the span: frames reached by chaining high-score detections
//     from the span's ends, frame to frame, by IoU >= 0.3 with the previous
//     link, across gaps of up to 5 frames. This is independent of the
//     tracker, so frames where the same face was still tentative, or held
//     by another ID before or after the main track, count against it.
//
// The identity itself is checked too, heuristically: consecutive matched
// detections of the main track must not "jump" (IoU < 0.1, or heights
// differing by more than 2×), which is what one ID hopping from one person to
// another across a cut looks like. (Before the tracker had MaxScaleChange,
// the most-detected track did exactly that: Roxanne at 146 px, then a cut to
// a man at 338 px over the same spot, IoU 0.19.)
//
// The main face keeps its ID in a frame when the main track itself was
// matched there. The chain stops at scene cuts with large box jumps; IoU
// tracking cannot carry an identity across such cuts, and other shots of
// the clip are reported only as the number of IDs over the whole clip.
func TestVideoMegamindMainFaceKeepsID(t *testing.T) {
	path := testenv.Media(t, "Megamind.avi")
	baseline := testenv.MatCount(t)

	h := newTestHaar(t, HaarConfig{})
	tr := newTestTracker(t, TrackerConfig{})
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	frame := gocv.NewMat()
	var recs []frameRecord
	var nDets, nHigh, nCrops, nCropErrs int
	events := map[EventType]int{}
	hits := map[int]int{}
	for i := 0; vc.Read(&frame) && !frame.Empty(); i++ {
		dets, err := h.Detect(frame)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		nDets += len(dets)
		nHigh += len(highDets(dets, tr.Config().HighThreshold))
		tracks, evs := tr.Update(dets, t0.Add(time.Duration(i)*time.Second/24))
		for _, e := range evs {
			events[e.Type]++
		}
		for _, tk := range tracks {
			if tk.State == Tracked && tk.FramesSinceUpdate == 0 {
				hits[tk.ID]++
				if _, err := CropAligned(frame, Detection{Box: tk.Box, Keypoints: tk.Det.Keypoints}, 0.2, 112); err != nil {
					nCropErrs++
				} else {
					nCrops++
				}
			}
		}
		recs = append(recs, frameRecord{dets: dets, tracks: tracks})
	}
	frame.Close()
	vc.Close()
	h.Close()

	if len(recs) < 200 {
		t.Fatalf("read only %d frames from %s", len(recs), path)
	}
	mainID, mainHits := 0, 0
	for id, n := range hits {
		if n > mainHits || (n == mainHits && id < mainID) {
			mainID, mainHits = id, n
		}
	}
	first, last, jumps := -1, -1, 0
	var prev Rect
	for i, r := range recs {
		for _, tk := range r.tracks {
			if tk.ID == mainID && tk.FramesSinceUpdate == 0 {
				if first < 0 {
					first = i
				} else if iou, ratio := tk.Det.Box.IoU(prev), tk.Det.Box.H/prev.H; iou < 0.1 || ratio > 2 || ratio < 0.5 {
					jumps++
					t.Logf("frame %d: main track jumped from %+v to %+v (IoU %.2f)", i, prev, tk.Det.Box, iou)
				}
				last, prev = i, tk.Det.Box
			}
		}
	}
	detected, kept := 0, 0
	otherIDs := map[int]bool{}
	for i := first; i <= last; i++ {
		var main *Track
		for k := range recs[i].tracks {
			if recs[i].tracks[k].ID == mainID {
				main = &recs[i].tracks[k]
			}
		}
		if main == nil {
			continue // ended and restarted would show up here; cannot be, it is one track
		}
		matched := main.State == Tracked && main.FramesSinceUpdate == 0
		overlap := false
		for _, d := range highDets(recs[i].dets, tr.Config().HighThreshold) {
			if d.Box.IoU(main.Box) >= 0.3 {
				overlap = true
			}
		}
		if !matched && !overlap {
			continue
		}
		detected++
		if matched {
			kept++
		}
		for _, tk := range recs[i].tracks {
			if tk.ID != mainID && tk.FramesSinceUpdate == 0 && tk.Box.IoU(main.Box) >= 0.3 {
				otherIDs[tk.ID] = true
			}
		}
	}
	// Extend the face beyond the span by chaining detections.
	mainDet := func(i int) Rect {
		for _, tk := range recs[i].tracks {
			if tk.ID == mainID {
				return tk.Det.Box
			}
		}
		return Rect{}
	}
	chained := 0
	for _, dir := range []int{-1, +1} {
		i, ref := first, mainDet(first)
		if dir > 0 {
			i, ref = last, mainDet(last)
		}
		for gap := 0; gap < 5; {
			i += dir
			if i < 0 || i >= len(recs) {
				break
			}
			found := false
			for _, d := range highDets(recs[i].dets, tr.Config().HighThreshold) {
				if d.Box.IoU(ref) >= 0.3 {
					ref, found = d.Box, true
					break
				}
			}
			if !found {
				gap++
				continue
			}
			gap = 0
			detected++
			chained++
			for _, tk := range recs[i].tracks {
				if tk.FramesSinceUpdate == 0 && tk.Det.Box == ref {
					if tk.ID == mainID {
						kept++ // cannot happen outside the span; kept for clarity
					} else {
						otherIDs[tk.ID] = true
					}
				}
			}
		}
	}
	coverage := float64(kept) / float64(max(detected, 1))
	t.Logf("Megamind.avi: %d frames, %d detections (%d high-score), %d confirmed tracks, events %v, %d crops (%d crop errors)",
		len(recs), nDets, nHigh, tr.nextID-1, events, nCrops, nCropErrs)
	t.Logf("main face: track %d, %d matched detections, span frames %d–%d; face detected in %d frames (%d of them chained outside the span), matched by track %d in %d: coverage %.1f%%; other IDs on the face: %d; identity jumps: %d",
		mainID, mainHits, first, last, detected, chained, mainID, kept, 100*coverage, len(otherIDs), jumps)
	if mainHits < 60 {
		t.Fatalf("main track has only %d detections", mainHits)
	}
	if coverage < 0.9 {
		t.Fatalf("main face kept its ID in %.1f%% of the frames where it was detected, want >= 90%%", 100*coverage)
	}
	if jumps > 0 {
		t.Errorf("the main track jumped %d times between unrelated detections", jumps)
	}
	if len(otherIDs) > 0 {
		t.Errorf("the main face was also held by tracks %v", otherIDs)
	}
	if nCropErrs > nCrops/20 {
		t.Fatalf("%d of %d crops failed", nCropErrs, nCrops+nCropErrs)
	}
	if n := testenv.MatCount(t); n != baseline {
		t.Fatalf("%d Mats alive after Haar+tracking+crops, %d before:\n%s", n, baseline, testenv.MatLeaks())
	}
}

func BenchmarkHaar(b *testing.B) {
	path := testenv.Media(b, "vtest.avi") // 768×576
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var frames []gocv.Mat
	for len(frames) < 16 {
		m := gocv.NewMat()
		if !vc.Read(&m) || m.Empty() {
			m.Close()
			break
		}
		frames = append(frames, m)
	}
	vc.Close()
	defer func() {
		for i := range frames {
			frames[i].Close()
		}
	}()
	for _, c := range []struct {
		name string
		cfg  HaarConfig
	}{
		{"768x576/maxwidth640", HaarConfig{}},
		{"768x576/fullres", HaarConfig{MaxWidth: -1}},
		{"768x576/maxwidth320", HaarConfig{MaxWidth: 320}},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := newTestHaar(b, c.cfg)
			i := 0
			for b.Loop() {
				if _, err := h.Detect(frames[i%len(frames)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkCropFace(b *testing.B) {
	img := gocv.IMRead(testenv.Media(b, "astronaut.png"), gocv.IMReadColor)
	defer img.Close()
	box := Rect{177, 67, 93, 93}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CropFace(img, box, 0.2, 112); err != nil {
			b.Fatal(err)
		}
	}
}
