package facetrack

import (
	"fmt"
	"image"

	"gocv.io/x/gocv"
)

// The letterbox: how a frame (or a region of it) becomes BlazeFace's input,
// scaled to fit, centred and padded with black.

// letterbox is the mapping from input pixels back to source pixels:
// src = (in - off) / scale.
type letterbox struct{ sx, sy, offX, offY float64 }

func (l letterbox) point(x, y float64) Point {
	return Point{(x - l.offX) / l.sx, (y - l.offY) / l.sy}
}

// padState is the input buffer letterboxInto last wrote and where its
// picture went: everything else in it is padding, which the next call into
// the same buffer need not write again (a full 720p frame leaves 44% of a
// 256² input as padding).
type padState struct {
	buf            *float32
	n              int
	bias           float32
	ox, oy, nw, nh int
}

// letterboxInto is letterbox writing the model's values straight into dst
// (w×h×3 floats): padding is black (bias), each resized BGR pixel is
// written as RGB·k + bias, one pass and no allocation.
func (b *BlazeFace) letterboxInto(in *blazeInput, src gocv.Mat, dst []float32, k, bias float32, shrink int) (letterbox, error) {
	lb, pix, nw, nh, err := b.resize(in, src, shrink)
	if err != nil {
		return lb, err
	}
	if len(dst) != in.w*in.h*3 {
		return lb, fmt.Errorf("facetrack: blazeface input has %d values, want %d (%dx%d)", len(dst), in.w*in.h*3, in.w, in.h)
	}
	var lut [256]float32 // the value of each byte: 256 multiply-adds instead of one per channel
	for i := range lut {
		lut[i] = float32(i)*k + bias
	}
	ox, oy := int(lb.offX), int(lb.offY)
	row := in.w * 3
	in.pad(dst, bias, ox, oy, nw, nh)
	for y := range nh {
		d := dst[(y+oy)*row : (y+oy+1)*row]
		s := pix[y*nw*3 : (y+1)*nw*3]
		o := d[ox*3 : (ox+nw)*3]
		for x := 0; x+2 < len(s); x += 3 {
			o[x], o[x+1], o[x+2] = lut[s[x+2]], lut[s[x+1]], lut[s[x]]
		}
	}
	return lb, nil
}

// pad sets every value of dst (w×h×3) outside the picture's place
// (ox, oy, nw×nh pixels) to bias. Into the buffer it padded last time, with
// the same bias, only what was picture then and is padding now is written;
// the corners are checked first, so a buffer someone else wrote is padded
// whole.
func (in *blazeInput) pad(dst []float32, bias float32, ox, oy, nw, nh int) {
	row := in.w * 3
	fill := func(d []float32) {
		for i := range d {
			d[i] = bias
		}
	}
	// fillOutside pads the rows y0..y1 of columns x0..x1 that lie outside
	// the new picture.
	fillOutside := func(x0, y0, x1, y1 int) {
		for y := y0; y < y1; y++ {
			d := dst[y*row : (y+1)*row]
			if y < oy || y >= oy+nh {
				fill(d[x0*3 : x1*3])
				continue
			}
			if x0 < ox {
				fill(d[x0*3 : min(x1, ox)*3])
			}
			if x1 > ox+nw {
				fill(d[max(x0, ox+nw)*3 : x1*3])
			}
		}
	}
	p := in.padded
	last := len(dst) - 1
	same := p.buf == &dst[0] && p.n == len(dst) && p.bias == bias
	if same { // the buffer's corners are still padding unless the picture covered them
		for _, c := range [][2]int{{0, 0}, {in.w - 1, 0}, {0, in.h - 1}, {in.w - 1, in.h - 1}} {
			inside := c[0] >= p.ox && c[0] < p.ox+p.nw && c[1] >= p.oy && c[1] < p.oy+p.nh
			if i := (c[1]*in.w + c[0]) * 3; !inside && (dst[i] != bias || dst[min(i+2, last)] != bias) {
				same = false
			}
		}
	}
	if same {
		fillOutside(p.ox, p.oy, p.ox+p.nw, p.oy+p.nh)
	} else {
		fillOutside(0, 0, in.w, in.h)
	}
	in.padded = padState{buf: &dst[0], n: len(dst), bias: bias, ox: ox, oy: oy, nw: nw, nh: nh}
}

