// Package videmo runs VidEmo-3B (a Qwen2.5-VL fine-tune) on ONNX Runtime:
// video preprocessing exactly as qwen_vl_utils + transformers'
// Qwen2VLImageProcessor do it, the ChatML prompt around a video, the
// multimodal rotary (M-RoPE) position ids, the three graphs (vision,
// embedding, decoder) with a KV cache and sampling (Runner), and the
// question plan that turns the model's answers into a tree (Analyzer, an
// engine.Analyzer).
//
// Nothing hard-codes the model's dimensions: every number comes from the
// model's manifest; the preprocessing ones from its PreprocessConfig
// (DefaultPreprocess holds VidEmo-3B's values for tests and for manifests
// that omit them).
package videmo

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// PreprocessConfig is everything the video preprocessing and the M-RoPE
// position ids depend on. Field names follow qwen_vl_utils / the HF processor
// config so a manifest can carry them verbatim.
type PreprocessConfig struct {
	PatchSize         int `json:"patch_size"`          // 14
	TemporalPatchSize int `json:"temporal_patch_size"` // 2
	MergeSize         int `json:"merge_size"`          // 2 (spatial merge)

	// MinPixels and MaxPixels are the effective per-frame bounds handed to
	// smart_resize by qwen_vl_utils.fetch_video. For a video they are not the
	// environment values themselves: fetch_video uses
	//   min = VIDEO_MIN_PIXELS
	//   max = max(min(VIDEO_MAX_PIXELS, VIDEO_TOTAL_PIXELS/nframes*FRAME_FACTOR), int(min*1.05))
	// (see FramePixelBudget). VidEmo's VIDEO_MAX_PIXELS=100352 with
	// VIDEO_MIN_PIXELS=100352 gives min 100352, max 105369.
	MinPixels int     `json:"min_pixels"`
	MaxPixels int     `json:"max_pixels"`
	MaxRatio  float64 `json:"max_ratio"` // smart_resize's MAX_RATIO, 200

	FPS         float64 `json:"fps"`          // target sampling rate, 2.0
	MinFrames   int     `json:"min_frames"`   // FPS_MIN_FRAMES, 4
	MaxFrames   int     `json:"max_frames"`   // FPS_MAX_FRAMES, 16 for VidEmo
	FrameFactor int     `json:"frame_factor"` // FRAME_FACTOR, 2

	RescaleFactor float64    `json:"rescale_factor"` // 1/255
	ImageMean     [3]float64 `json:"image_mean"`     // RGB
	ImageStd      [3]float64 `json:"image_std"`      // RGB

	TokensPerSecond float64 `json:"tokens_per_second"` // vision_config.tokens_per_second, 2
}

// DefaultPreprocess returns VidEmo-3B's values (Qwen2.5-VL-3B processor and
// vision config; qwen_vl_utils defaults with VidEmo's VIDEO_MAX_PIXELS=100352
// FPS_MAX_FRAMES=16).
func DefaultPreprocess() PreprocessConfig {
	const videoMin = 128 * 28 * 28 // qwen_vl_utils VIDEO_MIN_PIXELS = 100352
	return PreprocessConfig{
		PatchSize:         14,
		TemporalPatchSize: 2,
		MergeSize:         2,
		MinPixels:         videoMin,
		// VidEmo runs through ms-swift, which sets VIDEO_MAX_PIXELS=100352
		// and VIDEO_TOTAL_PIXELS=int(128000*28*28*0.9); for up to 16 frames
		// the budget is max(min(100352, 90316800/16*2), int(100352*1.05)).
		MaxPixels:       FramePixelBudget(videoMin, 100352, 90316800, 16, 2),
		MaxRatio:        200,
		FPS:             2.0,
		MinFrames:       4,
		MaxFrames:       16,
		FrameFactor:     2,
		RescaleFactor:   1.0 / 255,
		ImageMean:       [3]float64{0.48145466, 0.4578275, 0.40821073},
		ImageStd:        [3]float64{0.26862954, 0.26130258, 0.27577711},
		TokensPerSecond: 2,
	}
}

