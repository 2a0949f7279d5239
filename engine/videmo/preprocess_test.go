package videmo

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

func TestFramePixelBudget(t *testing.T) {
	// ms-swift: VIDEO_MAX_PIXELS=100352, VIDEO_TOTAL_PIXELS=int(128000*28*28*0.9)
	// = 90316800, 16 frames: max(min(100352, 90316800/16*2 = 11289600),
	// int(100352*1.05) = int(105369.6) = 105369) = 105369.
	if got := FramePixelBudget(100352, 100352, 90316800, 16, 2); got != 105369 {
		t.Errorf("ms-swift budget = %d, want 105369", got)
	}
	// Plain qwen_vl_utils reads the env VIDEO_MAX_PIXELS into
	// VIDEO_TOTAL_PIXELS (VIDEO_MAX_PIXELS stays 768*28*28 = 602112):
	// max(min(602112, 100352/16*2 = 12544), 105369) = 105369 — the same.
	if got := FramePixelBudget(100352, 602112, 100352, 16, 2); got != 105369 {
		t.Errorf("qwen_vl_utils budget = %d, want 105369", got)
	}
	// A budget where the total wins: min(602112, 1e6/4*2 = 500000) = 500000
	// > int(3136*1.05) = 3292.
	if got := FramePixelBudget(3136, 602112, 1000000, 4, 2); got != 500000 {
		t.Errorf("total-bound budget = %d, want 500000", got)
	}
	if c := DefaultPreprocess(); c.MinPixels != 100352 || c.MaxPixels != 105369 {
		t.Errorf("default bounds = %d..%d, want 100352..105369", c.MinPixels, c.MaxPixels)
	}
}

func TestSmartResize(t *testing.T) {
	cfg := DefaultPreprocess() // factor 28, min 100352, max 105369
	cases := []struct {
		h, w, rh, rw int
		why          string
	}{
		// videmo.md.
		{512, 512, 308, 308, "round(512/28=18.29)=18 → 504²=254016 > max; beta=sqrt(262144/105369)=1.5773; 512/beta=324.6 → floor(11.59)=11 → 308"},
		{720, 1280, 224, 420, "728×1288 > max; beta=sqrt(921600/105369)=2.9574; 720/beta=243.5 → 8·28=224; 1280/beta=432.8 → 15·28=420"},
		// Python's round is half to even: 294/28 = 10.5 → 10 → 280; 280×364 =
		// 101920 is within bounds, so no scaling. (Half away from zero would
		// give 308×364 = 112112 > max → 280×336.)
		{294, 364, 280, 364, "half-to-even rounding"},
		{100, 100, 336, 336, "112²=12544 < min; beta=sqrt(100352/10000)=3.1678; 316.78/28=11.31 → ceil 12 → 336 (above max: smart_resize does not re-check)"},
		{256, 256, 336, 336, "252² < min; beta=sqrt(100352/65536)=1.2374; 256·beta=316.78 → 336"},
		{300, 300, 336, 336, "round(10.71)=11 → 308²=94864 < min → 316.78 → 336"},
		{322, 322, 308, 308, "322/28=11.5 → 12 (even) → 336²=112896 > max; 322/sqrt(103684/105369)... 324.6/28 → 11 → 308"},
		{336, 336, 308, 308, "112896 > max; beta=1.0351; 324.6/28=11.59 → 308"},
		{1080, 1920, 224, 420, "1092×1932 > max; beta=sqrt(2073600/105369)=4.4361; 243.5 → 224; 432.8 → 420"},
		{480, 640, 280, 364, "476×644 > max; beta=sqrt(307200/105369)=1.7075; 281.1/28=10.04 → 280; 374.8/28=13.39 → 364"},
		{10, 1990, 28, 4480, "ratio 199 ok; h_bar=max(28, 0)=28, w_bar=1988; 55664 < min; beta=sqrt(100352/19900)=2.2456; h: ceil(0.80)=1 → 28; w: 4468.8/28=159.6 → 160 → 4480"},
	}
	for _, c := range cases {
		rh, rw, err := SmartResize(c.h, c.w, cfg)
		if err != nil || rh != c.rh || rw != c.rw {
			t.Errorf("SmartResize(%d, %d) = %d, %d, %v; want %d, %d (%s)", c.h, c.w, rh, rw, err, c.rh, c.rw, c.why)
		}
	}
	for _, hw := range [][2]int{{10, 2001}, {2001, 10}, {2, 401}} {
		if _, _, err := SmartResize(hw[0], hw[1], cfg); !errors.Is(err, ErrAspectRatio) {
			t.Errorf("SmartResize(%d, %d) err = %v, want ErrAspectRatio", hw[0], hw[1], err)
		}
	}
	if _, _, err := SmartResize(0, 10, cfg); err == nil {
		t.Error("SmartResize(0, 10) accepted an empty frame")
	}
}

func mkWindow(n int, fps float64) window.Window {
	w := window.Window{FPS: fps, Samples: make([]window.Sample, n)}
	t0 := time.Unix(1000, 0)
	for i := range w.Samples {
		w.Samples[i].Time = t0.Add(time.Duration(float64(i) / fps * float64(time.Second)))
	}
	return w
}

