package bench

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/internal/parts"
	"github.com/edgemo/edgemo/internal/pipeline"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// BenchmarkDecodeVsPipeline reports, in one run on one file, OpenCV decode
// fps, whole-pipeline fps and their ratio:
//
//	go test -tags matprofile -run '^$' -bench DecodeVsPipeline -benchtime 3x ./internal/bench/
func BenchmarkDecodeVsPipeline(b *testing.B) {
	path := testenv.Media(b, "Megamind.avi")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := parts.Build(parts.Options{Providers: []string{"cpu"}}, log)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	var dec, pipe, trees float64
	for i := 0; i < b.N; i++ {
		r, err := Run(context.Background(), path, pipeline.Config{Camera: "bench", Window: window.Config{}}, st, log, nil)
		if err != nil {
			b.Fatal(err)
		}
		dec += r.DecodeFPS()
		pipe += r.PipelineFPS()
		trees += float64(r.Trees)
	}
	n := float64(b.N)
	b.ReportMetric(dec/n, "decode-fps")
	b.ReportMetric(pipe/n, "pipeline-fps")
	b.ReportMetric(pipe/dec, "ratio")
	b.ReportMetric(trees/n, "trees")
}

func TestRunMeasuresBothOnTheSameFile(t *testing.T) {
	path := testenv.Media(t, "Megamind.avi")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := parts.Build(parts.Options{Providers: []string{"cpu"}}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := Run(context.Background(), path, pipeline.Config{Camera: "bench"}, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.DecodeFrames != 270 || r.PipelineFrames != 270 {
		t.Fatalf("decode %d frames, pipeline %d; Megamind.avi has 270", r.DecodeFrames, r.PipelineFrames)
	}
	if r.Trees == 0 || r.Ratio() <= 0 || r.Ratio() > 1.5 {
		t.Fatalf("implausible result: %+v ratio %.3f", r, r.Ratio())
	}
	if r.DetectCalls != 270 || r.DetectTime <= 0 {
		t.Fatalf("detector timed on %d frames (%v), want 270", r.DetectCalls, r.DetectTime)
	}
	// every full detection has its reason: here the fixed schedule's interval
	if r.FullReasons["interval"] != 270 || len(r.FullReasons) != 1 || !strings.Contains(r.String(), "why: interval 270") {
		t.Errorf("full detections by reason %v, want interval 270 in the report:\n%s", r.FullReasons, r)
	}
	stages := map[string]bool{}
	for _, s := range r.Stages {
		if s.Items > 0 && s.Time > 0 {
			stages[s.Stage] = true
		}
	}
	for _, want := range []string{"emotion", "mesh", "age-gender", "liveness"} {
		if !stages[want] {
			t.Errorf("no cost reported for stage %s: %+v", want, r.Stages)
		}
	}
	// 24 fps, a scene sample once 250 ms have passed: every 6th frame
	if sc := r.Scene; sc.Stage != pipeline.StageScene || sc.Items != 45 || sc.Time <= 0 || !strings.Contains(r.String(), "stage     scene") {
		t.Errorf("scene stage %+v, want 45 of 270 frames sampled, in the report:\n%s", sc, r)
	}
	t.Log("\n" + r.String())
}
