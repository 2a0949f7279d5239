// Package scene measures a camera's picture as cheap context for the face
// levels: brightness (mean luma), colorfulness (Hasler and Süsstrunk 2003),
// dominant hue and a coarse hue histogram, the visual attributes EmoVid
// (arXiv 2511.11002) labels its videos with. A frame is read on a grid of
// about GridPoints pixels, sums of several frames are added into one
// window's figures (History), and Apply puts them into a tree, lowering the
// face levels' confidences in low light.
package scene

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/engine/tree"
)

const (
	// GridPoints is about how many pixels Sample reads per frame (85×48 of
	// a 1280×720 frame, 64×48 of 640×480): enough for a mean and a spread
	// to two significant digits, a few tens of µs a frame.
	GridPoints = 4096
	// LowLight is the default low-light threshold: below this brightness
	// (mean luma, 0..1; 0.15 ≈ 38 of 255) face detectors and expression
	// classifiers trained on lit faces lose their footing, so the face
	// levels' confidences are lowered (Discount). Per camera:
	// cameras.<name>.low_light.
	LowLight = 0.15
	// ChromaMin: a pixel whose chroma (max − min of R, G, B, over 255) is
	// below this is grey for the hue figures (its hue is noise).
	ChromaMin = 0.1
)

// chromaMinInt is ChromaMin in 0..255 units, rounded up: an integer
// chroma c is chromatic when c ≥ 25.5, that is c ≥ 26.
const chromaMinInt = 26

// inv60[c] = 60 / c: hue without a division per pixel.
var inv60 = func() (t [256]float64) {
	for c := 1; c < 256; c++ {
		t[c] = 60 / float64(c)
	}
	return t
}()

// Acc holds the sums of the figures over sampled pixels; sums of several
// frames add (Add), so a window's figures are those of all its pixels.
type Acc struct {
	Frames    int
	N         float64 // pixels sampled
	Luma      float64 // Σ Y' (Rec. 601, 0..255)
	RG, RG2   float64 // Σ (R − G), Σ (R − G)²
	YB, YB2   float64 // Σ ((R + G)/2 − B), its squares
	Chromatic float64 // pixels with chroma ≥ ChromaMin
	Bin       [tree.HueBins]float64
	Off       [tree.HueBins]float64 // Σ hue − bin centre, degrees in [−15, 15)
}

// Add adds b's sums to a.
func (a *Acc) Add(b *Acc) {
	a.Frames += b.Frames
	a.N += b.N
	a.Luma += b.Luma
	a.RG += b.RG
	a.RG2 += b.RG2
	a.YB += b.YB
	a.YB2 += b.YB2
	a.Chromatic += b.Chromatic
	for k := range a.Bin {
		a.Bin[k] += b.Bin[k]
		a.Off[k] += b.Off[k]
	}
}

// Sample reads one packed BGR frame (width×height pixels, rows stride bytes
// apart) at the centres of a grid of square cells of about GridPoints
// pixels. Point samples, not cell averages: averaging would shrink the
// colour spread that colorfulness measures, while points keep the frame's
// pixel distribution, so the figures estimate those of the whole frame.
func Sample(bgr []byte, width, height, stride int) (Acc, error) {
	var a Acc
	if width <= 0 || height <= 0 || stride < 3*width {
		return a, fmt.Errorf("scene: frame %d×%d with row stride %d: need positive sizes and a stride of at least 3×width", width, height, stride)
	}
	if need := (height-1)*stride + 3*width; len(bgr) < need {
		return a, fmt.Errorf("scene: frame %d×%d (stride %d) needs %d bytes, got %d", width, height, stride, need, len(bgr))
	}
	step := max(1, int(math.Ceil(math.Sqrt(float64(width)*float64(height)/GridPoints))))
	nx, ny := max(1, width/step), max(1, height/step)
	ox, oy := (width-(nx-1)*step)/2, (height-(ny-1)*step)/2
	// Integer sums, exact: luma ×1000, yb ×2 (r + g − 2b).
	var luma, rg, rg2, yb, yb2 int64
	var chromatic int
	var bin [tree.HueBins]int
	for j := range ny {
		row := bgr[(oy+j*step)*stride:]
		for i := range nx {
			p := row[3*(ox+i*step):]
			b, g, r := int(p[0]), int(p[1]), int(p[2])
			luma += int64(299*r + 587*g + 114*b)
			x, y := int64(r-g), int64(r+g-2*b)
			rg += x
			rg2 += x * x
			yb += y
			yb2 += y * y
			hi, lo := max(r, g, b), min(r, g, b)
			c := hi - lo
			if c < chromaMinInt {
				continue
			}
			h := hue(r, g, b, hi, c)
			k := int((h+15)/30) % tree.HueBins
			off := h - float64(30*k)
			if off >= 180 { // bin 0 wraps: 350° is −10° from its centre
				off -= 360
			}
			chromatic++
			bin[k]++
			a.Off[k] += off
		}
	}
	a.Frames, a.N = 1, float64(nx*ny)
	a.Luma, a.RG, a.RG2 = float64(luma)/1000, float64(rg), float64(rg2)
	a.YB, a.YB2 = float64(yb)/2, float64(yb2)/4
	a.Chromatic = float64(chromatic)
	for k, n := range bin {
		a.Bin[k] = float64(n)
	}
	return a, nil
}

// hue is the HSV hue in degrees [0, 360) of a pixel with chroma c > 0.
func hue(r, g, b, hi, c int) float64 {
	k := inv60[c]
	var h float64
	switch hi {
	case r:
		h = float64(g-b) * k
	case g:
		h = float64(b-r)*k + 120
	default:
		h = float64(r-g)*k + 240
	}
	if h < 0 {
		h += 360
	}
	return h
}

// Scene turns the sums into a tree's scene block, low_light judged by the
// default threshold (Mark judges it by another).
func (a *Acc) Scene() tree.Scene {
	var s tree.Scene
	s.Frames = a.Frames
	if a.N == 0 {
		return s
	}
	n := a.N
	s.Brightness = prob(a.Luma / n / 255)
	mrg, myb := a.RG/n, a.YB/n
	vrg, vyb := max(a.RG2/n-mrg*mrg, 0), max(a.YB2/n-myb*myb, 0)
	s.Colorfulness = round(math.Sqrt(vrg+vyb)+0.3*math.Sqrt(mrg*mrg+myb*myb), 2)
	s.Chromatic = prob(a.Chromatic / n)
	Mark(&s, LowLight)
	if a.Chromatic == 0 {
		return s
	}
	top := 0
	for k := range a.Bin {
		s.HueHistogram[k] = prob(a.Bin[k] / a.Chromatic)
		if a.Bin[k] > a.Bin[top] {
			top = k
		}
	}
	h := math.Mod(round(float64(30*top)+a.Off[top]/a.Bin[top], 1)+360, 360)
	s.Hue = &h
	return s
}

// Mark sets s.LowLight: brightness below threshold (0: never).
func Mark(s *tree.Scene, threshold float64) {
	s.LowLight = threshold > 0 && s.Brightness < threshold
}

// Discount is the factor on the face levels' confidences at brightness b
// with the low-light threshold: 1 from the threshold up (and with it 0);
// below, falling linearly to 0.5 at black. Half, not zero: a dark face is
// still evidence, only weaker, and the classifier's own scores are kept as
// they are.
func Discount(b, threshold float64) float64 {
	if !(threshold > 0) || b >= threshold {
		return 1
	}
	return 0.5 + 0.5*max(b, 0)/threshold
}

func prob(x float64) float64 { return round(min(max(x, 0), 1), 4) }

func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