func TestSampleFrames(t *testing.T) {
	cfg := DefaultPreprocess() // fps 2, frames [4, 16], factor 2
	cases := []struct {
		n         int
		fps       float64
		idx       []int
		sampleFPS float64
		why       string
	}{
		// 8 s at 4 fps: 32/4·2 = 16 → 16; linspace(0, 31, 16), step 31/15:
		// first half 0, 2.07, 4.13, 6.2, 8.27, 10.33, 12.4, 14.47; second half
		// from the end 31 − 2.07·k: 16.53, 18.6, 20.67, 22.73, 24.8, 26.87, 28.93, 31.
		{32, 4, []int{0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31}, 2, "8 s at 4 fps"},
		// 2 s at 4 fps: 8/4·2 = 4; linspace(0, 7, 4) = 0, 2.33, 4.67, 7.
		{8, 4, []int{0, 2, 5, 7}, 2, "2 s at 4 fps"},
		// 3 samples: max_frames = floor_by_factor(min(16, 3)) = 2 beats
		// min_frames 4: n = min(max(1.5, 4), 2) = 2; linspace(0, 2, 2).
		{3, 4, []int{0, 2}, 2.0 / 3 * 4, "fewer samples than FPS_MIN_FRAMES"},
		// 16 s at 4 fps: 64/4·2 = 32 → clamped to 16; step 63/15 = 4.2.
		{64, 4, []int{0, 4, 8, 13, 17, 21, 25, 29, 34, 38, 42, 46, 50, 55, 59, 63}, 1, "clamped to FPS_MAX_FRAMES"},
		// 10 at 3 fps: 10/3·2 = 6.67 → floor to even 6; step 9/5 = 1.8:
		// 0, 1.8, 3.6 | 5.4, 7.2, 9.
		{10, 3, []int{0, 2, 4, 5, 7, 9}, 6.0 / 10 * 3, "floored to FRAME_FACTOR"},
		// 10 at 30 fps: 0.67 → raised to min_frames 4; linspace(0, 9, 4).
		{10, 30, []int{0, 3, 6, 9}, 12, "raised to FPS_MIN_FRAMES"},
		// 7 at 2 fps: 7 → max_frames = floor_by_factor(7) = 6; step 1.2:
		// 0, 1.2, 2.4 | 3.6, 4.8, 6.
		{7, 2, []int{0, 1, 2, 4, 5, 6}, 6.0 / 7 * 2, "odd count"},
	}
	for _, c := range cases {
		idx, sfps, err := SampleFrames(mkWindow(c.n, c.fps), cfg)
		if err != nil || !slices.Equal(idx, c.idx) || math.Abs(sfps-c.sampleFPS) > 1e-12 {
			t.Errorf("%s: SampleFrames(%d @ %g fps) = %v, %g, %v; want %v, %g", c.why, c.n, c.fps, idx, sfps, err, c.idx, c.sampleFPS)
		}
	}
	// 0 or 1 sample: qwen's smart_nframes raises (nframes 0 < FRAME_FACTOR).
	for _, n := range []int{0, 1} {
		if _, _, err := SampleFrames(mkWindow(n, 4), cfg); !errors.Is(err, ErrTooFewFrames) {
			t.Errorf("SampleFrames(%d samples) err = %v, want ErrTooFewFrames", n, err)
		}
	}
	// FPS unset: rate from timestamps, 9 samples over 4 s = 2 fps → 9/2·2 = 9
	// → max_frames 8; linspace(0, 8, 8), step 8/7: 0, 1.14, 2.29, 3.43 |
	// 4.57, 5.71, 6.86, 8.
	w := mkWindow(9, 2)
	w.FPS = 0
	idx, _, err := SampleFrames(w, cfg)
	if want := []int{0, 1, 2, 3, 5, 6, 7, 8}; err != nil || !slices.Equal(idx, want) {
		t.Errorf("timestamp fps: %v, %v; want %v", idx, err, want)
	}
}

// The timestamps, not the nominal FPS, say how fast a window was sampled: a
// live window that dropped samples has a nominal rate that lies.
func TestSampleFramesTimestampsFirst(t *testing.T) {
	cfg := DefaultPreprocess()
	// 16 samples 0.5 s apart (2 fps) in a window that claims 4 fps: at 4 fps
	// smart_nframes would give 16/4·2 = 8; at the real 2 fps all 16.
	w := mkWindow(16, 2)
	w.FPS = 4
	idx, sfps, err := SampleFrames(w, cfg)
	if err != nil || len(idx) != 16 || sfps != 2 {
		t.Errorf("nominal 4 fps, timestamps 2 fps: %d frames at %g fps, %v; want 16 at 2", len(idx), sfps, err)
	}
	// Uneven gaps: 8 samples over 3.5 s is (8−1)/3.5 = 2 fps whatever the
	// spacing inside, so n = 8/2·2 = 8 (the nominal 4 fps would give 4).
	w = mkWindow(8, 2)
	w.FPS = 4
	w.Samples[3].Time = w.Samples[2].Time.Add(10 * time.Millisecond)
	if idx, _, err := SampleFrames(w, cfg); err != nil || len(idx) != 8 {
		t.Errorf("uneven timestamps: %v, %v; want 8 frames", idx, err)
	}
	// Degenerate timestamps fall back to the nominal rate: all equal, one
	// missing, or going backwards. 16 at 4 fps → 8 frames.
	for name, mangle := range map[string]func(*window.Window){
		"equal": func(w *window.Window) {
			for i := range w.Samples {
				w.Samples[i].Time = w.Samples[0].Time
			}
		},
		"missing":   func(w *window.Window) { w.Samples[5].Time = time.Time{} },
		"backwards": func(w *window.Window) { w.Samples[5].Time, w.Samples[6].Time = w.Samples[6].Time, w.Samples[5].Time },
	} {
		w := mkWindow(16, 2)
		w.FPS = 4
		mangle(&w)
		if idx, sfps, err := SampleFrames(w, cfg); err != nil || len(idx) != 8 || sfps != 2 {
			t.Errorf("%s timestamps: %d frames at %g fps, %v; want the nominal rate's 8 at 2", name, len(idx), sfps, err)
		}
		w.FPS = 0
		if _, _, err := SampleFrames(w, cfg); !errors.Is(err, ErrTooFewFrames) {
			t.Errorf("%s timestamps and no FPS: err %v, want ErrTooFewFrames", name, err)
		}
	}
	// Timestamps a nanosecond off the nominal rate use the nominal rate:
	// 20 samples at 4 fps give 20/4·2 = 10 frames; the timestamps' rate
	// 19/4.749999999 s is above 4 and would floor 9.99… to 8.
	w = mkWindow(20, 4)
	w.Samples[19].Time = w.Samples[19].Time.Add(-time.Nanosecond)
	if idx, _, err := SampleFrames(w, cfg); err != nil || len(idx) != 10 {
		t.Errorf("timestamps 1 ns short of 4 fps: %d frames, %v; want 10", len(idx), err)
	}
}

