package capture

import (
	"context"
	"image"
	"testing"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/testenv"
)

// dataPtr is where m's pixels are.
func dataPtr(t *testing.T, m gocv.Mat) uintptr {
	t.Helper()
	b, err := m.DataPtrUint8()
	if err != nil || len(b) == 0 {
		t.Fatalf("frame has no pixels: %v", err)
	}
	return uintptr(unsafe.Pointer(&b[0]))
}

// A file's frames are decoded into the Mats of frames already closed: a
// whole clip runs on a handful of allocations, and once the source and its
// frames are closed no Mat is left.
func TestClosedFramesMatsAreReadIntoAgain(t *testing.T) {
	defer leakCheck(t)()
	mats := testenv.MatCount(t)
	src, err := Open(context.Background(), Config{Source: synthClip(t, 25, 2), Buffer: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[uintptr]bool{}
	n, most := 0, 0
	for f := range src.Frames() {
		seen[dataPtr(t, f.Mat)] = true
		most = max(most, testenv.MatCount(t)-mats)
		f.Close()
		n++
	}
	src.Close()
	t.Logf("%d frames in %d buffers; at most %d Mats live", n, len(seen), most)
	if n < 40 {
		t.Fatalf("only %d frames of a 2 s clip at 25 fps", n)
	}
	// The channel (2), the one being read, the one held here, the pool's spares.
	if len(seen) > 2+2+2 || most > 2+2+2+1 {
		t.Errorf("%d frames used %d pixel buffers and up to %d Mats: closed frames' Mats were not reused", n, len(seen), most)
	}
}

// A frame whose pixels are still shared when it is closed (a Region kept
// past Close) is freed, not pooled: the view keeps the picture it showed
// while later frames are decoded.
func TestSharedMatIsNotReused(t *testing.T) {
	defer leakCheck(t)()
	src, err := Open(context.Background(), Config{Source: synthClip(t, 25, 2), Buffer: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	first := <-src.Frames()
	view := first.Mat.Region(image.Rect(0, 0, first.Mat.Cols(), first.Mat.Rows()))
	defer view.Close()
	want := view.Clone()
	defer want.Close()
	first.Close()
	if got := src.pool.size(); got != 0 {
		t.Errorf("pool holds %d Mats after a shared frame was closed, want 0", got)
	}
	for range 20 {
		f, ok := <-src.Frames()
		if !ok {
			t.Fatal("clip ended early")
		}
		f.Close()
	}
	if d := maxAbsDiff(view, want); d != 0 {
		t.Fatalf("a view of a closed frame changed by up to %v grey levels as later frames were decoded", d)
	}
}
