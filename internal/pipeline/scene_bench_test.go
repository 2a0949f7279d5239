package pipeline

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// BenchmarkSceneFrame is one scene sample of a decoded Megamind.avi frame,
// as the frame loop takes it (Mat checks, grid sums):
//
//	go test -tags matprofile -run '^$' -bench SceneFrame ./internal/pipeline/
func BenchmarkSceneFrame(b *testing.B) {
	vc, err := gocv.VideoCaptureFile(testenv.Media(b, "Megamind.avi"))
	if err != nil {
		b.Fatal(err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	for range 30 {
		vc.Read(&m)
	}
	p := New(Config{}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s := newSceneState(window.Config{}, nil)
	f := &capture.Frame{Mat: m, Time: time.Now()}
	b.ReportMetric(float64(m.Cols()), "width")
	b.ResetTimer()
	for b.Loop() {
		s.last = time.Time{}
		s.frame(f, p)
	}
}