// The normaliser rescales in float64 as the HF image processor does
// (uint8 array × Python float → float64, then float32), and differs from a
// float32 rescale where the reference README says it does.
func TestNormalizerRescaleFloat64(t *testing.T) {
	cfg := DefaultPreprocess()
	n := newNormalizer(cfg)
	diff := 0
	for c := range 3 {
		m, s := float32(cfg.ImageMean[c]), float32(cfg.ImageStd[c])
		for l := range 256 {
			x64 := float32(float64(l) * cfg.RescaleFactor)
			if want := (x64 - m) / s; n[c][l] != want {
				t.Fatalf("channel %d level %d = %g, want %g", c, l, n[c][l], want)
			}
			x32 := float32(l) * float32(cfg.RescaleFactor)
			if (x32-m)/s != n[c][l] {
				diff++
			}
		}
	}
	// golden README: a float32 rescale moves 325 of the 768 values by an ulp.
	if diff != 325 {
		t.Errorf("a float32 rescale differs at %d of 768 values, the reference measured 325", diff)
	}
}

// refResize is an independent float64 reference for the antialiased bicubic
// resize: a direct (non-separable) 2-D sum with PIL's documented filter —
// Keys cubic, a = −0.5, support 2 scaled by the downscale factor, window
// [round(center − support), round(center + support)) clipped to the image,
// weights normalised per axis — then clamp and round half to even.
func refResize(src []float64, h, w, rh, rw int) []float64 {
	keys := func(x float64) float64 {
		const a = -0.5
		x = math.Abs(x)
		switch {
		case x < 1:
			return (a+2)*x*x*x - (a+3)*x*x + 1
		case x < 2:
			return a*x*x*x - 5*a*x*x + 8*a*x - 4*a
		}
		return 0
	}
	axis := func(in, out int) ([]int, [][]float64) {
		scale := float64(in) / float64(out)
		fs := math.Max(scale, 1)
		support := 2 * fs
		lo := make([]int, out)
		ws := make([][]float64, out)
		for i := range out {
			center := (float64(i) + 0.5) * scale
			a := max(int(math.Floor(center-support+0.5)), 0)
			b := min(int(math.Floor(center+support+0.5)), in)
			var sum float64
			for j := a; j < b; j++ {
				v := keys((float64(j) + 0.5 - center) / fs)
				ws[i] = append(ws[i], v)
				sum += v
			}
			for k := range ws[i] {
				ws[i][k] /= sum
			}
			lo[i] = a
		}
		return lo, ws
	}
	xl, xw := axis(w, rw)
	yl, yw := axis(h, rh)
	out := make([]float64, rh*rw)
	for y := range rh {
		for x := range rw {
			var s float64
			for i, wy := range yw[y] {
				for j, wx := range xw[x] {
					s += wy * wx * src[(yl[y]+i)*w+xl[x]+j]
				}
			}
			out[y*rw+x] = math.RoundToEven(math.Min(math.Max(s, 0), 255))
		}
	}
	return out
}

func randCrop(rng *rand.Rand, w, h int) facetrack.Crop {
	c := facetrack.Crop{W: w, H: h, Pix: make([]byte, w*h*3)}
	// Smooth gradients plus noise and a hard edge: exercises overshoot/clamp.
	for y := range h {
		for x := range w {
			for ch := range 3 {
				v := float64(x*255/max(w-1, 1)+y*(ch+1)*7) + rng.NormFloat64()*30
				if x > w/2 && ch == 1 {
					v = 255 - v/2
				}
				c.Pix[(y*w+x)*3+ch] = byte(math.Min(math.Max(v, 0), 255))
			}
		}
	}
	return c
}