// resize scales src to fit in's input into b.resized and returns its
// pixels and the mapping back. The scale is the square's (its side over
// src's long side), which inputFor makes in's too. shrink > 0 shrinks by
// exactly that whole factor instead (src's sides its multiples,
// regionFactor), which may leave it short of the square.
func (b *BlazeFace) resize(in *blazeInput, src gocv.Mat, shrink int) (letterbox, []byte, int, int, error) {
	W, H := src.Cols(), src.Rows()
	s := float64(b.size) / float64(max(W, H))
	nw, nh := b.fit(W, H)
	if shrink > 0 {
		if W%shrink != 0 || H%shrink != 0 || max(W, H) > shrink*b.size {
			return letterbox{}, nil, 0, 0, fmt.Errorf("facetrack: blazeface shrink of a %dx%d region by %d: want its sides multiples of it, at most %d× the input", W, H, shrink, shrink)
		}
		s, nw, nh = 1/float64(shrink), W/shrink, H/shrink
	}
	var pix []byte
	if s <= 1 && src.Type() == gocv.MatTypeCV8UC3 { // shrinking: INTER_AREA's weights, faster (area.go)
		if cap(b.area) < nw*nh*3 {
			b.area = make([]byte, b.size*b.size*3)
		}
		pix = b.area[:nw*nh*3]
		if err := areaResize(src, pix, nw, nh); err != nil {
			return letterbox{}, nil, 0, 0, err
		}
	} else {
		interp := gocv.InterpolationArea
		if s > 1 {
			interp = gocv.InterpolationLinear
		}
		gocv.Resize(src, &b.resized, image.Pt(nw, nh), 0, 0, interp)
		if b.resized.Cols() != nw || b.resized.Rows() != nh || !b.resized.IsContinuous() {
			return letterbox{}, nil, 0, 0, fmt.Errorf("facetrack: blazeface resize gave %dx%d, want %dx%d", b.resized.Cols(), b.resized.Rows(), nw, nh)
		}
		var err error
		if pix, err = b.resized.DataPtrUint8(); err != nil {
			return letterbox{}, nil, 0, 0, err
		}
	}
	if nw > in.w || nh > in.h {
		return letterbox{}, nil, 0, 0, fmt.Errorf("facetrack: blazeface: a %dx%d picture does not fit the %dx%d input", nw, nh, in.w, in.h)
	}
	ox, oy := (in.w-nw)/2, (in.h-nh)/2
	// per-axis scale as the resize applied it (rounding differs by < 1 px)
	return letterbox{sx: float64(nw) / float64(W), sy: float64(nh) / float64(H), offX: float64(ox), offY: float64(oy)}, pix, nw, nh, nil
}

// letterbox scales src to fit in's input, centres it and writes RGB bytes
// into in.rgb (black padding): for models that take bytes.
func (b *BlazeFace) letterbox(in *blazeInput, src gocv.Mat, shrink int) (letterbox, error) {
	lb, pix, nw, nh, err := b.resize(in, src, shrink)
	if err != nil {
		return lb, err
	}
	ox, oy := int(lb.offX), int(lb.offY)
	clear(in.rgb)
	for y := range nh {
		row := pix[y*nw*3 : (y+1)*nw*3]
		dst := in.rgb[((y+oy)*in.w+ox)*3:]
		for x := range nw {
			dst[3*x], dst[3*x+1], dst[3*x+2] = row[3*x+2], row[3*x+1], row[3*x]
		}
	}
	return lb, nil
}
