package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/parts"
	"github.com/edgemo/edgemo/window"
)

// cmdBenchVLM is `edgemo bench vlm`: prefill ms, decode tokens/s and the
// decode loop's overhead (wall time / summed ORT Run time) of a VidEmo
// model set on one synthetic window.
func cmdBenchVLM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench vlm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manifest := fs.String("model", "models/videmo-tiny/videmo.manifest.json", "VidEmo manifest (the test model set, or a converted checkpoint)")
	tokPath := fs.String("tokenizer", "", "tokenizer.json (default: beside the manifest, then deps/)")
	// The defaults are the pipeline's default window: 8 crops of 192 px at
	// 4 fps, which VidEmo's sampling makes 4 frames of 336x336, grid [2,24,24].
	frames := fs.Int("frames", 8, "crops in the window")
	side := fs.Int("crop", 192, "square crop side in pixels (192 -> 336x336 per frame, 512 -> 308x308)")
	fps := fs.Float64("fps", 4, "the window's sample rate (VidEmo samples it at 2 fps)")
	tokens := fs.Int("tokens", 64, "decode steps to time")
	providers := fs.String("providers", "tensorrt,cuda,cpu", "execution providers, in order")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library")
	remote := fs.String("remote", "", "time VidEmo on this OpenAI-compatible server instead (http://host:port/v1): round trip, server time and client overhead per window; --model is the served model's manifest")
	remoteModel := fs.String("remote-model", "", "--remote: the served model's name (default: the manifest's name)")
	windows := fs.Int("windows", 10, "--remote: windows to time (after one warm-up)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *remote != "" {
		if *windows < 1 {
			return fmt.Errorf("--windows %d: at least 1", *windows)
		}
		return benchRemote(ctx, *remote, *remoteModel, *manifest, *windows, *frames, *side, *fps, *asJSON, stdout)
	}
	r, closeRunner, err := openVidEmo(*manifest, *tokPath, *ortLib, *providers, videmo.Options{}, stderr)
	if err != nil {
		return err
	}
	defer closeRunner()
	v, err := videmo.PreprocessWindow(gradientWindow(*frames, *side, *fps), r.Manifest().Preprocess)
	if err != nil {
		return err
	}
	res, err := videmo.BenchVLM(ctx, r, v, *tokens)
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "window     grid %v, %d video tokens; vision encoder alone %.1f ms\n", res.Grid, res.VideoTokens, res.VisionMS)
	fmt.Fprintf(stdout, "model      %s (%s)\nprefill    %d tokens in %.1f ms (vision + prefix)\nquestion   %d tokens in %.1f ms off the shared prefix\ndecode     %d tokens: %.1f tokens/s (%.2f ms/token)\noverhead   %.2f%% (decode wall time / summed ORT Run time - 1)\n",
		*manifest, res.Provider, res.PrefixTokens, res.PrefillMS, res.SuffixTokens, res.SuffixMS,
		res.DecodeTokens, res.DecodeTokPerS, res.DecodeMSPerTok, (res.LoopOverhead-1)*100)
	if res.Choices > 0 {
		fmt.Fprintf(stdout, "choices    %d closed-set questions: %.1f ms one Run each, %.1f ms in one batched Run\n",
			res.Choices, res.ChoicesOneByOne, res.ChoicesBatchedMS)
	}
	return nil
}

// gradientWindow is a window of n synthetic crops at fps, each a different
// gradient so frames are not identical.
func gradientWindow(n, side int, fps float64) window.Window {
	t0 := time.Now()
	w := window.Window{Camera: "bench", TrackID: 1, FPS: fps, Start: t0}
	for i := range n {
		pix := make([]byte, side*side*3)
		for y := range side {
			for x := range side {
				o := (y*side + x) * 3
				pix[o], pix[o+1], pix[o+2] = byte(x+i*8), byte(y), byte((x+y)/2)
			}
		}
		at := t0.Add(time.Duration(float64(i) / fps * float64(time.Second)))
		w.Samples = append(w.Samples, window.Sample{FrameSeq: uint64(i), Time: at, Score: 1,
			Box: facetrack.Rect{W: float64(side), H: float64(side)}, Crop: facetrack.Crop{W: side, H: side, Pix: pix}})
		w.End = at
	}
	return w
}

// openVidEmo opens a VidEmo runner for a command: ONNX Runtime with the
// given providers, the manifest's tokenizer, warnings on stderr. The
// returned func closes the runner, then the runtime.
func openVidEmo(manifest, tokPath, ortLib, providers string, opts videmo.Options, stderr io.Writer) (*videmo.Runner, func(), error) {
	log := newLogger(stderr, "warn")
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: ortLib, Providers: splitList(providers), Logger: log})
	if err != nil {
		return nil, nil, err
	}
	r, _, err := parts.OpenRunner(rt, parts.VLMOptions{Manifest: manifest, Tokenizer: tokPath, Runner: opts}, log)
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	return r, func() { r.Close(); rt.Close() }, nil
}
