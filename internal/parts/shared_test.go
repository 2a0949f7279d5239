package parts

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
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
// model (back, its 16:9 shape and front), detect in parallel with the same result as a
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
	if n := openSessions(); n != 3 {
		t.Fatalf("4 detectors hold %d sessions, want 3 (blazeface-back, its 16:9 shape and the front-model region verifier)", n)
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

// A models folder without the detector's 16:9 shape (made before it, or the
// user's own) still detects, on the square input, and says what is missing.
func TestDetectorWithoutItsWideShape(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(testenv.Root(), "models")
	for _, n := range []string{"blazeface-back", "blazeface-front"} {
		for _, f := range []string{n + ".manifest.json", n + ".onnx"} {
			if err := os.Symlink(filepath.Join(src, f), filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	d, err := NewDetector(Options{ORTLib: testenv.ORTLib(t), Providers: []string{"cpu"}, ModelsDir: dir}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if !strings.Contains(logs.String(), "detector input shape missing") || !strings.Contains(logs.String(), "blazeface-back-wide.manifest.json") {
		t.Errorf("no warning naming the missing shape:\n%s", logs.String())
	}
	img := gocv.IMRead(testenv.Media(t, "messi5.jpg"), gocv.IMReadColor) // 16:10
	defer img.Close()
	if got, err := d.Detect(img); err != nil || len(got) == 0 {
		t.Fatalf("no face in messi5.jpg on the square input: %v (%v)", got, err)
	}
}