// Factor is the side granularity of a resized frame: patch × merge (28).
func (c PreprocessConfig) Factor() int { return c.PatchSize * c.MergeSize }

// PatchDim is the length of one flattened patch: C × tps × patch² (1176).
func (c PreprocessConfig) PatchDim() int {
	return 3 * c.TemporalPatchSize * c.PatchSize * c.PatchSize
}

// Validate reports the first field that cannot work.
func (c PreprocessConfig) Validate() error {
	switch {
	case c.PatchSize <= 0 || c.TemporalPatchSize <= 0 || c.MergeSize <= 0:
		return fmt.Errorf("videmo: patch_size, temporal_patch_size and merge_size must be > 0 (got %d, %d, %d)",
			c.PatchSize, c.TemporalPatchSize, c.MergeSize)
	case c.MinPixels <= 0 || c.MaxPixels < c.MinPixels:
		return fmt.Errorf("videmo: need 0 < min_pixels <= max_pixels (got %d, %d)", c.MinPixels, c.MaxPixels)
	case c.MaxRatio <= 1:
		return fmt.Errorf("videmo: max_ratio must be > 1 (got %g)", c.MaxRatio)
	case !(c.FPS > 0):
		return fmt.Errorf("videmo: fps must be > 0 (got %g)", c.FPS)
	case c.FrameFactor <= 0 || c.MinFrames <= 0 || c.MaxFrames < c.MinFrames:
		return fmt.Errorf("videmo: need frame_factor > 0 and 0 < min_frames <= max_frames (got %d, %d, %d)",
			c.FrameFactor, c.MinFrames, c.MaxFrames)
	case !(c.RescaleFactor > 0):
		return fmt.Errorf("videmo: rescale_factor must be > 0 (got %g)", c.RescaleFactor)
	case !(c.TokensPerSecond > 0):
		return fmt.Errorf("videmo: tokens_per_second must be > 0 (got %g)", c.TokensPerSecond)
	}
	for i, s := range c.ImageStd {
		if !(s > 0) {
			return fmt.Errorf("videmo: image_std[%d] must be > 0 (got %g)", i, s)
		}
	}
	return nil
}

// FramePixelBudget is qwen_vl_utils.fetch_video's per-frame max_pixels for a
// video of nframes sampled frames:
//
//	max(min(videoMax, total/nframes*frameFactor), int(videoMin*1.05))
//
// truncated to an int (smart_resize only compares against it and divides by
// it; for every budget it is used with here the float value is integral or
// the int(min*1.05) term wins).
func FramePixelBudget(videoMin, videoMax, total, nframes, frameFactor int) int {
	m := math.Min(float64(videoMax), float64(total)/float64(nframes)*float64(frameFactor))
	return int(math.Max(m, math.Trunc(float64(videoMin)*1.05)))
}

// ErrAspectRatio is returned by SmartResize for frames more than MaxRatio
// times wider than tall (or the reverse).
var ErrAspectRatio = errors.New("videmo: absolute aspect ratio too large")

// SmartResize is qwen_vl_utils.smart_resize with factor = patch×merge and
// cfg's per-frame pixel bounds: both sides are rounded (half to even, as
// Python's round) to multiples of the factor; if that exceeds MaxPixels both
// sides are scaled by 1/sqrt(h·w/max) and floored to the factor, else if
// below MinPixels scaled by sqrt(min/(h·w)) and ceiled. It returns (height,
// width).
func SmartResize(h, w int, cfg PreprocessConfig) (int, int, error) {
	return smartResize(h, w, cfg.Factor(), float64(cfg.MinPixels), float64(cfg.MaxPixels), cfg.MaxRatio)
}

