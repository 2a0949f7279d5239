package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/registry"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

func newTestFullAnalyzer(t testing.TB) *FastAnalyzer {
	t.Helper()
	rt := newTestRuntime(t, quietLogger())
	head, err := NewEmotionHead(rt, emotionManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	var heads []Head
	for _, name := range registry.Heads.Names() {
		part, _ := registry.Heads.Get(name)
		h, err := OpenHead(name, rt, faceManifest(t, part.Manifest))
		if err != nil {
			t.Fatal(err)
		}
		heads = append(heads, h)
	}
	a := NewFastAnalyzer(head, FastConfig{Heads: heads})
	t.Cleanup(func() { a.Close() })
	return a
}

// mediaWindows detects (BlazeFace back), tracks and crops (aligned, 192 px,
// margin 0.25) a clip or image and returns windows of up to n samples of the
// largest track, sampled every step frames.
func mediaWindows(t testing.TB, media string, n, step int) []window.Window {
	t.Helper()
	bf := newTestBlazeFace(t, "blazeface-back")
	trk, err := facetrack.NewTracker(facetrack.TrackerConfig{MinHits: 1})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	samples := map[int][]window.Sample{}
	forEachFrame(t, media, func(i int, img gocv.Mat) {
		dets, err := bf.Detect(img)
		if err != nil {
			t.Fatal(err)
		}
		ts := t0.Add(time.Duration(i) * time.Second / 24)
		tracks, _ := trk.Update(dets, ts)
		if i%step != 0 {
			return
		}
		for _, tk := range tracks {
			if tk.State != facetrack.Tracked || tk.FramesSinceUpdate > 0 {
				continue
			}
			det := facetrack.Detection{Box: tk.Box, Keypoints: tk.Det.Keypoints}
			c, err := facetrack.CropAligned(img, det, 0.25, 192)
			if err != nil {
				t.Fatal(err)
			}
			samples[tk.ID] = append(samples[tk.ID], window.Sample{FrameSeq: uint64(i), Time: ts, Box: tk.Box, Score: tk.Score, Crop: c, Roll: facetrack.EyeRollDegrees(det.Keypoints)})
		}
	})
	best := 0
	for id, s := range samples { // the most looked-at track; of equals, the first (map order is random)
		if n := len(samples[best]); len(s) > n || len(s) == n && id < best {
			best = id
		}
	}
	ss := samples[best]
	if len(ss) == 0 {
		t.Fatalf("%s: no tracked face", media)
	}
	var ws []window.Window
	for start, seq := 0, uint64(0); start < len(ss); start, seq = start+n, seq+1 {
		part := ss[start:min(start+n, len(ss))]
		ws = append(ws, window.Window{Camera: strings.NewReplacer(".", "-").Replace(media), TrackID: best, Seq: seq, Start: part[0].Time, End: part[len(part)-1].Time, FPS: 24 / float64(step), Samples: part, FramesSeen: len(part)})
	}
	return ws
}

// TestTreesFromSampleMedia: trees built from the sample media carry age,
// gender, liveness, head pose, at least 3 landmark cue types, valence and
// arousal, and a rationale; every one validates against the schema.
func TestTreesFromSampleMedia(t *testing.T) {
	a := newTestFullAnalyzer(t)
	for _, media := range []string{"astronaut.png", "messi5.jpg", "Megamind.avi"} {
		ws := mediaWindows(t, media, 16, 3)
		for i, w := range ws {
			tr, err := a.Analyze(context.Background(), w)
			if err != nil {
				t.Fatal(err)
			}
			if err := tr.Validate(); err != nil {
				t.Fatalf("%s window %d: %v", media, i, err)
			}
			b, _ := json.Marshal(tr)
			if i == 0 || i == len(ws)-1 {
				t.Logf("%s window %d: %s", media, i, b)
			}
			at := tr.Attributes
			if at == nil || at.Age == nil || at.Gender == nil || at.Liveness == nil || at.HeadPose == nil {
				t.Fatalf("%s window %d: attributes incomplete: %s", media, i, b)
			}
			types := map[string]bool{}
			for _, c := range tr.Expression.Cues {
				if c.Evidence == tree.EvidenceLandmarks {
					types[c.AU] = true
				}
			}
			if len(types) < 3 {
				t.Errorf("%s window %d: %d landmark cue types, want >= 3", media, i, len(types))
			}
			if tr.Expression.Valence == nil || tr.Expression.Arousal == nil {
				t.Errorf("%s window %d: no valence/arousal", media, i)
			}
			if tr.Emotion == nil || !strings.Contains(tr.Emotion.Rationale, "frames") {
				t.Errorf("%s window %d: no rationale", media, i)
			}
			if m := tr.Emotion.Mikels; m == nil || !m.Derived {
				t.Errorf("%s window %d: no derived Mikels estimate: %s", media, i, b)
			} else if tr.Expression.Valence == nil {
				continue // reported above
			} else if v := *tr.Expression.Valence; tr.Expression.Label == "happy" && v > 0 && positiveShare(m) < 0.5 {
				// A window's valence, not its label alone, sets the sign: a
				// weakly happy face under lowered brows reads negative.
				t.Errorf("%s window %d: a happy face of valence %.2f with a negative Mikels estimate %v", media, i, v, m.Scores)
			} else if v < -0.3 && positiveShare(m) > 0.5 || v > 0.3 && positiveShare(m) < 0.5 {
				t.Errorf("%s window %d: valence %.2f and a Mikels estimate of the other sign %v", media, i, v, m.Scores)
			}
		}
	}
	for _, s := range a.StageCosts() {
		t.Logf("stage %-10s runs %4d items %5d  %.2f ms/item", s.Stage, s.Runs, s.Items, float64(s.Time.Microseconds())/1000/float64(max(s.Items, 1)))
	}
}
