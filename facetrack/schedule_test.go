package facetrack

import (
	"image"
	"image/color"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

func modes(t *testing.T, s *Scheduler, img gocv.Mat, n int, tracks []Track, observe func(Mode) ([]Track, []Event)) string {
	t.Helper()
	var b strings.Builder
	for range n {
		m, err := s.Plan(img, nil, tracks, 0, true)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(m.String()[:1])
		tr, ev := observe(m)
		s.Observe(m, tr, ev)
	}
	return b.String()
}

// The schedule: fixed every-Nth; adaptive intervals doubling to MaxEvery
// while a face is steady and back to Every at once when it is not; the
// motion gate skipping a still, empty scene.
func TestSchedulerModes(t *testing.T) {
	mats := testenv.MatCount(t)
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(90, 90, 90, 0), 720, 1280, gocv.MatTypeCV8UC3)
	face := Track{ID: 1, Box: Rect{600, 300, 80, 80}, Score: 0.9, State: Tracked}
	steady := func(Mode) ([]Track, []Event) {
		return []Track{face}, []Event{{Type: EventUpdate, Track: face}}
	}

	fixed, err := NewScheduler(ScheduleConfig{Every: 3})
	if err != nil {
		t.Fatal(err)
	}
	if got := modes(t, fixed, img, 9, []Track{face}, steady); got != "fppfppfpp" {
		t.Errorf("fixed every 3: %s", got)
	}
	fixed.Close()

	ad, err := NewScheduler(ScheduleConfig{Adaptive: true, Motion: true})
	if err != nil {
		t.Fatal(err)
	}
	// RegionEvery 1: a region check on every frame between full detections
	// at 0, then intervals 2, 4, 8, 8 (each steady full detection doubles it).
	every1, err := NewScheduler(ScheduleConfig{Adaptive: true, Motion: true, RegionEvery: 1})
	if err != nil {
		t.Fatal(err)
	}
	want := "fr" + "frrr" + "frrrrrrr" + "frrrrrrr" + "f"
	if got := modes(t, every1, img, len(want), []Track{face}, steady); got != want {
		t.Errorf("adaptive, region check every frame, steady face:\n got %s\nwant %s", got, want)
	}
	every1.Close()
	// The default RegionEvery 2: the tracker predicts every other frame.
	want = "fr" + "frpr" + "frprprpr" + "frprprpr" + "f"
	if got := modes(t, ad, img, len(want), []Track{face}, steady); got != want {
		t.Errorf("adaptive, steady face:\n got %s\nwant %s", got, want)
	}
	if ad.Interval() != 8 {
		t.Errorf("interval %d after steady full detections, want MaxEvery 8", ad.Interval())
	}
	// A region find with a third of the score: the next frame is a full
	// detection and the interval starts again from Every (then doubles).
	weak := face
	weak.Score = 0.3
	got := modes(t, ad, img, 3, []Track{face}, func(m Mode) ([]Track, []Event) {
		if m == ModeRegions {
			return []Track{weak}, []Event{{Type: EventUpdate, Track: weak}}
		}
		return steady(m)
	})
	if got != "rfr" || ad.FullReasons()["unsteady"] != 1 || ad.Interval() != 2 {
		t.Errorf("score drop: %s, reasons %v; want a region frame, then full detections", got, ad.FullReasons())
	}

	// The motion gate: no face and a still frame are skipped; a change wakes it.
	gate, err := NewScheduler(ScheduleConfig{Motion: true})
	if err != nil {
		t.Fatal(err)
	}
	none := func(Mode) ([]Track, []Event) { return nil, nil }
	if got := modes(t, gate, img, 4, nil, none); got != "fmmm" {
		t.Errorf("still empty scene: %s, want one detection then motion-skipped", got)
	}
	gocv.Rectangle(&img, image.Rect(100, 100, 300, 300), color.RGBA{250, 250, 250, 0}, -1)
	if got := modes(t, gate, img, 2, nil, none); got != "fm" {
		t.Errorf("after a change: %s, want a detection, then skipping again", got)
	}
	gate.Close()
	ad.Close()
	img.Close()
	if n := testenv.MatCount(t); n != mats {
		t.Errorf("Mat leak: %d live, %d before", n, mats)
	}
}