func smartResize(h, w, factor int, minPixels, maxPixels, maxRatio float64) (int, int, error) {
	if h <= 0 || w <= 0 {
		return 0, 0, fmt.Errorf("videmo: cannot resize a %dx%d frame", w, h)
	}
	if r := float64(max(h, w)) / float64(min(h, w)); r > maxRatio {
		return 0, 0, fmt.Errorf("%w: must be smaller than %g, got %g (%dx%d)", ErrAspectRatio, maxRatio, r, w, h)
	}
	f := float64(factor)
	hBar := max(factor, int(math.RoundToEven(float64(h)/f))*factor)
	wBar := max(factor, int(math.RoundToEven(float64(w)/f))*factor)
	if float64(hBar*wBar) > maxPixels {
		beta := math.Sqrt(float64(h*w) / maxPixels)
		hBar = max(factor, int(math.Floor(float64(h)/beta/f))*factor)
		wBar = max(factor, int(math.Floor(float64(w)/beta/f))*factor)
	} else if float64(hBar*wBar) < minPixels {
		beta := math.Sqrt(minPixels / float64(h*w))
		hBar = int(math.Ceil(float64(h)*beta/f)) * factor
		wBar = int(math.Ceil(float64(w)*beta/f)) * factor
	}
	return hBar, wBar, nil
}

// ErrTooFewFrames is returned when a window cannot give FrameFactor frames
// (qwen_vl_utils.smart_nframes raises ValueError there).
var ErrTooFewFrames = errors.New("videmo: too few frames")

// SmartNFrames is qwen_vl_utils.smart_nframes for the fps mode:
//
//	min_frames = ceil_by_factor(FPS_MIN_FRAMES, FRAME_FACTOR)
//	max_frames = floor_by_factor(min(FPS_MAX_FRAMES, total), FRAME_FACTOR)
//	n = total / video_fps * fps
//	n = floor_by_factor(min(min(max(n, min_frames), max_frames), total), FRAME_FACTOR)
//
// and an error unless FRAME_FACTOR <= n <= total. Note that with fewer than
// FPS_MIN_FRAMES frames the clamp to max_frames wins: 3 frames give 2, and
// 0 or 1 frame is an error (qwen does not repeat frames of a video).
func SmartNFrames(total int, videoFPS float64, cfg PreprocessConfig) (int, error) {
	if total <= 0 || !(videoFPS > 0) {
		return 0, fmt.Errorf("%w: %d frames at %g fps", ErrTooFewFrames, total, videoFPS)
	}
	ff := float64(cfg.FrameFactor)
	minFrames := math.Ceil(float64(cfg.MinFrames)/ff) * ff
	maxFrames := math.Floor(float64(min(cfg.MaxFrames, total))/ff) * ff
	n := float64(total) / videoFPS * cfg.FPS
	n = math.Min(math.Min(math.Max(n, minFrames), maxFrames), float64(total))
	nf := int(math.Floor(n/ff)) * cfg.FrameFactor
	if nf < cfg.FrameFactor || nf > total {
		return 0, fmt.Errorf("%w: nframes should be in [%d, %d], got %d (%d frames at %g fps)",
			ErrTooFewFrames, cfg.FrameFactor, total, nf, total, videoFPS)
	}
	return nf, nil
}

// FrameIndices is torch.linspace(start, end, n).round().long(): n indices
// spread evenly over [start, end], rounded half to even. linspace is computed
// the way torch does (from the start for the first half, from the end for the
// second), in float64; with n even the exact values are never at .5, so
// torch's float32 arithmetic rounds to the same integers.
func FrameIndices(start, end, n int) []int {
	if n <= 0 {
		return nil
	}
	out := make([]int, n)
	if n == 1 {
		out[0] = start
		return out
	}
	step := float64(end-start) / float64(n-1)
	half := n / 2
	for i := range n {
		var v float64
		if i < half {
			v = float64(start) + step*float64(i)
		} else {
			v = float64(end) - step*float64(n-1-i)
		}
		out[i] = int(math.RoundToEven(v))
	}
	return out
}