func TestResizeBicubicAAHand(t *testing.T) {
	// 1×4 → 1×2 (scale 2, support 4): output 0 has center 1, taps 0..3 at
	// x = (j − 1 + 0.5)/2 = −0.25, 0.25, 0.75, 1.25 → K = 0.8671875,
	// 0.8671875, 0.2265625, −0.0703125 (sum 1.890625). For row 0,100,200,255:
	// (86.71875 + 45.3125 − 17.9296875)/1.890625 = 60.35 → 60; output 1
	// (center 3, x = −1.25 … 0.25): 417.2265625/1.890625 = 220.68 → 221.
	row := []byte{0, 100, 200, 255}
	c := facetrack.Crop{W: 4, H: 1, Pix: make([]byte, 12)}
	for x, v := range row {
		c.Pix[x*3+0], c.Pix[x*3+1], c.Pix[x*3+2] = v, 0, 255 // B carries the row
	}
	var rs resizer
	got := rs.resize(c, 1, 2)
	if want := []uint8{255, 0, 60, 255, 0, 221}; !slices.Equal(got, want) {
		t.Errorf("1x4 → 1x2 = %v, want %v (RGB)", got, want)
	}
	// 1×2 → 1×4 (scale 0.5, support 2, no widening): centers 0.25, 0.75,
	// 1.25, 1.75; for 0,100: −7.03/0.797 → clamp 0; 22.66/1.094 = 20.71 → 21;
	// 86.72/1.094 = 79.29 → 79; 86.72/0.797 = 108.82 → 109.
	c = facetrack.Crop{W: 2, H: 1, Pix: []byte{0, 0, 0, 100, 100, 100}}
	got = rs.resize(c, 1, 4)
	want := []uint8{0, 0, 0, 21, 21, 21, 79, 79, 79, 109, 109, 109}
	if !slices.Equal(got, want) {
		t.Errorf("1x2 → 1x4 = %v, want %v", got, want)
	}
}

func TestResizeBicubicAAReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := [][4]int{ // h, w → rh, rw
		{17, 23, 11, 30},
		{48, 64, 56, 28},
		{256, 256, 336, 336},
		{512, 512, 308, 308},
		{720, 1280, 224, 420},
		{30, 30, 30, 60}, // height unchanged: vertical pass skipped
	}
	var rs resizer
	for _, s := range sizes {
		c := randCrop(rng, s[1], s[0])
		got := rs.resize(c, s[2], s[3])
		n, off := 0, 0
		for ch := range 3 {
			plane := make([]float64, s[0]*s[1])
			for i := range plane {
				plane[i] = float64(c.Pix[i*3+2-ch]) // RGB channel ch from BGR
			}
			ref := refResize(plane, s[0], s[1], s[2], s[3])
			for i, r := range ref {
				d := math.Abs(float64(got[i*3+ch]) - r)
				if d > 1 {
					t.Fatalf("%v: channel %d pixel %d = %d, reference %g", s, ch, i, got[i*3+ch], r)
				}
				if d != 0 {
					off++
				}
				n++
			}
		}
		// float32 vs float64 only flips values sitting at .5 ± 1e-4.
		if off*1000 > n {
			t.Errorf("%v: %d of %d values differ by one level from the float64 reference", s, off, n)
		}
	}
}

func TestPatchOrder(t *testing.T) {
	// Small geometry so every index can be derived by hand: patch 2,
	// temporal 2, merge 2, frames 8×8 → grid_h = grid_w = 4, two merged
	// blocks per side, Dim = 3·2·2·2 = 24. Three frames → grid_t 2, the
	// third frame repeated as the fourth.
	cfg := DefaultPreprocess()
	cfg.PatchSize, cfg.TemporalPatchSize, cfg.MergeSize = 2, 2, 2
	v := newVideo(3, 8, 8, cfg)
	if v.GridT != 2 || v.GridH != 4 || v.GridW != 4 || v.N != 32 || v.Dim != 24 {
		t.Fatalf("geometry %+v", v)
	}
	// Value = channel·1000 + t·64 + y·8 + x (the normaliser maps level v of
	// channel c to c·1000 + v; the level is t·64 + y·8 + x).
	var norm normalizer
	for c := range 3 {
		for l := range 256 {
			norm[c][l] = float32(c*1000 + l)
		}
	}
	for tt := range 3 {
		rgb := make([]uint8, 8*8*3)
		for y := range 8 {
			for x := range 8 {
				for c := range 3 {
					rgb[(y*8+x)*3+c] = uint8(tt*64 + y*8 + x)
				}
			}
		}
		v.putFrame(tt, rgb, &norm, cfg)
	}
	v.copyFrame(2, 3, cfg)
	at := func(row, col int) float32 { return v.Pixels[row*v.Dim+col] }
	// Columns: col = ((c·tps + tp)·p + py)·p + px.
	// Rows: ((gt·2 + bh)·2 + bw)·4 + mh·2 + mw, patch origin
	// y = (bh·2 + mh)·2, x = (bw·2 + mw)·2, frames 2·gt + tp.
	checks := []struct {
		row, col int
		want     float32
		why      string
	}{
		{0, 0, 0, "t0 c0 y0 x0"},
		{0, 1, 1, "px=1 → x1"},
		{0, 2, 8, "py=1 → y1 x0"},
		{0, 3, 9, "y1 x1"},
		{0, 4, 64, "tp=1 → frame 1, y0 x0"},
		{0, 7, 73, "frame 1 y1 x1"},
		{0, 8, 1000, "c=1 (G) frame 0 y0 x0"},
		{0, 23, 2073, "c2 tp1 py1 px1 → 2000 + 64 + 9"},
		{1, 0, 2, "mw=1 → x2"},
		{2, 0, 16, "mh=1 → y2 x0"},
		{3, 0, 18, "mh=1 mw=1 → y2 x2"},
		{4, 0, 4, "bw=1 → x4"},
		{8, 0, 32, "bh=1 → y4"},
		{15, 0, 54, "bh bw mh mw = 1 → y6 x6"},
		{15, 3, 63, "y7 x7"},
		{16, 0, 128, "gt=1 → frame 2"},
		{16, 4, 128, "tp=1 of gt 1 → padded frame 3 = frame 2"},
		{31, 23, 2191, "last: c2, frame 3 (=2), y7 x7 → 2000 + 128 + 63"},
	}
	for _, c := range checks {
		if got := at(c.row, c.col); got != c.want {
			t.Errorf("pixels[%d, %d] = %g, want %g (%s)", c.row, c.col, got, c.want, c.why)
		}
	}
}

