package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"image/jpeg"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/window"
)

// A BGR crop comes out as a JPEG of its size with its colours (blue stays
// blue: the channels are swapped, not copied).
func TestEncodeJPEG(t *testing.T) {
	const w, h = 48, 32
	c := facetrack.Crop{W: w, H: h, Pix: make([]byte, w*h*3)}
	for i := 0; i < len(c.Pix); i += 3 {
		c.Pix[i], c.Pix[i+1], c.Pix[i+2] = 230, 40, 10 // B, G, R
	}
	b, err := EncodeJPEG(c)
	if err != nil {
		t.Fatal(err)
	}
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := img.Bounds().Size(); got.X != w || got.Y != h {
		t.Fatalf("decoded %v, want %d×%d", got, w, h)
	}
	r, g, bl, _ := img.At(w/2, h/2).RGBA()
	if bl>>8 < 200 || r>>8 > 40 || g>>8 > 70 {
		t.Fatalf("centre pixel RGB %d,%d,%d, want about 10,40,230", r>>8, g>>8, bl>>8)
	}
	if _, err := EncodeJPEG(facetrack.Crop{W: 2, H: 2, Pix: make([]byte, 5)}); err == nil {
		t.Fatal("a crop with the wrong byte count encoded")
	}
}

// faceRecorder is a sink that takes trees and face images.
type faceRecorder struct {
	mu     sync.Mutex
	trees  []string
	images map[string][]byte // tree id -> JPEG
	bad    []string
}

func (f *faceRecorder) Publish(_ context.Context, t *tree.Tree) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trees = append(f.trees, t.ID)
	return nil
}

func (f *faceRecorder) FaceImage(camera string, trackID int, treeID string, b []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.HasPrefix(treeID, fmt.Sprintf("%s-%d-", camera, trackID)) {
		f.bad = append(f.bad, fmt.Sprintf("image of %s track %d came with tree id %s", camera, trackID, treeID))
	}
	if _, dup := f.images[treeID]; dup {
		f.bad = append(f.bad, "two images for tree "+treeID)
	}
	f.images[treeID] = b
}

func (f *faceRecorder) Close() error { return nil }

var _ publish.FaceImageSink = (*faceRecorder)(nil)

// The privacy gate: closed (nil or false), no sink gets a face image; open,
// each tree is followed by exactly one JPEG of its window's latest crop.
func TestFaceImagesOnlyWhenTheGateIsOpen(t *testing.T) {
	st := build(t)
	src := testenv.Media(t, "astronaut.png")
	run := func(gate func() bool) *faceRecorder {
		rec := &faceRecorder{images: map[string][]byte{}}
		cfg := Config{
			Camera:     "priv",
			Source:     capture.Config{Source: src, StillDuration: 2 * time.Second},
			Window:     window.Config{FPS: 10, Length: 4, Stride: 2},
			CropSize:   96,
			Offline:    true,
			FaceImages: gate,
		}
		if err := New(cfg, st.Detector, st.Analyzer, []publish.Sink{rec}, nil).Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(rec.trees) == 0 {
			t.Fatal("no trees: the test sees nothing")
		}
		return rec
	}
	for name, gate := range map[string]func() bool{"nil": nil, "false": func() bool { return false }} {
		if rec := run(gate); len(rec.images) != 0 {
			t.Errorf("gate %s: %d face images handed to the sink for %d trees", name, len(rec.images), len(rec.trees))
		}
	}
	rec := run(func() bool { return true })
	if len(rec.images) != len(rec.trees) {
		t.Errorf("gate open: %d face images for %d trees, want one each", len(rec.images), len(rec.trees))
	}
	for _, b := range rec.bad {
		t.Error(b)
	}
	for _, id := range rec.trees {
		b, ok := rec.images[id]
		if !ok {
			t.Errorf("tree %s: no face image", id)
			continue
		}
		cfg, err := jpeg.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width != 96 || cfg.Height != 96 {
			t.Errorf("tree %s: image %d×%d, err %v; want a 96×96 JPEG", id, cfg.Width, cfg.Height, err)
		}
	}
}