// timestampAgreement is how close (relative) the timestamps' rate must be to
// the window's nominal FPS for the nominal value to be used instead: time
// stamps carry nanosecond truncation, and smart_nframes floors
// total/video_fps·fps to FRAME_FACTOR, so a rate 1e-9 off an exact value can
// drop two frames (e.g. 20 samples at 4 fps: 9.9999999 → 8 instead of 10).
const timestampAgreement = 1e-6

// windowFPS is the rate qwen_vl_utils would read as video_fps for the
// window: the rate its timestamps imply, (n−1)/(t_last − t_first), when it
// has at least two samples with strictly increasing times. A live window
// may have dropped samples (memory bounds, missed detections), so its
// nominal w.FPS can overstate the real rate; the timestamps do not. w.FPS is
// the fallback when the timestamps are missing or degenerate, and is also
// used when it agrees with them within timestampAgreement (the same rate,
// without the timestamps' rounding).
func windowFPS(w window.Window) float64 {
	if r := timestampFPS(w.Samples); r > 0 {
		if w.FPS > 0 && math.Abs(r-w.FPS) <= timestampAgreement*w.FPS {
			return w.FPS
		}
		return r
	}
	if w.FPS > 0 {
		return w.FPS
	}
	return 0
}

// timestampFPS is (n−1)/(t_last − t_first), or 0 unless there are ≥ 2
// samples with set, strictly increasing times.
func timestampFPS(s []window.Sample) float64 {
	n := len(s)
	if n < 2 {
		return 0
	}
	for i := range s {
		if s[i].Time.IsZero() || (i > 0 && !s[i].Time.After(s[i-1].Time)) {
			return 0
		}
	}
	return float64(n-1) / s[n-1].Time.Sub(s[0].Time).Seconds()
}

// SampleFrames picks the window's samples the model sees, as qwen_vl_utils
// does for a video file: the window is a video of len(w.Samples) frames at
// video_fps = windowFPS (the timestamps' rate, else w.FPS); the count is
// SmartNFrames and the indices FrameIndices(0, len-1, n). It also returns
// qwen_vl_utils' sample_fps = n / total × video_fps (informational: VidEmo's
// ms-swift does not derive second_per_grid_t from it, see PreprocessWindow).
func SampleFrames(w window.Window, cfg PreprocessConfig) ([]int, float64, error) {
	total := len(w.Samples)
	fps := windowFPS(w)
	n, err := SmartNFrames(total, fps, cfg)
	if err != nil {
		return nil, 0, err
	}
	return FrameIndices(0, total-1, n), float64(n) / float64(total) * fps, nil
}

// secondPerGridT is what VidEmo's serving stack passes to the model:
// ms-swift's qwen2_5_vl template always sets
// second_per_grid_ts = temporal_patch_size / FPS with qwen_vl_utils' constant
// FPS (2.0 → 1.0), whatever rate the frames were actually sampled at.
func secondPerGridT(cfg PreprocessConfig) float64 {
	return float64(cfg.TemporalPatchSize) / cfg.FPS
}

// secondPerGridTFromSampleFPS is temporal_patch_size / sample_fps, what
// Qwen2_5_VLProcessor computes when handed qwen_vl_utils' returned fps (not
// VidEmo's path; kept for comparing against references that use it).
func secondPerGridTFromSampleFPS(sampleFPS float64, cfg PreprocessConfig) float64 {
	return float64(cfg.TemporalPatchSize) / sampleFPS
}

// Video is one preprocessed video, ready for the vision encoder:
// pixel_values [N, Dim] and video_grid_thw [GridT, GridH, GridW].
type Video struct {
	Pixels              []float32 // row-major [N, Dim]
	N, Dim              int       // N = GridT·GridH·GridW patches, Dim = 3·tps·patch²
	GridT, GridH, GridW int       // in patches (GridH, GridW before merging)
	SecondPerGridT      float64   // temporal_patch_size / cfg.FPS (ms-swift's constant)
	Height, Width       int       // resized frame size (GridH·patch, GridW·patch)
}

// Grid returns video_grid_thw.
func (v *Video) Grid() [3]int { return [3]int{v.GridT, v.GridH, v.GridW} }

