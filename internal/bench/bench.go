// Package bench measures, in one run on one file, how fast OpenCV decodes it
// alone and how fast the whole pipeline processes it, so the pipeline's cost
// is read as a ratio to a ceiling measured on the same machine at the same
// moment.
package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/app"
	"github.com/edgemo/edgemo/internal/pipeline"
)

// Result of one bench run.
type Result struct {
	Source         string
	DecodeFrames   int
	DecodeSeconds  float64
	PipelineFrames uint64
	PipelineSecs   float64
	Trees          uint64
	Detections     uint64
}

func (r Result) DecodeFPS() float64   { return float64(r.DecodeFrames) / r.DecodeSeconds }
func (r Result) PipelineFPS() float64 { return float64(r.PipelineFrames) / r.PipelineSecs }

// Ratio is pipeline fps / decode fps (1 = the pipeline costs nothing beyond decoding).
func (r Result) Ratio() float64 { return r.PipelineFPS() / r.DecodeFPS() }

func (r Result) String() string {
	return fmt.Sprintf("source    %s\ndecode    %6d frames  %8.1f fps  (OpenCV decode alone)\npipeline  %6d frames  %8.1f fps  (decode+detect+track+crop+window+emotion head, %d trees)\nratio     %.3f  (pipeline fps / decode fps)\n",
		r.Source, r.DecodeFrames, r.DecodeFPS(), r.PipelineFrames, r.PipelineFPS(), r.Trees, r.Ratio())
}

// Decode reads every frame of path with OpenCV and nothing else.
func Decode(path string) (int, time.Duration, error) {
	if _, err := os.Stat(path); err != nil {
		return 0, 0, fmt.Errorf("bench: %w", err)
	}
	vc, err := gocv.VideoCaptureFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("bench: open %s: %w", path, err)
	}
	defer vc.Close()
	m := gocv.NewMat()
	defer m.Close()
	n := 0
	start := time.Now()
	for vc.Read(&m) && !m.Empty() {
		n++
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("bench: %s: no frames decoded", path)
	}
	return n, time.Since(start), nil
}

// Run measures decode alone, then the whole offline pipeline with a
// discarding sink, on the same file.
func Run(ctx context.Context, path string, cfg pipeline.Config, st *app.Stack, log *slog.Logger) (Result, error) {
	r := Result{Source: path}
	n, d, err := Decode(path)
	if err != nil {
		return r, err
	}
	r.DecodeFrames, r.DecodeSeconds = n, d.Seconds()

	cfg.Source.Source = path
	cfg.Offline = true
	p := pipeline.New(cfg, st.Detector, st.Analyzer, nil, log)
	start := time.Now()
	if err := p.Run(ctx); err != nil {
		return r, err
	}
	r.PipelineSecs = time.Since(start).Seconds()
	r.PipelineFrames, r.Trees, r.Detections = p.Stats.Frames.Load(), p.Stats.Trees.Load(), p.Stats.Detections.Load()
	return r, nil
}
