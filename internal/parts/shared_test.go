package parts

import (
	"sync"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

func openSessions() int {
	runners.Lock()
	defer runners.Unlock()
	return len(runners.m)
}

// TestDetectorsShareSessions: cameras' detectors run on one session per
// model (back and front), detect in parallel with the same result as a
// detector alone, and the sessions close with the last detector, not the
// first.
func TestDetectorsShareSessions(t *testing.T) {
	if n := openSessions(); n != 0 {
		t.Fatalf("%d sessions open before the test", n)
	}
	img := gocv.IMRead(testenv.Media(t, "messi5.jpg"), gocv.IMReadColor)
	defer img.Close()
	o := Options{ORTLib: testenv.ORTLib(t), Providers: []string{"cpu"}}
	var dets []facetrack.Detector
	for range 4 {
		d, err := NewDetector(o, nil)
		if err != nil {
			t.Fatal(err)
		}
		dets = append(dets, d)
	}
	if n := openSessions(); n != 2 {
		t.Fatalf("4 detectors hold %d sessions, want 2 (blazeface-back and its front-model region verifier)", n)
	}
	want, err := dets[0].Detect(img)
	if err != nil || len(want) == 0 {
		t.Fatalf("no face in messi5.jpg (%v)", err)
	}
	region := []facetrack.Rect{facetrack.Region(facetrack.Track{Box: want[0].Box})}
	wantR, err := dets[0].(facetrack.RegionDetector).DetectRegions(img, region)
	if err != nil || len(wantR) == 0 {
		t.Fatalf("no face in its region (%v)", err)
	}
	var wg sync.WaitGroup
	for i, d := range dets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				got, err := d.Detect(img)
				if err != nil || len(got) != len(want) || got[0].Box != want[0].Box {
					t.Errorf("detector %d in parallel: %v (%v), alone %v", i, got, err, want)
					return
				}
				gotR, err := d.(facetrack.RegionDetector).DetectRegions(img, region)
				if err != nil || len(gotR) != len(wantR) || gotR[0].Box != wantR[0].Box {
					t.Errorf("detector %d regions in parallel: %v (%v), alone %v", i, gotR, err, wantR)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, d := range dets[:3] {
		if err := d.Close(); err != nil {
			t.Fatalf("close %d: %v", i, err)
		}
	}
	if got, err := dets[3].Detect(img); err != nil || len(got) != len(want) {
		t.Fatalf("the last detector after the others closed: %v (%v)", got, err)
	}
	if err := dets[3].Close(); err != nil {
		t.Fatal(err)
	}
	if n := openSessions(); n != 0 {
		t.Fatalf("%d sessions left open after every detector closed", n)
	}
	// the next camera opens them anew
	d, err := NewDetector(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got, err := d.Detect(img); err != nil || len(got) != len(want) {
		t.Fatalf("a detector after all closed: %v (%v)", got, err)
	}
}