// Tokens is the number of <|video_pad|> tokens the video takes in the prompt
// (and of rows the vision encoder returns): N / merge².
func (v *Video) Tokens(cfg PreprocessConfig) int { return v.N / (cfg.MergeSize * cfg.MergeSize) }

// PreprocessWindow samples the window (SampleFrames) and preprocesses the
// chosen crops.
//
// SecondPerGridT is temporal_patch_size / cfg.FPS (1.0 for VidEmo), not
// temporal_patch_size / sample_fps: this follows ms-swift (VidEmo's serving
// stack), which passes that constant, with transformers 4.49, whose
// get_rope_index computes t = floor(g × second_per_grid_t ×
// tokens_per_second) in floating point (RopeIndex). transformers ≥ 4.51
// first casts second_per_grid_t to an integer tensor, truncating
// non-integer values; the two agree for 1.0.
func PreprocessWindow(w window.Window, cfg PreprocessConfig) (*Video, error) {
	idx, _, err := SampleFrames(w, cfg)
	if err != nil {
		return nil, err
	}
	frames := make([]facetrack.Crop, len(idx))
	for i, j := range idx {
		frames[i] = w.Samples[j].Crop
	}
	v, err := Preprocess(frames, cfg)
	if err != nil {
		return nil, err
	}
	v.SecondPerGridT = secondPerGridT(cfg)
	return v, nil
}

// Preprocess turns already-sampled BGR crops into pixel_values:
//  1. target size = SmartResize of the first frame (a video has one size;
//     later frames of another size are resized to it too);
//  2. each frame, as RGB uint8, is resized like torchvision's
//     resize(BICUBIC, antialias=True) on a uint8 tensor: separable
//     antialiased cubic filter (a = −0.5, support 2·max(scale, 1)),
//     horizontal pass then vertical, float32, then clamp to [0, 255] and
//     round half to even back to uint8 (see resizeBicubicAA);
//  3. rescale by RescaleFactor in float64, then normalise with
//     ImageMean/ImageStd in float32 (as the HF processor, see newNormalizer);
//  4. an odd frame count repeats the last frame up to a multiple of
//     TemporalPatchSize;
//  5. patch flattening as Qwen2VLImageProcessor._preprocess (see patchify).
//
// SecondPerGridT is TemporalPatchSize / cfg.FPS, as ms-swift passes it
// (see PreprocessWindow).
func Preprocess(frames []facetrack.Crop, cfg PreprocessConfig) (*Video, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%w: no frames", ErrTooFewFrames)
	}
	for i, f := range frames {
		if f.W <= 0 || f.H <= 0 || len(f.Pix) < f.W*f.H*3 {
			return nil, fmt.Errorf("videmo: frame %d: bad crop %dx%d with %d bytes", i, f.W, f.H, len(f.Pix))
		}
	}
	rh, rw, err := SmartResize(frames[0].H, frames[0].W, cfg)
	if err != nil {
		return nil, err
	}
	v := newVideo(len(frames), rh, rw, cfg)
	v.SecondPerGridT = secondPerGridT(cfg)

	norm := newNormalizer(cfg)
	// Resize frames in parallel; each writes disjoint elements of Pixels.
	workers := min(runtime.GOMAXPROCS(0), len(frames))
	var wg sync.WaitGroup
	next := make(chan int, len(frames))
	for i := range frames {
		next <- i
	}
	close(next)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var rs resizer
			for i := range next {
				rgb := rs.resize(frames[i], rh, rw)
				v.putFrame(i, rgb, norm, cfg)
			}
		}()
	}
	wg.Wait()
	// Temporal padding: repeat the last frame's planes.
	for t := len(frames); t < v.GridT*cfg.TemporalPatchSize; t++ {
		v.copyFrame(len(frames)-1, t, cfg)
	}
	return v, nil
}

