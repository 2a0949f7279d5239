package facetrack

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

func newTestHaar(t testing.TB, cfg HaarConfig) *Haar {
	t.Helper()
	h, err := NewHaar(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func readImage(t testing.TB, name string) gocv.Mat {
	t.Helper()
	p := testenv.Media(t, name)
	img := gocv.IMRead(p, gocv.IMReadColor)
	if img.Empty() {
		img.Close()
		t.Fatalf("could not decode %s", p)
	}
	return img
}

func highDets(dets []Detection, thr float32) []Detection {
	var out []Detection
	for _, d := range dets {
		if d.Score >= thr {
			out = append(out, d)
		}
	}
	return out
}

func TestHaarAstronautOneFace(t *testing.T) {
	h := newTestHaar(t, HaarConfig{})
	img := readImage(t, "astronaut.png")
	defer img.Close()
	dets, err := h.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("astronaut.png: %+v", dets)
	faces := highDets(dets, 0.5)
	if len(faces) != 1 {
		t.Fatalf("want exactly one high-score face, got %d: %+v", len(faces), dets)
	}
	// Eileen Collins' face, upper left of centre in the 512×512 image.
	cx, cy := faces[0].Box.Center()
	if cx < 195 || cx > 250 || cy < 90 || cy > 140 || faces[0].Box.W < 70 || faces[0].Box.W > 140 {
		t.Fatalf("face box %+v is not the astronaut's face", faces[0].Box)
	}
	for i := 1; i < len(dets); i++ {
		if dets[i].Score > dets[i-1].Score {
			t.Fatalf("detections not sorted by score: %+v", dets)
		}
	}
	// The score is k/(k+MinNeighbors): 0.5 exactly at OpenCV's threshold, so
	// OpenCV's own grouping with MinNeighbors must agree on the face count.
	gray := gocv.NewMat()
	defer gray.Close()
	gocv.CvtColor(img, &gray, gocv.ColorBGRToGray)
	gocv.EqualizeHist(gray, &gray)
	ref := h.cc.DetectMultiScaleWithParams(gray, 1.1, 5, 0, image30, image0)
	if len(ref) != 1 {
		t.Fatalf("OpenCV's own grouping finds %d faces: %v", len(ref), ref)
	}
	if iou := faces[0].Box.IoU(Rect{float64(ref[0].Min.X), float64(ref[0].Min.Y), float64(ref[0].Dx()), float64(ref[0].Dy())}); iou < 0.8 {
		t.Fatalf("our grouping %+v differs from OpenCV's %v (IoU %.2f)", faces[0].Box, ref[0], iou)
	}
}

func TestHaarMessi(t *testing.T) {
	h := newTestHaar(t, HaarConfig{})
	img := readImage(t, "messi5.jpg")
	defer img.Close()
	dets, err := h.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("messi5.jpg: %+v", dets)
	if len(highDets(dets, 0.5)) < 1 {
		t.Fatalf("no high-score face in messi5.jpg: %+v", dets)
	}
}

func TestHaarDownscaleMapsBack(t *testing.T) {
	// The same image at 2× must give the same face, in 2× coordinates,
	// when the detector works at 640 px wide.
	img := readImage(t, "astronaut.png")
	defer img.Close()
	big := gocv.NewMat()
	defer big.Close()
	gocv.Resize(img, &big, image1024, 0, 0, gocv.InterpolationLinear)
	h := newTestHaar(t, HaarConfig{MaxWidth: 512})
	small, err := h.Detect(img)
	if err != nil {
		t.Fatal(err)
	}
	large, err := h.Detect(big)
	if err != nil {
		t.Fatal(err)
	}
	a, b := highDets(small, 0.5), highDets(large, 0.5)
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("faces: %+v vs %+v", a, b)
	}
	want := Rect{a[0].Box.X * 2, a[0].Box.Y * 2, a[0].Box.W * 2, a[0].Box.H * 2}
	if iou := b[0].Box.IoU(want); iou < 0.85 {
		t.Fatalf("box on the 2× frame %+v, want ≈ %+v (IoU %.2f)", b[0].Box, want, iou)
	}
}

func TestHaarBadCascade(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("not a cascade\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wrongXML := filepath.Join(dir, "other.xml")
	if err := os.WriteFile(wrongXML, []byte(`<?xml version="1.0"?><opencv_storage><camera_matrix/></opencv_storage>`), 0o644); err != nil {
		t.Fatal(err)
	}
	cascade, err := os.ReadFile(DefaultHaarCascade)
	if err != nil {
		t.Fatalf("%s: %v (install opencv-data)", DefaultHaarCascade, err)
	}
	truncated := filepath.Join(dir, "truncated.xml")
	if err := os.WriteFile(truncated, cascade[:len(cascade)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, want string }{
		{filepath.Join(dir, "missing.xml"), "no such file"},
		{text, "not an OpenCV cascade"},
		{wrongXML, "without a cascade"},
		{truncated, "not well-formed XML"},
		{dir, "not a regular file"},
	} {
		h, err := NewHaar(HaarConfig{Cascade: c.path})
		if err == nil {
			h.Close()
			t.Fatalf("%s: loaded without error", c.path)
		}
		msg := err.Error()
		if !strings.Contains(msg, c.path) || !strings.Contains(msg, c.want) || !strings.Contains(msg, "HaarConfig.Cascade") {
			t.Fatalf("%s: error %q should name the file, say %q and the fix", c.path, msg, c.want)
		}
		t.Logf("%s", msg)
	}
	// An old-format cascade is accepted.
	h := newTestHaar(t, HaarConfig{Cascade: "/usr/share/opencv4/haarcascades/haarcascade_licence_plate_rus_16stages.xml"})
	h.Close()
	if _, err := h.Detect(gocv.NewMat()); err == nil {
		t.Fatal("Detect on an empty frame succeeded")
	}
}

func TestHaarConfigValidation(t *testing.T) {
	for _, cfg := range []HaarConfig{
		{ScaleFactor: 0.9},
		{LowNeighbors: 6, MinNeighbors: 5},
		{MinFace: -1},
		{MaxWidth: 40, MinFace: 30},
		{GroupEps: 1.5},
	} {
		if h, err := NewHaar(cfg); err == nil {
			h.Close()
			t.Fatalf("config %+v accepted", cfg)
		}
	}
	h := newTestHaar(t, HaarConfig{})
	if h.Config() != DefaultHaarConfig() {
		t.Fatalf("defaults not applied: %+v", h.Config())
	}
	h.Close()
	img := readImage(t, "messi5.jpg")
	defer img.Close()
	if _, err := h.Detect(img); err == nil {
		t.Fatal("Detect after Close succeeded")
	}
}
