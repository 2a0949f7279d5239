package engine

import (
	"bytes"
	"image"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

const cascadeFile = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

// emotionManifest loads models/emotion.manifest.json (needs scripts/setup.sh).
func emotionManifest(t testing.TB) *Manifest {
	t.Helper()
	m, err := LoadManifest(filepath.Join(testenv.Root(), "models", "emotion.manifest.json"))
	if err != nil {
		t.Fatalf("%v (run `scripts/setup.sh --test` first)", err)
	}
	return m
}

// newTestRuntime opens the runtime on deps/onnxruntime with the given
// providers (default: cpu only) and closes it at cleanup.
func newTestRuntime(t testing.TB, log *slog.Logger, providers ...string) *Runtime {
	t.Helper()
	if len(providers) == 0 {
		providers = []string{"cpu"}
	}
	rt, err := NewRuntime(RuntimeConfig{LibraryPath: testenv.ORTLib(t), Providers: providers, IntraOpThreads: 1, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Errorf("runtime close: %v", err)
		}
	})
	return rt
}

func newTestHead(t testing.TB) *EmotionHead {
	t.Helper()
	rt := newTestRuntime(t, quietLogger())
	h, err := NewEmotionHead(rt, emotionManifest(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(&bytes.Buffer{}, &slog.HandlerOptions{Level: slog.LevelError}))
}

type syncBuffer = testenv.SyncBuffer

// faceCrops detects the largest face in a media file with OpenCV's Haar
// cascade and returns square BGR crops around it: the first with the given
// margin (fraction of the box side added on each side), the rest shifted by
// a few pixels, as a tracker's crops of a still face would be.
func faceCrops(t testing.TB, media string, margin float64, n int) ([]facetrack.Crop, image.Rectangle) {
	t.Helper()
	path := testenv.Media(t, media)
	if _, err := os.Stat(cascadeFile); err != nil {
		t.Fatalf("%s missing: apt install opencv-data (scripts/setup.sh)", cascadeFile)
	}
	img := gocv.IMRead(path, gocv.IMReadColor)
	if img.Empty() {
		t.Fatalf("cannot decode %s", path)
	}
	defer img.Close()
	cc := gocv.NewCascadeClassifier()
	defer cc.Close()
	if !cc.Load(cascadeFile) {
		t.Fatalf("cannot load %s", cascadeFile)
	}
	rects := cc.DetectMultiScaleWithParams(img, 1.1, 3, 0, image.Pt(20, 20), image.Pt(0, 0))
	if len(rects) == 0 {
		t.Fatalf("%s: no face found", media)
	}
	best := rects[0]
	for _, r := range rects[1:] {
		if r.Dx()*r.Dy() > best.Dx()*best.Dy() {
			best = r
		}
	}
	side := int(float64(max(best.Dx(), best.Dy())) * (1 + 2*margin))
	cx, cy := best.Min.X+best.Dx()/2, best.Min.Y+best.Dy()/2
	shifts := []image.Point{{0, 0}, {2, 0}, {0, 2}, {-2, 0}, {0, -2}, {2, 2}, {-2, -2}, {1, -1}}
	var crops []facetrack.Crop
	for i := range n {
		s := shifts[i%len(shifts)]
		r := image.Rect(cx-side/2+s.X, cy-side/2+s.Y, cx-side/2+s.X+side, cy-side/2+s.Y+side).Intersect(image.Rect(0, 0, img.Cols(), img.Rows()))
		reg := img.Region(r)
		c := reg.Clone()
		reg.Close()
		b := c.ToBytes()
		crops = append(crops, facetrack.Crop{W: c.Cols(), H: c.Rows(), Pix: b})
		c.Close()
	}
	return crops, best
}

// checkGoroutines fails t if goroutines started during the test are still
// around at cleanup.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutines: %d before, %d after\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
	})
}

func slogText(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
