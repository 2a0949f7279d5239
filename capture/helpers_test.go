package capture

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"
)

// quietLog keeps test output readable; set CAPTURE_LOG=1 to see the source's log.
func quietLog() *slog.Logger {
	if os.Getenv("CAPTURE_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// leakCheck records the live Mats and goroutines now; the returned func
// fails t unless both are back to those numbers (goroutines get 2s to exit).
func leakCheck(t *testing.T) func() {
	t.Helper()
	mats := testenv.MatCount(t)
	gor := runtime.NumGoroutine()
	return func() {
		t.Helper()
		if n := testenv.MatCount(t); n != mats {
			t.Errorf("Mat leak: %d live Mats, %d before:\n%s", n, mats, testenv.MatLeaks())
		}
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > gor && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > gor {
			buf := make([]byte, 1<<16)
			t.Errorf("goroutine leak: %d goroutines, %d before:\n%s", n, gor, buf[:runtime.Stack(buf, true)])
		}
	}
}

// synthClip encodes an ffmpeg testsrc clip (MPEG-4 in AVI) into t.TempDir().
func synthClip(t testing.TB, fps, seconds int) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "testsrc_"+strconv.Itoa(fps)+"fps.avi")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-f", "lavfi",
		"-i", "testsrc=size=160x120:rate="+strconv.Itoa(fps), "-t", strconv.Itoa(seconds),
		"-c:v", "mpeg4", "-q:v", "5", "-y", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (apt-get install ffmpeg) failed to make a test clip: %v\n%s", err, b)
	}
	return out
}

// collect receives every frame until the channel closes, closing each Mat.
func collect(t testing.TB, src *Source, each func(f *Frame)) []*Frame {
	t.Helper()
	var got []*Frame
	timeout := time.After(60 * time.Second)
	for {
		select {
		case f, ok := <-src.Frames():
			if !ok {
				return got
			}
			if each != nil {
				each(f)
			}
			f.Close()
			got = append(got, f)
		case <-timeout:
			t.Fatalf("Frames not closed after 60s (%d frames so far)", len(got))
		}
	}
}
