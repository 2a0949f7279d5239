package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// vlmReport is what `edgemo vlm --json` prints: every intermediate a
// conformance check against transformers compares, in the reference's terms.
type vlmReport struct {
	Model          string             `json:"model"`
	Provider       string             `json:"provider"`
	Frames         int                `json:"frames"`
	FPS            float64            `json:"fps"`
	SampledIndices []int              `json:"sampled_indices"`
	SampleFPS      float64            `json:"sample_fps"`
	ResizedHW      [2]int             `json:"resized_hw"`
	GridTHW        [3]int             `json:"grid_thw"`
	SecondPerGridT float64            `json:"second_per_grid_t"`
	VideoTokens    int                `json:"video_tokens"`
	Question       string             `json:"question"`
	InputIDs       []int              `json:"input_ids"`
	PositionIDs    [3][]int64         `json:"position_ids"`
	RopeDelta      int64              `json:"rope_delta"`
	Tokens         []int              `json:"tokens"`
	Text           string             `json:"text"`
	Stopped        string             `json:"stopped"`
	Top            [][]tokenLogit     `json:"top,omitempty"`
	Options        *vlmOptionsReport  `json:"options,omitempty"`
	Ms             map[string]float64 `json:"ms"`
}

type tokenLogit struct {
	ID    int     `json:"id"`
	Logit float32 `json:"logit"`
}

type vlmOptionsReport struct {
	Letters      []string  `json:"letters"`
	Labels       []string  `json:"labels"`
	IDs          []int     `json:"ids"`
	Logits       []float32 `json:"logits"`
	Distribution []float64 `json:"distribution"`
	// LetterMass is the probability the option letters carry at the first
	// answer position against the whole vocabulary.
	LetterMass float64 `json:"letter_mass"`
}

