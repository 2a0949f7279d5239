package engine

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/facetrack"
)

// preprocessor turns a BGR crop into one model input per the manifest.
//
// Resize is bilinear in pure Go and reproduces tf.image.resizeBilinear
// (TF.js CPU backend) exactly in its coordinate mapping: with
// align_corners=false and half_pixel_centers=false (the defaults @vladmandic/human
// uses) source = dst * in/out, neighbours floor/ceil clamped to the image,
// no antialiasing. For "gray" the colour conversion is done before the
// resize, which is the same linear map as TF.js's resize-then-convert up to
// float rounding (and three times cheaper). Tests compare it with the TF.js
// pipeline on real crops.
type preprocessor struct {
	p       Preprocessing
	h, w, c int
	nchw    bool
	lo, hi  float64
	rx, ry  []tap // per output column / row, for a lastW x lastH crop
	lastW   int
	lastH   int
	tmp     []float64
}

type tap struct {
	i0, i1 int
	f      float64
}

func newPreprocessor(m *Manifest) (*preprocessor, error) {
	s := m.Input.Shape
	pp := &preprocessor{p: m.Preprocessing, nchw: m.Input.Layout == "NCHW", lo: m.Preprocessing.InputRange[0], hi: m.Preprocessing.InputRange[1]}
	if pp.nchw {
		pp.c, pp.h, pp.w = int(s[1]), int(s[2]), int(s[3])
	} else {
		pp.h, pp.w, pp.c = int(s[1]), int(s[2]), int(s[3])
	}
	want := 3
	if pp.p.Color == "gray" {
		want = 1
	}
	if pp.c != want {
		return nil, fmt.Errorf("%s: preprocessing.color %q needs %d input channels, input.shape %v has %d", m.Path, pp.p.Color, want, s, pp.c)
	}
	return pp, nil
}

// size is the number of floats per input.
func (pp *preprocessor) size() int { return pp.h * pp.w * pp.c }

func taps(in, out int, alignCorners, halfPixel bool) []tap {
	effIn, effOut := float64(in), float64(out)
	if alignCorners && out > 1 {
		effIn, effOut = float64(in-1), float64(out-1)
	}
	ratio := effIn / effOut
	t := make([]tap, out)
	for o := range t {
		var src float64
		if halfPixel {
			src = ratio*(float64(o)+0.5) - 0.5
		} else {
			src = ratio * float64(o)
		}
		f0 := math.Max(0, math.Floor(src))
		i0 := min(int(f0), in-1)
		i1 := min(int(math.Ceil(src)), in-1)
		i1 = max(i1, 0)
		t[o] = tap{i0: i0, i1: i1, f: src - f0}
	}
	return t
}

// run writes crop's input into dst (len size()).
func (pp *preprocessor) run(crop facetrack.Crop, dst []float32) error {
	W, H := crop.W, crop.H
	if W <= 0 || H <= 0 || len(crop.Pix) < W*H*3 {
		return fmt.Errorf("bad crop %dx%d with %d bytes (want BGR, %d bytes)", W, H, len(crop.Pix), W*H*3)
	}
	if n := W * H * pp.c; cap(pp.tmp) < n {
		pp.tmp = make([]float64, n)
	} else {
		pp.tmp = pp.tmp[:n]
	}
	if W != pp.lastW || H != pp.lastH { // taps depend on the crop size only
		pp.rx = taps(W, pp.w, pp.p.AlignCorners, pp.p.HalfPixelCenters)
		pp.ry = taps(H, pp.h, pp.p.AlignCorners, pp.p.HalfPixelCenters)
		pp.lastW, pp.lastH = W, H
	}
	k := (pp.hi - pp.lo) / 255
	// 1. colour + range, per source pixel, into tmp (HWC with pp.c channels)
	pix := crop.Pix
	switch pp.p.Color {
	case "gray":
		wr, wg, wb := pp.p.ColorWeights[0], pp.p.ColorWeights[1], pp.p.ColorWeights[2]
		for i := 0; i < W*H; i++ {
			b, g, r := float64(pix[3*i]), float64(pix[3*i+1]), float64(pix[3*i+2])
			pp.tmp[i] = (r*k+pp.lo)*wr + (g*k+pp.lo)*wg + (b*k+pp.lo)*wb
		}
	case "rgb":
		for i := 0; i < W*H; i++ {
			pp.tmp[3*i] = float64(pix[3*i+2])*k + pp.lo
			pp.tmp[3*i+1] = float64(pix[3*i+1])*k + pp.lo
			pp.tmp[3*i+2] = float64(pix[3*i])*k + pp.lo
		}
	case "bgr":
		for i := 0; i < W*H*3; i++ {
			pp.tmp[i] = float64(pix[i])*k + pp.lo
		}
	}
	// 2. bilinear resize + offset/scale into dst
	if W == pp.w && H == pp.h && !pp.p.AlignCorners && !pp.p.HalfPixelCenters && !pp.nchw {
		pp.scaleOnly(dst)
		return nil
	}
	pp.bilinear(W, dst)
	return nil
}

// scaleOnly is bilinear for a crop of the input's size (the mesh: 192 on
// 192) without align_corners or half-pixel centres: every tap is its own
// pixel with weight 0, so (tl + (tr−tl)·0 + off)·sc is exactly (tl + off)·sc.
func (pp *preprocessor) scaleOnly(dst []float32) {
	off, sc := pp.p.Offset, pp.p.Scale
	for i, v := range pp.tmp {
		dst[i] = float32((v + off) * sc)
	}
}

// bilinear resizes tmp (a crop W wide, pp.c channels) into dst with the
// taps of run, then applies offset and scale.
func (pp *preprocessor) bilinear(W int, dst []float32) {
	C := pp.c
	off, sc := pp.p.Offset, pp.p.Scale
	for y, ty := range pp.ry {
		r0, r1 := ty.i0*W*C, ty.i1*W*C
		for x, tx := range pp.rx {
			for ch := 0; ch < C; ch++ {
				tl, tr := pp.tmp[r0+tx.i0*C+ch], pp.tmp[r0+tx.i1*C+ch]
				bl, br := pp.tmp[r1+tx.i0*C+ch], pp.tmp[r1+tx.i1*C+ch]
				top := tl + (tr-tl)*tx.f
				bot := bl + (br-bl)*tx.f
				v := (top + (bot-top)*ty.f + off) * sc
				if pp.nchw {
					dst[(ch*pp.h+y)*pp.w+x] = float32(v)
				} else {
					dst[(y*pp.w+x)*C+ch] = float32(v)
				}
			}
		}
	}
}