func TestPreprocessVidEmoWindow(t *testing.T) {
	cfg := DefaultPreprocess()
	// 8 s at 4 fps of 512×512 crops → 16 frames → grid (8, 22, 22):
	// N = 8·22·22 = 3872 patches of 3·2·14·14 = 1176, 3872/4 = 968 video
	// tokens ("about 970" in videmo.md).
	w := mkWindow(32, 4)
	for i := range w.Samples {
		c := facetrack.Crop{W: 512, H: 512, Pix: make([]byte, 512*512*3)}
		for k := 0; k < len(c.Pix); k += 3 {
			c.Pix[k], c.Pix[k+1], c.Pix[k+2] = 10, 20, byte(30+i) // B, G, R
		}
		w.Samples[i].Crop = c
	}
	v, err := PreprocessWindow(w, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if v.GridT != 8 || v.GridH != 22 || v.GridW != 22 || v.N != 3872 || v.Dim != 1176 ||
		len(v.Pixels) != 3872*1176 || v.Tokens(cfg) != 968 || v.Height != 308 || v.Width != 308 {
		t.Fatalf("grid %v N %d Dim %d tokens %d size %dx%d", v.Grid(), v.N, v.Dim, v.Tokens(cfg), v.Width, v.Height)
	}
	if v.SecondPerGridT != 1 {
		t.Errorf("second_per_grid_t = %g, want 2/2.0 = 1", v.SecondPerGridT)
	}
	// Constant crops stay constant through the resize. Channel order is
	// RGB: columns 0..391 R, 392..783 G, 784..1175 B; within a channel
	// columns 0..195 are the even frame of the pair, 196..391 the odd one.
	// Sampled indices 0, 2, 4, … (see TestSampleFrames) so pair g holds
	// R = 30 + idx. Normalised: (v/255 − mean)/std.
	norm := func(l, c int) float64 { return (float64(l)/255 - cfg.ImageMean[c]) / cfg.ImageStd[c] }
	idx := []int{0, 2, 4, 6, 8, 10, 12, 14, 17, 19, 21, 23, 25, 27, 29, 31}
	for _, row := range []int{0, 483, 484, 3871} {
		g := row / 484
		for _, cc := range []struct{ col, lvl, ch int }{
			{0, 30 + idx[2*g], 0}, {195, 30 + idx[2*g], 0},
			{196, 30 + idx[2*g+1], 0}, {391, 30 + idx[2*g+1], 0},
			{392, 20, 1}, {783, 20, 1}, {784, 10, 2}, {1175, 10, 2},
		} {
			got := float64(v.Pixels[row*1176+cc.col])
			if want := norm(cc.lvl, cc.ch); math.Abs(got-want) > 1e-5 {
				t.Errorf("row %d col %d = %.6f, want %.6f (level %d channel %d)", row, cc.col, got, want, cc.lvl, cc.ch)
			}
		}
	}
	// (30/255 − 0.48145466)/0.26862954 = (0.1176471 − 0.4814547)/0.2686295 = −1.354310.
	if got := v.Pixels[0]; math.Abs(float64(got)-(-1.354310)) > 1e-5 {
		t.Errorf("pixels[0] = %.6f, want -1.354310", got)
	}
}

func TestPreprocessOddFramesAndErrors(t *testing.T) {
	cfg := DefaultPreprocess()
	rng := rand.New(rand.NewPCG(3, 4))
	frames := []facetrack.Crop{randCrop(rng, 64, 64), randCrop(rng, 64, 64), randCrop(rng, 64, 64)}
	v, err := Preprocess(frames, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 64×64 → 336×336 (upscale branch), grid (2, 24, 24).
	if v.GridT != 2 || v.GridH != 24 || v.GridW != 24 {
		t.Fatalf("grid %v", v.Grid())
	}
	// In temporal pair 1 the odd slot (tp=1, columns 196..391 for R) repeats
	// frame 2 (tp=0 slot, columns 0..195).
	for row := 576; row < 2*576; row++ {
		for col := range 196 {
			for c := range 3 {
				a := v.Pixels[row*1176+c*392+col]
				b := v.Pixels[row*1176+c*392+196+col]
				if a != b {
					t.Fatalf("row %d channel %d col %d: padded frame differs (%g vs %g)", row, c, col, a, b)
				}
			}
		}
	}
	if _, err := Preprocess(nil, cfg); !errors.Is(err, ErrTooFewFrames) {
		t.Errorf("no frames: %v", err)
	}
	if _, err := Preprocess([]facetrack.Crop{{W: 10, H: 10, Pix: make([]byte, 5)}}, cfg); err == nil {
		t.Error("short Pix accepted")
	}
	bad := cfg
	bad.ImageStd[1] = 0
	if _, err := Preprocess(frames, bad); err == nil {
		t.Error("zero std accepted")
	}
}

func BenchmarkPreprocess16x256(b *testing.B) {
	cfg := DefaultPreprocess()
	rng := rand.New(rand.NewPCG(5, 6))
	frames := make([]facetrack.Crop, 16)
	for i := range frames {
		frames[i] = randCrop(rng, 256, 256)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Preprocess(frames, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPreprocess16x512(b *testing.B) {
	cfg := DefaultPreprocess()
	rng := rand.New(rand.NewPCG(7, 8))
	frames := make([]facetrack.Crop, 16)
	for i := range frames {
		frames[i] = randCrop(rng, 512, 512)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Preprocess(frames, cfg); err != nil {
			b.Fatal(err)
		}
	}
}

// Against the reference (testdata/qwen2_5_vl/golden/preprocess): the
// synthetic frames go through the real PreprocessWindow path as BGR crops
// in a window timestamped at the case's fps, and everything qwen-vl-utils
// 0.0.10 + transformers 4.49 produced as ms-swift calls them is compared
// within the reference README's tolerances.
func TestGoldenPreprocess(t *testing.T) {
	cfg := DefaultPreprocess()
	tk := testTokenizer(t)
	ps := loadGoldenPrompts(t)
	tmpl := Template{System: ps.System, Tokens: ps.Tokens}
	sawSampleFPSPositions := false
	for _, name := range preprocessCases(t) {
		t.Run(name, func(t *testing.T) {
			c := loadPreprocessCase(t, name)
			f := c.Frames
			cs := crops(f.frames(t), f.T, f.H, f.W)
			w := cropWindow(cs, f.FPS)

			// Sampling.
			if cfg.MinPixels != c.Qwen.MinPixels || cfg.MaxPixels != c.Qwen.MaxPixels {
				t.Fatalf("pixel bounds %d..%d, the reference's %d..%d", cfg.MinPixels, cfg.MaxPixels, c.Qwen.MinPixels, c.Qwen.MaxPixels)
			}
			idx, sfps, err := SampleFrames(w, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if len(idx) != c.Qwen.NFrames || !slices.Equal(idx, c.Qwen.Indices) || sfps != c.Qwen.SampleFPS {
				t.Errorf("sampled %v at %g fps, the reference %v (nframes %d) at %g", idx, sfps, c.Qwen.Indices, c.Qwen.NFrames, c.Qwen.SampleFPS)
			}

			v, err := PreprocessWindow(w, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if [2]int{v.Height, v.Width} != c.Qwen.ResizedHW || v.Grid() != c.Processor.Grid || v.Tokens(cfg) != c.Processor.VideoTokens {
				t.Fatalf("resized %dx%d grid %v tokens %d; reference %v grid %v tokens %d",
					v.Height, v.Width, v.Grid(), v.Tokens(cfg), c.Qwen.ResizedHW, c.Processor.Grid, c.Processor.VideoTokens)
			}
			if len(c.SecondPerGridTs) != 1 || v.SecondPerGridT != c.SecondPerGridTs[0] {
				t.Errorf("second_per_grid_t %g, ms-swift's %v", v.SecondPerGridT, c.SecondPerGridTs)
			}

			// Resized frames: exact except at the near-half elements.
			rh, rw := v.Height, v.Width
			var rs resizer
			res := make([]uint8, 0, len(idx)*rh*rw*3)
			for _, j := range idx {
				res = append(res, rs.resize(cs[j], rh, rw)...)
			}
			_, nhIdx := npyInt(t, goldenPath(t, c.Qwen.NearHalf.IndexFile))
			_, nhVal := npyU8(t, goldenPath(t, c.Qwen.NearHalf.ValueFile))
			if len(nhIdx) != c.Qwen.NearHalf.Count || len(nhVal) != len(nhIdx) {
				t.Fatalf("near-half files: %d indices, %d values, case.json says %d", len(nhIdx), len(nhVal), c.Qwen.NearHalf.Count)
			}
			var rawSum int64
			for _, x := range res {
				rawSum += int64(x)
			}
			off := 0
			for k, i := range nhIdx {
				if d := int(res[i]) - int(nhVal[k]); d != 0 {
					if d != 1 && d != -1 {
						t.Errorf("resized element %d (near ½) is %d, the reference %d", i, res[i], nhVal[k])
					}
					off++
				}
				res[i] = nhVal[k]
			}
			if got := sha256Hex(res); got != c.Qwen.ResizedSHA {
				t.Errorf("resized frames with the near-half elements overwritten: sha256 %s, the reference's %s (so they differ elsewhere too)", got, c.Qwen.ResizedSHA)
			}
			t.Logf("resize: %d of %d near-half elements one level off (sum %d, reference %d)", off, len(nhIdx), rawSum, c.Qwen.ResizedSum)

			// pixel_values from the overwritten frames, laid out by the same
			// code Preprocess uses: the processor's arithmetic makes them
			// bit-identical.
			exact := newVideo(len(idx), rh, rw, cfg)
			norm := newNormalizer(cfg)
			for i := range idx {
				exact.putFrame(i, res[i*rh*rw*3:(i+1)*rh*rw*3], norm, cfg)
			}
			for tt := len(idx); tt < exact.GridT*cfg.TemporalPatchSize; tt++ {
				exact.copyFrame(len(idx)-1, tt, cfg)
			}
			px := c.Processor.Pixels
			if len(px.Shape) != 2 || px.Shape[0] != v.N || px.Shape[1] != v.Dim {
				t.Errorf("pixel_values [%d %d], the reference %v", v.N, v.Dim, px.Shape)
			}
			if got := sha256F32(exact.Pixels); got != px.SHA256 {
				t.Errorf("pixel_values of the overwritten frames: sha256 %s, the reference's %s", got, px.SHA256)
			}

			// pixel_values as PreprocessWindow made them, at the samples.
			_, sIdx := npyInt(t, goldenPath(t, px.Samples.IndexFile))
			_, sVal := npyF32(t, goldenPath(t, px.Samples.ValueFile))
			_, sFlag := npyU8(t, goldenPath(t, px.Samples.NearHalfFlags))
			if len(sIdx) != px.Samples.Count || len(sVal) != len(sIdx) || len(sFlag) != len(sIdx) {
				t.Fatalf("pixel samples: %d indices, %d values, %d flags, case.json says %d", len(sIdx), len(sVal), len(sFlag), px.Samples.Count)
			}
			chanCols := cfg.TemporalPatchSize * cfg.PatchSize * cfg.PatchSize
			var nonzero, flagged, flaggedOff int
			var maxPlain, maxFlagged float64
			for k, i := range sIdx {
				d := math.Abs(float64(v.Pixels[i]) - float64(sVal[k]))
				if sFlag[k] == 0 {
					maxPlain = max(maxPlain, d)
					if d != 0 {
						nonzero++
					}
					if d > 1e-6 {
						t.Errorf("pixel_values[%d] = %g, the reference %g", i, v.Pixels[i], sVal[k])
					}
					continue
				}
				flagged++
				maxFlagged = max(maxFlagged, d)
				if d != 0 {
					flaggedOff++
				}
				// At most one level: 1/(255·std) of the value's channel.
				ch := int(i) % v.Dim / chanCols
				if level := cfg.RescaleFactor / cfg.ImageStd[ch]; d > level*(1+1e-5) {
					t.Errorf("pixel_values[%d] (near ½) = %g, the reference %g: more than one level (%g) apart", i, v.Pixels[i], sVal[k], level)
				}
			}
			var sum, sumSq float64
			for _, x := range v.Pixels {
				sum += float64(x)
				sumSq += float64(x) * float64(x)
			}
			if math.Abs(sum-px.Sum) > 1e-5*math.Abs(px.Sum) || math.Abs(sumSq-px.SumSq) > 1e-5*math.Abs(px.SumSq) {
				t.Errorf("pixel_values sum %.9g sum_sq %.9g, the reference %.9g %.9g", sum, sumSq, px.Sum, px.SumSq)
			}
			t.Logf("pixels: %d/%d plain samples differ (max %.3g); %d/%d near-half samples differ (max %.3g); sum rel %.2g, sum_sq rel %.2g",
				nonzero, len(sIdx)-flagged, maxPlain, flaggedOff, flagged, maxFlagged,
				math.Abs(sum-px.Sum)/math.Abs(px.Sum), math.Abs(sumSq-px.SumSq)/math.Abs(px.SumSq))

			// Prompt ids and M-RoPE positions.
			if got := secondPerGridTFromSampleFPS(sfps, cfg); got != c.SecondPerGridTFromSFPS {
				t.Errorf("temporal_patch_size / sample_fps = %g, the reference's %g", got, c.SecondPerGridTFromSFPS)
			}
			if len(c.Prompts) == 0 {
				t.Fatal("case has no prompts")
			}
			for pn, gp := range c.Prompts {
				q, ok := ps.Prompts[pn]
				if !ok {
					t.Fatalf("prompt %q is not in prompts.json", pn)
				}
				p, err := tmpl.Build(tk.Encode, v.Tokens(cfg), q.Question)
				if err != nil {
					t.Fatal(err)
				}
				ids := p.Full(0)
				if !slices.Equal(ids, gp.InputIDs) || len(ids) != gp.PromptLen || p.VideoStart != gp.VideoStart || p.VideoEnd != gp.VideoEnd {
					t.Fatalf("%s: %d ids (video %d..%d), the reference %d (video %d..%d); equal: %v",
						pn, len(ids), p.VideoStart, p.VideoEnd, len(gp.InputIDs), gp.VideoStart, gp.VideoEnd, slices.Equal(ids, gp.InputIDs))
				}
				checkPositions := func(what string, spg float64, want goldenPositions) {
					pos, delta, err := RopeIndex(ids, ps.Tokens, [][3]int{v.Grid()}, []float64{spg}, cfg)
					if err != nil {
						t.Fatal(err)
					}
					for r := range 3 {
						if !slices.Equal(pos[r], want.PositionIDs[r]) {
							t.Errorf("%s %s: position row %d differs from the reference", pn, what, r)
						}
					}
					if delta != want.RopeDelta {
						t.Errorf("%s %s: rope delta %d, the reference %d", pn, what, delta, want.RopeDelta)
					}
				}
				checkPositions("second_per_grid_t 1", v.SecondPerGridT, gp.goldenPositions)
				if ws := gp.WithSampleFPS; ws != nil {
					sawSampleFPSPositions = true
					spg := secondPerGridTFromSampleFPS(sfps, cfg)
					if spg != ws.SecondPerGridT {
						t.Errorf("%s: tps / sample_fps = %g, the reference's %g", pn, spg, ws.SecondPerGridT)
					}
					checkPositions("second_per_grid_t from sample fps", spg, ws.goldenPositions)
				}
			}
		})
	}
	if !sawSampleFPSPositions {
		t.Error("no case has positions for second_per_grid_t from the sample fps (the reference's f5_160x200_4fps should)")
	}
}

// The model cases' frames are already multiples of 28 within the
// checkpoint's image bounds, so no resize happens: Preprocess with the
// checkpoint's processor config must give the reference pixel_values bit
// for bit (the normaliser and the patch order alone).
func TestGoldenModelPixels(t *testing.T) {
	var pc struct {
		ImageMean [3]float64 `json:"image_mean"`
		ImageStd  [3]float64 `json:"image_std"`
	}
	readJSON(t, "golden/checkpoint/preprocessor_config.json", &pc)
	var raw map[string]any
	readJSON(t, "golden/checkpoint/preprocessor_config.json", &raw)
	cfg := DefaultPreprocess()
	if cfg.ImageMean != pc.ImageMean || cfg.ImageStd != pc.ImageStd || raw["patch_size"] != float64(cfg.PatchSize) ||
		raw["temporal_patch_size"] != float64(cfg.TemporalPatchSize) || raw["merge_size"] != float64(cfg.MergeSize) {
		t.Fatalf("DefaultPreprocess %+v differs from the checkpoint's processor config %v", cfg, raw)
	}
	if _, ok := raw["rescale_factor"]; ok {
		t.Fatalf("the checkpoint sets rescale_factor %v; the test assumes the default 1/255", raw["rescale_factor"])
	}
	cfg.MinPixels = int(raw["min_pixels"].(float64))
	cfg.MaxPixels = int(raw["max_pixels"].(float64))
	for _, name := range modelCases(t) {
		t.Run(name, func(t *testing.T) {
			c := loadModelCase(t, name)
			f := c.Frames
			v, err := Preprocess(crops(f.frames(t), f.T, f.H, f.W), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if v.Height != f.H || v.Width != f.W || v.Grid() != c.Processor.Grid {
				t.Fatalf("%dx%d grid %v; the reference keeps %dx%d, grid %v", v.Height, v.Width, v.Grid(), f.H, f.W, c.Processor.Grid)
			}
			if got := sha256F32(v.Pixels); got != c.Processor.Pixels.SHA256 {
				t.Errorf("pixel_values sha256 %s, the reference's %s", got, c.Processor.Pixels.SHA256)
			}
			_, sIdx := npyInt(t, goldenPath(t, c.Processor.Pixels.Samples.IndexFile))
			_, sVal := npyF32(t, goldenPath(t, c.Processor.Pixels.Samples.ValueFile))
			bad := 0
			for k, i := range sIdx {
				if v.Pixels[i] != sVal[k] {
					bad++
				}
			}
			if bad > 0 || len(sIdx) == 0 {
				t.Errorf("%d of %d sampled pixel values differ", bad, len(sIdx))
			}
		})
	}
}

// The .npy reader and synth_frames, on what their errors would look like.
func TestGoldenReaders(t *testing.T) {
	hdr := func(descr, shape string, data []byte) []byte {
		h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shape)
		h += strings.Repeat(" ", 63-(10+len(h))%64) + "\n"
		b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
		return append(append(b, h...), data...)
	}
	shape, d, err := parseNpy(hdr("<i4", "2, 1", []byte{1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff}))
	if err != nil || !slices.Equal(shape, []int{2, 1}) || !slices.Equal(d.([]int32), []int32{1, -2}) {
		t.Errorf("<i4: %v %v %v", shape, d, err)
	}
	shape, d, err = parseNpy(hdr("<f4", "1,", []byte{0, 0, 0xc0, 0x3f}))
	if err != nil || !slices.Equal(shape, []int{1}) || d.([]float32)[0] != 1.5 {
		t.Errorf("<f4: %v %v %v", shape, d, err)
	}
	if _, _, err := parseNpy(hdr("<f8", "1,", make([]byte, 8))); err == nil {
		t.Error("<f8 accepted")
	}
	if _, _, err := parseNpy(hdr("|u1", "3,", []byte{1, 2})); err == nil {
		t.Error("short data accepted")
	}
	// synth_frames by hand at t = y = x = c = 0 with seed 1: the hash
	// starts at 0x9E3779B1, noise is (h>>27) − 16.
	h := uint32(0x9E3779B1)
	h ^= h >> 15
	h *= 0x2C1B3C6D
	h ^= h >> 12
	h *= 0x297A2D39
	h ^= h >> 15
	f := synthFrames(1, 30, 30, 1)
	// (0, 0) is inside the square at y0 = x0 = 0: base R 235.
	if want := uint8(235 + int(h>>27) - 16); f[0] != want {
		t.Errorf("synth_frames(1, 30, 30, 1)[0] = %d, want %d", f[0], want)
	}
}
