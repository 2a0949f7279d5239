package videmo

import (
	"math"

	"github.com/edgemo/edgemo/facetrack"
)

// Antialiased bicubic resize, as qwen_vl_utils.fetch_video does it:
//
//	transforms.functional.resize(video_uint8, [h, w], BICUBIC, antialias=True)
//
// torchvision casts the uint8 tensor to float32, calls
// F.interpolate(mode="bicubic", antialias=True, align_corners=False) — ATen's
// separable_upsample_generic_Nd_kernel_impl with HelperInterpCubic — then
// clamps to [0, 255] and torch.round()s (half to even) back to uint8.
//
// ATen's antialiased cubic (UpSampleKernel.cpp, _compute_indices_min_size_weights_aa):
//
//	scale    = in / out                        (float32)
//	support  = 2·scale if scale ≥ 1 else 2
//	center   = scale·(i + 0.5)
//	invscale = 1/scale if scale ≥ 1 else 1
//	xmin     = max(int(center − support + 0.5), 0)
//	xsize    = min(int(center + support + 0.5), in) − xmin
//	w_j      = K((j + xmin − center + 0.5)·invscale), normalised to sum 1
//	K(x)     = Keys cubic with a = −0.5 (PIL's value; ATen uses −0.75 only
//	           without antialias)
//
// The width is resampled first, then the height, in float32 without
// rounding in between; a dimension whose size does not change is skipped.
// The arithmetic below mirrors the float32/float64 mix of the C++ so results
// match bit for bit where the compiler there did not contract a multiply-add
// (at worst a level differs where a value sits within float32 noise of .5).

const cubicA = -0.5

func cubicAA(x float32) float32 {
	if x < 0 {
		x = -x
	}
	const a = float32(cubicA)
	if x < 1 {
		// ((a+2)x − (a+3))x² + 1
		return float32(float32(float32(float32((a+2)*x)-(a+3))*x)*x) + 1
	}
	if x < 2 {
		// ((a·x − 5a)x + 8a)x − 4a
		return float32(float32(float32(float32(a*x)-5*a)*x)+8*a)*x - 4*a
	}
	return 0
}

// axisWeights holds, for each output index, the first input index, the
// number of taps and the normalised weights (taps entries per output).
type axisWeights struct {
	in, out, taps int
	xmin, size    []int
	w             []float32
}

func newAxisWeights(in, out int) axisWeights {
	scale := float32(in) / float32(out)
	var support, invscale float32
	if scale >= 1 {
		support = float32(2.0 * float64(scale))
		invscale = float32(1.0 / float64(scale))
	} else {
		support, invscale = 2, 1
	}
	taps := int(math.Ceil(float64(support)))*2 + 1
	aw := axisWeights{in: in, out: out, taps: taps,
		xmin: make([]int, out), size: make([]int, out), w: make([]float32, out*taps)}
	for i := range out {
		center := float32(float64(scale) * (float64(i) + 0.5))
		xmin := max(int(float64(center-support)+0.5), 0)
		xsize := min(int(float64(center+support)+0.5), in) - xmin
		xsize = max(0, min(xsize, taps))
		ws := aw.w[i*taps : (i+1)*taps]
		var total float32
		for j := range xsize {
			d := float32(j+xmin) - center
			k := cubicAA(float32((float64(d) + 0.5) * float64(invscale)))
			ws[j] = k
			total += k
		}
		if total != 0 {
			for j := range xsize {
				ws[j] /= total
			}
		}
		aw.xmin[i], aw.size[i] = xmin, xsize
	}
	return aw
}

// resizer keeps the weights and scratch buffers of the last geometry.
type resizer struct {
	hw, vw  axisWeights
	tmp     []float32 // H × rw × 3 after the horizontal pass
	fullOut []float32 // rh × rw × 3 after the vertical pass
	out     []uint8
}

func (r *resizer) weights(h, w, rh, rw int) {
	if r.hw.in != w || r.hw.out != rw {
		r.hw = newAxisWeights(w, rw)
	}
	if r.vw.in != h || r.vw.out != rh {
		r.vw = newAxisWeights(h, rh)
	}
}

// resize returns the crop as RGB uint8, rh×rw, HWC. The returned slice is
// reused by the next call.
func (r *resizer) resize(f facetrack.Crop, rh, rw int) []uint8 {
	h, w := f.H, f.W
	r.weights(h, w, rh, rw)

	// Horizontal pass (BGR in, RGB float32 out), or a plain conversion.
	r.tmp = grow(r.tmp, h*rw*3)
	if w == rw {
		for i := 0; i < h*w; i++ {
			r.tmp[i*3+0] = float32(f.Pix[i*3+2])
			r.tmp[i*3+1] = float32(f.Pix[i*3+1])
			r.tmp[i*3+2] = float32(f.Pix[i*3+0])
		}
	} else {
		hw := r.hw
		for y := range h {
			src := f.Pix[y*w*3 : (y+1)*w*3]
			dst := r.tmp[y*rw*3 : (y+1)*rw*3]
			for x := range rw {
				ws := hw.w[x*hw.taps : x*hw.taps+hw.size[x]]
				s := src[hw.xmin[x]*3:]
				var b, g, rr float32
				b = float32(s[0]) * ws[0]
				g = float32(s[1]) * ws[0]
				rr = float32(s[2]) * ws[0]
				for j := 1; j < len(ws); j++ {
					wj := ws[j]
					b += float32(float32(s[j*3+0]) * wj)
					g += float32(float32(s[j*3+1]) * wj)
					rr += float32(float32(s[j*3+2]) * wj)
				}
				dst[x*3+0], dst[x*3+1], dst[x*3+2] = rr, g, b
			}
		}
	}

	// Vertical pass.
	src := r.tmp
	if h != rh {
		r.fullOut = grow(r.fullOut, rh*rw*3)
		vw := r.vw
		row := rw * 3
		for y := range rh {
			ws := vw.w[y*vw.taps : y*vw.taps+vw.size[y]]
			dst := r.fullOut[y*row : (y+1)*row]
			base := vw.xmin[y] * row
			s0 := r.tmp[base : base+row]
			w0 := ws[0]
			for k := range dst {
				dst[k] = s0[k] * w0
			}
			for j := 1; j < len(ws); j++ {
				sj := r.tmp[base+j*row : base+(j+1)*row]
				wj := ws[j]
				for k := range dst {
					dst[k] += float32(sj[k] * wj)
				}
			}
		}
		src = r.fullOut
	}

	r.out = growU8(r.out, rh*rw*3)
	for k, v := range src[:rh*rw*3] {
		r.out[k] = toUint8(v)
	}
	return r.out
}

// toUint8 is torchvision's clamp(0, 255) followed by torch.round (half to
// even) and the cast to uint8.
func toUint8(v float32) uint8 {
	if v <= 0 || v != v {
		return 0
	}
	if v >= 255 {
		return 255
	}
	return uint8(math.RoundToEven(float64(v)))
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

func growU8(b []uint8, n int) []uint8 {
	if cap(b) < n {
		return make([]uint8, n)
	}
	return b[:n]
}
