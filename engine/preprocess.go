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
	// The value of each byte, per channel: a pixel's colour and range
	// conversion depends on its bytes alone, so it is looked up where a tap
	// reads it instead of worked out for every pixel of the crop first.
	// Gray's is the sum of one table per channel, in the order the formula
	// adds them, so every value is the formula's, bit for bit.
	val      [3][256]float64 // rgb, bgr: [0] for every channel; gray: [0] b, [1] g, [2] r, weights in
	src      [3]int          // rgb, bgr: the BGR byte each input channel reads
	identity [256]float32    // scaleOnly (colour): the whole map of a byte, offset and scale in
	hbuf     []float64       // bilinear's two kept source rows
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
	pp.tables()
	return pp, nil
}

// tables fills val, src and identity from the manifest.
func (pp *preprocessor) tables() {
	k, lo := (pp.hi-pp.lo)/255, pp.lo
	switch pp.p.Color {
	case "gray":
		wr, wg, wb := pp.p.ColorWeights[0], pp.p.ColorWeights[1], pp.p.ColorWeights[2]
		for v := range 256 {
			x := float64(v)
			pp.val[0][v], pp.val[1][v], pp.val[2][v] = (x*k+lo)*wb, (x*k+lo)*wg, (x*k+lo)*wr
		}
	case "rgb", "bgr":
		pp.src = [3]int{2, 1, 0}
		if pp.p.Color == "bgr" {
			pp.src = [3]int{0, 1, 2}
		}
		for v := range 256 {
			pp.val[0][v] = float64(v)*k + lo
		}
	}
	off, sc := pp.p.Offset, pp.p.Scale
	for v := range 256 {
		pp.identity[v] = float32((pp.val[0][v] + off) * sc)
	}
}

// at is the converted value of pixel i's channel ch of pix (BGR).
func (pp *preprocessor) at(pix []byte, i, ch int) float64 {
	if pp.c == 1 { // (r·k+lo)·wr + (g·k+lo)·wg + (b·k+lo)·wb, added in that order
		return pp.val[2][pix[3*i+2]] + pp.val[1][pix[3*i+1]] + pp.val[0][pix[3*i]]
	}
	return pp.val[0][pix[3*i+pp.src[ch]]]
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
	if W != pp.lastW || H != pp.lastH { // taps depend on the crop size only
		pp.rx = taps(W, pp.w, pp.p.AlignCorners, pp.p.HalfPixelCenters)
		pp.ry = taps(H, pp.h, pp.p.AlignCorners, pp.p.HalfPixelCenters)
		pp.lastW, pp.lastH = W, H
	}
	if W == pp.w && H == pp.h && !pp.p.AlignCorners && !pp.p.HalfPixelCenters && !pp.nchw && pp.c == 3 {
		pp.scaleOnly(crop.Pix, dst)
		return nil
	}
	pp.bilinear(crop, dst)
	return nil
}

// scaleOnly is bilinear for a colour crop of the input's size (the mesh:
// 192 on 192) without align_corners or half-pixel centres: every tap is its
// own pixel with weight 0, so (tl + (tr−tl)·0 + off)·sc is exactly
// (tl + off)·sc, a function of the byte: one table lookup a value.
func (pp *preprocessor) scaleOnly(pix []byte, dst []float32) {
	s0, s1, s2 := pp.src[0], pp.src[1], pp.src[2]
	t := &pp.identity
	for i := 0; i+2 < len(dst); i += 3 {
		p := pix[i : i+3 : i+3]
		dst[i], dst[i+1], dst[i+2] = t[p[s0]], t[p[s1]], t[p[s2]]
	}
}

// bilinear resizes crop into dst with the taps of run, converting each
// pixel a tap reads, then applies offset and scale. It is separable: a
// source row's horizontal blend (tl + (tr−tl)·fx per column and channel)
// is worked out once and kept while the output rows that read it last
// (two slots: an output row reads two source rows, and the next output row
// mostly the same or the next ones), then each value is the vertical blend
// of two kept rows. The arithmetic is the per-tap formula's, in its order.
func (pp *preprocessor) bilinear(crop facetrack.Crop, dst []float32) {
	C, W, pix := pp.c, crop.W, crop.Pix
	off, sc := pp.p.Offset, pp.p.Scale
	n := len(pp.rx) * C
	if cap(pp.hbuf) < 2*n {
		pp.hbuf = make([]float64, 2*n)
	}
	slot := [2][]float64{pp.hbuf[:n], pp.hbuf[n : 2*n]}
	held := [2]int{-1, -1}         // the source row each slot holds
	get := func(r, keep int) int { // keep: the other source row this output row reads
		for s := range held {
			if held[s] == r {
				return s
			}
		}
		s := 0
		if held[0] == keep {
			s = 1
		}
		pp.hrow(pix, r*W, slot[s])
		held[s] = r
		return s
	}
	for y, ty := range pp.ry {
		s0 := get(ty.i0, ty.i1)
		s1 := get(ty.i1, ty.i0)
		top, bot, fy := slot[s0], slot[s1], ty.f
		if !pp.nchw {
			d := dst[y*n : (y+1)*n]
			for i := range d {
				d[i] = float32((top[i] + (bot[i]-top[i])*fy + off) * sc)
			}
			continue
		}
		for x := range pp.rx {
			for ch := 0; ch < C; ch++ {
				i := x*C + ch
				dst[(ch*pp.h+y)*pp.w+x] = float32((top[i] + (bot[i]-top[i])*fy + off) * sc)
			}
		}
	}
}

// hrow writes the horizontal blend of the source row starting at pixel
// base into out (per output column, per channel).
func (pp *preprocessor) hrow(pix []byte, base int, out []float64) {
	C := pp.c
	if C == 3 { // at's colour case, with the channel offsets hoisted
		v, s0, s1, s2 := &pp.val[0], pp.src[0], pp.src[1], pp.src[2]
		for x, tx := range pp.rx {
			l, r := pix[3*(base+tx.i0):], pix[3*(base+tx.i1):]
			l, r = l[:3:3], r[:3:3]
			o, f := out[3*x:3*x+3:3*x+3], tx.f
			a, b := v[l[s0]], v[r[s0]]
			o[0] = a + (b-a)*f
			a, b = v[l[s1]], v[r[s1]]
			o[1] = a + (b-a)*f
			a, b = v[l[s2]], v[r[s2]]
			o[2] = a + (b-a)*f
		}
		return
	}
	for x, tx := range pp.rx {
		for ch := 0; ch < C; ch++ {
			l, r := pp.at(pix, base+tx.i0, ch), pp.at(pix, base+tx.i1, ch)
			out[x*C+ch] = l + (r-l)*tx.f
		}
	}
}