func newVideo(nframes, rh, rw int, cfg PreprocessConfig) *Video {
	tps := cfg.TemporalPatchSize
	gt := (nframes + tps - 1) / tps
	gh, gw := rh/cfg.PatchSize, rw/cfg.PatchSize
	v := &Video{
		GridT: gt, GridH: gh, GridW: gw,
		N: gt * gh * gw, Dim: cfg.PatchDim(),
		Height: rh, Width: rw,
	}
	v.Pixels = make([]float32, v.N*v.Dim)
	return v
}

// normalizer maps a uint8 level to its normalised float32 value per channel,
// with the HF image processor's arithmetic: rescale() multiplies the uint8
// array by the Python float rescale_factor in float64 and casts to float32,
// then normalize() computes (x − mean) / std in float32 with float32
// mean/std. Rescaling in float32 instead moves 325 of the 768 values by an
// ulp.
type normalizer [3][256]float32

func newNormalizer(cfg PreprocessConfig) *normalizer {
	var n normalizer
	for c := range 3 {
		m, s := float32(cfg.ImageMean[c]), float32(cfg.ImageStd[c])
		for v := range 256 {
			x := float32(float64(v) * cfg.RescaleFactor)
			n[c][v] = float32(x-m) / s
		}
	}
	return &n
}

// patchIndex is where pixel (frame t, channel c, y, x) of the padded video
// lands in the flattened [N, Dim] matrix. Qwen2VLImageProcessor reshapes the
// (T, C, H, W) video to
//
//	(gt, tps, C, gh/m, m, p, gw/m, m, p)
//
// permutes it to (gt, gh/m, gw/m, m, m, C, tps, p, p) and flattens to
// [gt·gh·gw, C·tps·p·p]. So with t = gt·tps + tp, y = (bh·m + mh)·p + py,
// x = (bw·m + mw)·p + px:
//
//	row = ((gt·gh/m + bh)·gw/m + bw)·m² + mh·m + mw
//	col = ((c·tps + tp)·p + py)·p + px
func patchIndex(t, c, y, x int, v *Video, cfg PreprocessConfig) int {
	p, m, tps := cfg.PatchSize, cfg.MergeSize, cfg.TemporalPatchSize
	gt, tp := t/tps, t%tps
	bh, mh, py := y/(p*m), (y/p)%m, y%p
	bw, mw, px := x/(p*m), (x/p)%m, x%p
	row := ((gt*(v.GridH/m)+bh)*(v.GridW/m)+bw)*m*m + mh*m + mw
	col := ((c*tps+tp)*p+py)*p + px
	return row*v.Dim + col
}

// putFrame writes one resized RGB uint8 frame (HWC, rh×rw) into the patch
// matrix at temporal index t.
func (v *Video) putFrame(t int, rgb []uint8, norm *normalizer, cfg PreprocessConfig) {
	p, m, tps := cfg.PatchSize, cfg.MergeSize, cfg.TemporalPatchSize
	gt, tp := t/tps, t%tps
	gwm := v.GridW / m
	rowT := gt * v.GridH * v.GridW
	for y := range v.Height {
		bh, mh, py := y/(p*m), (y/p)%m, y%p
		rowY := rowT + bh*gwm*m*m + mh*m
		colY := (tp*p + py) * p
		src := rgb[y*v.Width*3 : (y+1)*v.Width*3]
		for x := range v.Width {
			bw, mw, px := x/(p*m), (x/p)%m, x%p
			base := (rowY+bw*m*m+mw)*v.Dim + colY + px
			for c := range 3 {
				v.Pixels[base+c*tps*p*p] = norm[c][src[x*3+c]]
			}
		}
	}
}

// copyFrame duplicates the values of temporal index from into index to (the
// temporal padding of an odd frame count).
func (v *Video) copyFrame(from, to int, cfg PreprocessConfig) {
	for y := range v.Height {
		for x := range v.Width {
			for c := range 3 {
				v.Pixels[patchIndex(to, c, y, x, v, cfg)] = v.Pixels[patchIndex(from, c, y, x, v, cfg)]
			}
		}
	}
}
