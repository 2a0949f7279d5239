package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tokenizer"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/app"
	"github.com/edgemo/edgemo/window"
)

// cmdBenchVLM is `edgemo bench vlm`: prefill ms, decode tokens/s and the
// decode loop's overhead (wall time / summed ORT Run time) of a VidEmo
// model set on one synthetic window.
func cmdBenchVLM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench vlm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manifest := fs.String("model", "models/videmo-tiny/videmo.manifest.json", "VidEmo manifest (the tiny fixture, an export, or deps/videmo-synthetic/videmo-synthetic.manifest.json)")
	tokPath := fs.String("tokenizer", "", "tokenizer.json (default: beside the manifest, then deps/)")
	frames := fs.Int("frames", 16, "frames in the window (2 fps)")
	side := fs.Int("crop", 512, "square crop side in pixels (512 -> 308x308 per frame)")
	tokens := fs.Int("tokens", 64, "decode steps to time")
	providers := fs.String("providers", "tensorrt,cuda,cpu", "execution providers, in order")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	log := newLogger(stderr, "warn")
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: *ortLib, Providers: splitList(*providers), Logger: log})
	if err != nil {
		return err
	}
	defer rt.Close()
	tp, err := app.FindTokenizer(*tokPath, *manifest)
	if err != nil {
		return err
	}
	tok, err := tokenizer.Load(tp)
	if err != nil {
		return err
	}
	r, err := videmo.NewRunner(rt, *manifest, tok, videmo.Options{Logger: log})
	if err != nil {
		return err
	}
	defer r.Close()
	v, err := videmo.PreprocessWindow(gradientWindow(*frames, *side), r.Manifest().Preprocess)
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
	fmt.Fprintf(stdout, "model      %s (%s)\nprefill    %d tokens in %.1f ms (vision + prefix)\nquestion   %d tokens in %.1f ms off the shared prefix\ndecode     %d tokens: %.1f tokens/s (%.2f ms/token)\noverhead   %.2f%% (decode wall time / summed ORT Run time - 1)\n",
		*manifest, res.Provider, res.PrefixTokens, res.PrefillMS, res.SuffixTokens, res.SuffixMS,
		res.DecodeTokens, res.DecodeTokPerS, res.DecodeMSPerTok, (res.LoopOverhead-1)*100)
	if res.Choices > 0 {
		fmt.Fprintf(stdout, "choices    %d closed-set questions: %.1f ms one Run each, %.1f ms in one batched Run\n",
			res.Choices, res.ChoicesOneByOne, res.ChoicesBatchedMS)
	}
	return nil
}

// gradientWindow is a window of n synthetic crops at 2 fps, each a different
// gradient so frames are not identical.
func gradientWindow(n, side int) window.Window {
	t0 := time.Now()
	w := window.Window{Camera: "bench", TrackID: 1, FPS: 2, Start: t0}
	for i := range n {
		pix := make([]byte, side*side*3)
		for y := range side {
			for x := range side {
				o := (y*side + x) * 3
				pix[o], pix[o+1], pix[o+2] = byte(x+i*8), byte(y), byte((x+y)/2)
			}
		}
		at := t0.Add(time.Duration(i) * 500 * time.Millisecond)
		w.Samples = append(w.Samples, window.Sample{FrameSeq: uint64(i), Time: at, Score: 1,
			Box: facetrack.Rect{W: float64(side), H: float64(side)}, Crop: facetrack.Crop{W: side, H: side, Pix: pix}})
		w.End = at
	}
	return w
}