// cmdVLM is `edgemo vlm`: one question on one video, every step exposed.
func cmdVLM(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vlm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manifest := fs.String("model", "", "VidEmo manifest (required)")
	framesPath := fs.String("frames", "", "uint8 [T,H,W,3] RGB .npy, or a folder of PNG frames in name order (required)")
	fps := fs.Float64("fps", 0, "the frames' rate: the video is sampled at the manifest's fps (2) from it (required)")
	question := fs.String("question", "", "id of a question in the manifest's plan (e.g. emotion, caption) (required)")
	tokens := fs.Int("tokens", 16, "greedy decoding budget (0: only the first answer position)")
	topK := fs.Int("top", 8, "per decoding step, the top N raw logits (0: none)")
	penalty := fs.Float64("repetition-penalty", 1, "repetition penalty over prompt and output (1: plain greedy)")
	minPixels := fs.Int("min-pixels", 0, "per-frame pixel lower bound (default: the manifest's)")
	maxPixels := fs.Int("max-pixels", 0, "per-frame pixel upper bound (default: the manifest's)")
	tokPath := fs.String("tokenizer", "", "tokenizer.json (default: beside the manifest)")
	providers := fs.String("providers", "cpu", "execution providers, in order")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library")
	asJSON := fs.Bool("json", false, "print the report as JSON (the only mode)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: edgemo vlm --model MANIFEST --frames FILE.npy|DIR --fps F --question NAME --json [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *manifest == "" || *framesPath == "" || *question == "" || !*asJSON || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if !(*fps > 0) || *fps > 1000 {
		return fmt.Errorf("--fps %g: must be in (0, 1000]", *fps)
	}
	if *tokens < 0 || *tokens > 32768 || *topK < 0 || *topK > 1000 || !(*penalty > 0) {
		return fmt.Errorf("--tokens (0..32768), --top (0..1000) or --repetition-penalty (> 0) out of range")
	}
	frames, err := readFrames(*framesPath)
	if err != nil {
		return err
	}
	gen := videmo.GenConfig{TopK: 1, RepetitionPenalty: *penalty}
	r, closeRunner, err := openVidEmo(*manifest, *tokPath, *ortLib, *providers, videmo.Options{Generation: &gen, TraceTop: *topK}, stderr)
	if err != nil {
		return err
	}
	defer closeRunner()
	tok := r.Tokenizer()
	m := r.Manifest()
	qi := slices.IndexFunc(m.Questions, func(q videmo.Question) bool { return q.ID == *question })
	if qi < 0 {
		var ids []string
		for _, q := range m.Questions {
			ids = append(ids, q.ID)
		}
		return fmt.Errorf("--question %q: not in %s (has %s)", *question, *manifest, strings.Join(ids, ", "))
	}
	q := &m.Questions[qi]
	cfg := m.Preprocess
	if *minPixels > 0 {
		cfg.MinPixels = *minPixels
	}
	if *maxPixels > 0 {
		cfg.MaxPixels = *maxPixels
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("--min-pixels/--max-pixels: %w", err)
	}
	w := framesWindow(frames, *fps)
	idx, sampleFPS, err := videmo.SampleFrames(w, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", *framesPath, err)
	}
	t0 := time.Now()
	v, err := videmo.PreprocessWindow(w, cfg)
	if err != nil {
		return fmt.Errorf("%s: %w", *framesPath, err)
	}
	tPre := time.Since(t0)
	prompt, err := r.Prompt(v, []string{q.Text()})
	if err != nil {
		return err
	}
	full := prompt.Full(0)
	pos, delta, err := videmo.RopeIndex(full, m.Tokens.TokenIDs(), [][3]int{v.Grid()}, []float64{v.SecondPerGridT}, cfg)
	if err != nil {
		return err
	}
	t1 := time.Now()
	prefix, err := r.Prefill(v, prompt)
	if err != nil {
		return err
	}
	defer prefix.Close()
	tPrefill := time.Since(t1)
	t2 := time.Now()
	a, err := r.Continue(prefix, prompt.Suffixes[0], r.OptionIDs(qi), *tokens, nil)
	if err != nil {
		return err
	}
	rep := vlmReport{
		Model: m.Ref(), Provider: r.Provider(), Frames: len(frames), FPS: *fps,
		SampledIndices: idx, SampleFPS: sampleFPS, ResizedHW: [2]int{v.Height, v.Width}, GridTHW: v.Grid(),
		SecondPerGridT: v.SecondPerGridT, VideoTokens: v.Tokens(cfg), Question: q.ID,
		InputIDs: full, PositionIDs: [3][]int64(pos), RopeDelta: delta,
		Tokens: a.Tokens, Text: tok.Decode(a.Tokens, false), Stopped: a.Stopped,
		Ms: map[string]float64{"preprocess": ms(tPre), "prefill": ms(tPrefill), "question": ms(time.Since(t2))},
	}
	if rep.Tokens == nil {
		rep.Tokens = []int{}
	}
	for _, step := range a.Top {
		var s []tokenLogit
		for _, x := range step {
			s = append(s, tokenLogit{ID: x.ID, Logit: x.Logit})
		}
		rep.Top = append(rep.Top, s)
	}
	if q.Kind == "choice" {
		o := &vlmOptionsReport{IDs: r.OptionIDs(qi), Logits: a.First, Distribution: videmo.Softmax(a.First), LetterMass: videmo.LetterMass(a.First, a.LogSumExp)}
		for _, op := range q.Options {
			o.Letters = append(o.Letters, op.Letter)
			o.Labels = append(o.Labels, op.Label)
		}
		rep.Options = o
	}
	return json.NewEncoder(stdout).Encode(rep) // one line: a conformance script reads it whole
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// framesWindow makes the frames a window at fps with matching timestamps
// (facetrack crops are BGR: the channels are swapped).
func framesWindow(frames []rgbFrame, fps float64) window.Window {
	t0 := time.Unix(0, 0).UTC()
	w := window.Window{Camera: "vlm", TrackID: 1, FPS: fps, Start: t0}
	for i, f := range frames {
		pix := make([]byte, len(f.pix))
		for k := 0; k+2 < len(pix); k += 3 {
			pix[k], pix[k+1], pix[k+2] = f.pix[k+2], f.pix[k+1], f.pix[k]
		}
		at := t0.Add(time.Duration(float64(i) / fps * float64(time.Second)))
		w.Samples = append(w.Samples, window.Sample{FrameSeq: uint64(i), Time: at, Score: 1,
			Box: facetrack.Rect{W: float64(f.w), H: float64(f.h)}, Crop: facetrack.Crop{W: f.w, H: f.h, Pix: pix}})
		w.End = at
	}
	return w
}

type rgbFrame struct {
	w, h int
	pix  []byte // RGB, row-major
}

// maxFrameBytes bounds one input: a conformance clip, not a film.
const maxFrameBytes = 2 << 30

// readFrames reads a uint8 [T,H,W,3] .npy or a folder of PNGs.
func readFrames(path string) ([]rgbFrame, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("--frames %s: %w", path, err)
	}
	if st.IsDir() {
		return readPNGDir(path)
	}
	return readNpyFrames(path)
}

var npyShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)

func readNpyFrames(path string) ([]rgbFrame, error) {
	bad := func(f string, a ...any) error {
		return fmt.Errorf("--frames %s: %s; want a NumPy uint8 array [T, H, W, 3] of RGB frames (np.save)", path, fmt.Sprintf(f, a...))
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--frames %s: %w", path, err)
	}
	defer f.Close()
	var pre [10]byte
	if _, err := io.ReadFull(f, pre[:]); err != nil || string(pre[:6]) != "\x93NUMPY" {
		return nil, bad("not a .npy file")
	}
	hl := int(binary.LittleEndian.Uint16(pre[8:10]))
	if pre[6] != 1 {
		var ext [2]byte
		if _, err := io.ReadFull(f, ext[:]); err != nil {
			return nil, bad("truncated header")
		}
		hl = int(binary.LittleEndian.Uint32([]byte{pre[8], pre[9], ext[0], ext[1]}))
	}
	if hl > 1<<16 {
		return nil, bad("header of %d bytes", hl)
	}
	hdr := make([]byte, hl)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return nil, bad("truncated header")
	}
	h := string(hdr)
	if !strings.Contains(h, "'|u1'") && !strings.Contains(h, "'u1'") {
		return nil, bad("dtype is not uint8 (header %s)", strings.TrimSpace(h))
	}
	if strings.Contains(h, "'fortran_order': True") {
		return nil, bad("Fortran order")
	}
	sm := npyShape.FindStringSubmatch(h)
	if sm == nil {
		return nil, bad("no shape in the header")
	}
	var dims []int
	for _, s := range strings.Split(sm[1], ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return nil, bad("shape %s", sm[1])
		}
		dims = append(dims, n)
	}
	if len(dims) != 4 || dims[3] != 3 || dims[1] > 8192 || dims[2] > 8192 || dims[0] > 4096 {
		return nil, bad("shape %v (frames up to 8192x8192, 4096 of them)", dims)
	}
	size := dims[1] * dims[2] * 3
	if dims[0]*size > maxFrameBytes {
		return nil, bad("%d bytes of frames, more than %d", dims[0]*size, maxFrameBytes)
	}
	out := make([]rgbFrame, dims[0])
	for i := range out {
		out[i] = rgbFrame{w: dims[2], h: dims[1], pix: make([]byte, size)}
		if _, err := io.ReadFull(f, out[i].pix); err != nil {
			return nil, bad("truncated at frame %d of %d", i, dims[0])
		}
	}
	return out, nil
}

func readPNGDir(dir string) ([]rgbFrame, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.png"))
	if err != nil || len(names) == 0 {
		return nil, fmt.Errorf("--frames %s: no .png files in the folder", dir)
	}
	slices.Sort(names)
	var out []rgbFrame
	for _, n := range names {
		f, err := os.Open(n)
		if err != nil {
			return nil, fmt.Errorf("--frames %s: %w", n, err)
		}
		cfg, err := png.DecodeConfig(f)
		if err == nil && (cfg.Width > 8192 || cfg.Height > 8192) {
			err = fmt.Errorf("%dx%d is larger than 8192x8192", cfg.Width, cfg.Height)
		}
		var img image.Image
		if err == nil {
			if _, err = f.Seek(0, io.SeekStart); err == nil {
				img, err = png.Decode(f)
			}
		}
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("--frames %s: not a readable PNG: %w", n, err)
		}
		b := img.Bounds()
		fr := rgbFrame{w: b.Dx(), h: b.Dy(), pix: make([]byte, b.Dx()*b.Dy()*3)}
		for y := range fr.h {
			for x := range fr.w {
				r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				o := (y*fr.w + x) * 3
				fr.pix[o], fr.pix[o+1], fr.pix[o+2] = byte(r>>8), byte(g>>8), byte(bl>>8)
			}
		}
		if len(out) > 0 && (fr.w != out[0].w || fr.h != out[0].h) {
			return nil, fmt.Errorf("--frames %s: %dx%d, the first frame is %dx%d; a video has one size", n, fr.w, fr.h, out[0].w, out[0].h)
		}
		out = append(out, fr)
	}
	return out, nil
}
