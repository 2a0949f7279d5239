package facetrack

import (
	"errors"
	"fmt"
	"image"
	"math"
	"sort"
	"sync"

	"gocv.io/x/gocv"
)

// BlazeFaceModel runs the BlazeFace network on one letterboxed frame. It is
// implemented outside facetrack (engine wraps the ONNX session), so this
// package stays free of the inference runtime.
type BlazeFaceModel interface {
	// InputSize is the input's width and height: 128² front, 256² back,
	// or the back model converted for 16:9 frames (256×160).
	InputSize() (w, h int)
	// Infer takes w×h×3 RGB bytes (row-major) and returns, per anchor
	// in GenerateAnchors order, the raw score logit and the 16 regressors
	// (box dx, dy, w, h, then 6 keypoints x, y; input pixels, relative to
	// the anchor centre for the offsets).
	Infer(rgb []byte) (logits, regressors []float32, err error)
}

// BlazeFaceFiller is a BlazeFaceModel whose input the detector writes in
// place: letterbox, BGR→RGB and the model's value mapping (byte·k + bias) in
// one pass into the input tensor, with no byte copy in between. The
// returned slices are the model's, valid until its next call.
type BlazeFaceFiller interface {
	BlazeFaceModel
	InferFill(fill func(dst []float32, k, bias float32) error) (logits, regressors []float32, err error)
}

// BlazeFaceConfig tunes the detector. Zero fields take the defaults.
type BlazeFaceConfig struct {
	// MinScore: detections below this sigmoid score are dropped. Default
	// 0.3, below the tracker's HighThreshold (0.5) so weaker faces still
	// reach its second association pass and keep tracks alive.
	MinScore float32
	// NMSIoU: candidates overlapping a stronger one by more than this are
	// merged into it (weighted NMS). Default 0.3 (MediaPipe's).
	NMSIoU float64
	// MaxFaces caps the detections per frame (strongest first). Default 16.
	MaxFaces int
	// Name is what Name() reports (e.g. "blazeface-front"). Default "blazeface".
	Name string
	// RegionFit letterboxes every region to fill the input, as a frame is,
	// instead of shrinking it by a whole factor where one is near
	// (regionFactor): slower, for comparing the two.
	RegionFit bool
}

func (c BlazeFaceConfig) withDefaults() BlazeFaceConfig {
	if c.MinScore == 0 {
		c.MinScore = 0.3
	}
	if c.NMSIoU == 0 {
		c.NMSIoU = 0.3
	}
	if c.MaxFaces == 0 {
		c.MaxFaces = 16
	}
	if c.Name == "" {
		c.Name = "blazeface"
	}
	return c
}

// Anchor is one BlazeFace anchor centre in input pixels.
type Anchor struct{ X, Y float64 }

// GenerateAnchors returns BlazeFace's SSD anchors for a w×h input (w the
// model's reference side, 128 or 256): a grid of w/16-pixel cells with 2
// anchors each (strides 8 for 128, 16 for 256), then one of w/8-pixel cells
// with 6 each; 896 anchors for both square models, 560 for 256×160. All
// anchors are unit-size (the network regresses absolute width/height).
func GenerateAnchors(w, h int) []Anchor {
	var out []Anchor
	ref := max(w, h)
	for _, l := range []struct{ stride, n int }{{ref / 16, 2}, {ref / 8, 6}} {
		gw, gh := (w+l.stride-1)/l.stride, (h+l.stride-1)/l.stride
		for gy := range gh {
			for gx := range gw {
				a := Anchor{float64(l.stride) * (float64(gx) + 0.5), float64(l.stride) * (float64(gy) + 0.5)}
				for range l.n {
					out = append(out, a)
				}
			}
		}
	}
	return out
}

// BlazeFace is a Detector backed by MediaPipe's BlazeFace (front: 128×128,
// near faces; back: 256×256, far faces). Each frame is letterboxed (scaled
// to fit, centred, padded with black) into the square input, or into a
// narrower one of the same network that holds it at the same scale (a
// 16:9 frame in 256×160: 5/8 of the pixels, so of the Run); boxes and the
// six keypoints (right eye, left eye, nose tip, mouth, right ear tragion,
// left ear tragion; the subject's sides) are decoded from the anchors,
// merged by weighted NMS and mapped back to source pixels. Scores are the
// sigmoid of the network's logit, 0..1. Detect is safe for concurrent use
// (calls are serialised).
type BlazeFace struct {
	cfg    BlazeFaceConfig
	inputs []*blazeInput // the square model first, then its other shapes
	size   int           // the square's side

	mu      sync.Mutex
	closed  bool
	resized gocv.Mat // reused letterbox scratch (growing)
	area    []byte   // reused letterbox scratch (shrinking)
}

// blazeInput is one input shape of the network: its model (session), anchors
// and what the last letterbox left in its input.
type blazeInput struct {
	model   BlazeFaceModel
	w, h    int
	anchors []Anchor
	rgb     []byte   // byte input, for models that are not BlazeFaceFillers
	padded  padState // what letterboxInto left in the model's input
}

// NewBlazeFace wraps model, whose input is square. shapes are the same
// network converted for other input shapes, with the square's side as
// their long one (256×160 beside 256²): a frame goes to the smallest input
// that holds it at the scale the square would, so detection does not
// change, only the padding the network runs over. Regions always use the
// square. The caller keeps ownership of the models.
func NewBlazeFace(model BlazeFaceModel, cfg BlazeFaceConfig, shapes ...BlazeFaceModel) (*BlazeFace, error) {
	cfg = cfg.withDefaults()
	if model == nil {
		return nil, errors.New("facetrack: blazeface needs a model")
	}
	size, h := model.InputSize()
	if size < 16 || size%16 != 0 || h != size {
		return nil, fmt.Errorf("facetrack: blazeface input %dx%d must be square, its side a positive multiple of 16", size, h)
	}
	if !(cfg.MinScore > 0 && cfg.MinScore < 1) || !(cfg.NMSIoU > 0 && cfg.NMSIoU < 1) || cfg.MaxFaces < 1 {
		return nil, fmt.Errorf("facetrack: blazeface config out of range: MinScore %.3g and NMSIoU %.3g must be in (0, 1), MaxFaces %d >= 1", cfg.MinScore, cfg.NMSIoU, cfg.MaxFaces)
	}
	b := &BlazeFace{cfg: cfg, size: size, resized: gocv.NewMat()}
	for i, m := range append([]BlazeFaceModel{model}, shapes...) {
		if m == nil {
			return nil, fmt.Errorf("facetrack: blazeface shape %d has no model", i)
		}
		w, h := m.InputSize()
		// The stride-8 grid's cells must tile the input, and the long side
		// must be the square's, for the same anchors at the same scale.
		if max(w, h) != size || w%(size/8) != 0 || h%(size/8) != 0 {
			return nil, fmt.Errorf("facetrack: blazeface shape %d is %dx%d: want its long side %d (the square's) and both sides multiples of %d", i, w, h, size, size/8)
		}
		b.inputs = append(b.inputs, &blazeInput{model: m, w: w, h: h, anchors: GenerateAnchors(w, h), rgb: make([]byte, w*h*3)})
	}
	return b, nil
}

// fit is the size a W×H picture letterboxes to at the square's scale (its
// side over the picture's long one).
func (b *BlazeFace) fit(W, H int) (nw, nh int) {
	s := float64(b.size) / float64(max(W, H))
	return max(1, int(math.Round(float64(W)*s))), max(1, int(math.Round(float64(H)*s)))
}

// inputFor is the smallest input that holds a W×H picture at the square's
// scale (the square itself for 4:3, portrait or square frames).
func (b *BlazeFace) inputFor(W, H int) *blazeInput {
	best := b.inputs[0]
	nw, nh := b.fit(W, H)
	for _, in := range b.inputs[1:] {
		if nw <= in.w && nh <= in.h && in.w*in.h < best.w*best.h {
			best = in
		}
	}
	return best
}

// Name is the configured name.
func (b *BlazeFace) Name() string { return b.cfg.Name }

// Detect finds faces in a BGR (or gray/BGRA) frame.
func (b *BlazeFace) Detect(img gocv.Mat) ([]Detection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	src, release, err := b.frame(img)
	if err != nil {
		return nil, err
	}
	defer release()
	return b.detectIn(b.inputFor(src.Cols(), src.Rows()), src, 0, 0, 0)
}

// DetectRegions runs the detector on each region of img (source pixels,
// clipped to the frame) on its own, each letterboxed into the model's
// input, and merges the finds: for a face filling about half of a region
// the front model (128×128) costs a quarter of the back model's full frame.
func (b *BlazeFace) DetectRegions(img gocv.Mat, rois []Rect) ([]Detection, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	src, release, err := b.frame(img)
	if err != nil {
		return nil, err
	}
	defer release()
	var all []Detection
	for _, r := range rois {
		x0, y0 := max(0, int(math.Floor(r.X))), max(0, int(math.Floor(r.Y)))
		x1, y1 := min(src.Cols(), int(math.Ceil(r.X+r.W))), min(src.Rows(), int(math.Ceil(r.Y+r.H)))
		if x1-x0 < 8 || y1-y0 < 8 {
			continue // off the frame: nothing to look at
		}
		k := 0
		if !b.cfg.RegionFit {
			k = regionFactor(x1-x0, y1-y0, b.size)
		}
		if k > 0 { // trim to whole multiples of k, centred: under k px a side
			tw, th := (x1-x0)/k*k, (y1-y0)/k*k
			x0, y0 = x0+(x1-x0-tw)/2, y0+(y1-y0-th)/2
			x1, y1 = x0+tw, y0+th
		}
		sub := src.Region(image.Rect(x0, y0, x1, y1))
		dets, err := b.detectIn(b.inputs[0], sub, float64(x0), float64(y0), k)
		sub.Close()
		if err != nil {
			return nil, err
		}
		all = append(all, dets...)
	}
	if len(rois) > 1 {
		all = weightedNMS(all, b.cfg.NMSIoU, b.cfg.MaxFaces)
	}
	return all, nil
}

// regionFactor is the whole factor a w×h region shrinks by into a
// size-square input, or 0 to fit it to the square as a frame is. A whole
// factor makes the letterbox a plain k×k block mean (area.cpp's integer
// path, several times cheaper than fractional weights, and regions are
// most of the letterboxes between full detections), at the price of
// trimming under k px a side and of leaving the input's margin unused; it
// is taken only where the region's scale stays within a quarter of
// fitting's, which BlazeFace's anchors span.
func regionFactor(w, h, size int) int {
	s := max(w, h)
	if s <= size {
		return 0
	}
	k := (s + size - 1) / size
	if 4*(s/k) < 3*size {
		return 0
	}
	return k
}

func (b *BlazeFace) frame(img gocv.Mat) (gocv.Mat, func(), error) {
	if b.closed {
		return gocv.Mat{}, nil, errors.New("facetrack: blazeface is closed")
	}
	if img.Empty() {
		return gocv.Mat{}, nil, errors.New("facetrack: blazeface got an empty frame")
	}
	return asBGR(img)
}

// detectIn detects in src (a frame, or a region of one at offX, offY) with
// input in and returns boxes in frame pixels, clipped to src. shrink is
// resize's.
func (b *BlazeFace) detectIn(in *blazeInput, src gocv.Mat, offX, offY float64, shrink int) ([]Detection, error) {
	lb, logits, regs, err := b.infer(in, src, shrink)
	if err != nil {
		return nil, fmt.Errorf("facetrack: %s: %w", b.cfg.Name, err)
	}
	if len(logits) != len(in.anchors) || len(regs) != 16*len(in.anchors) {
		return nil, fmt.Errorf("facetrack: %s (%dx%d) returned %d scores and %d regressors, want %d and %d", b.cfg.Name, in.w, in.h, len(logits), len(regs), len(in.anchors), 16*len(in.anchors))
	}
	dets := decodeBlazeFace(in.anchors, logits, regs, b.cfg.MinScore)
	dets = weightedNMS(dets, b.cfg.NMSIoU, b.cfg.MaxFaces)
	W, H := float64(src.Cols()), float64(src.Rows())
	out := make([]Detection, 0, len(dets))
	for _, d := range dets {
		p0 := lb.point(d.Box.X, d.Box.Y)
		p1 := lb.point(d.Box.X+d.Box.W, d.Box.Y+d.Box.H)
		// clip to the frame (padding is not image)
		x0, y0 := math.Max(p0.X, 0), math.Max(p0.Y, 0)
		x1, y1 := math.Min(p1.X, W), math.Min(p1.Y, H)
		if x1-x0 < 2 || y1-y0 < 2 {
			continue
		}
		det := Detection{Box: Rect{x0 + offX, y0 + offY, x1 - x0, y1 - y0}, Score: d.Score, Keypoints: make([]Point, len(d.Keypoints))}
		for i, k := range d.Keypoints {
			p := lb.point(k.X, k.Y)
			det.Keypoints[i] = Point{p.X + offX, p.Y + offY}
		}
		out = append(out, det)
	}
	return out, nil
}

// infer letterboxes src into in's model's input and runs it.
func (b *BlazeFace) infer(in *blazeInput, src gocv.Mat, shrink int) (letterbox, []float32, []float32, error) {
	if f, ok := in.model.(BlazeFaceFiller); ok {
		var lb letterbox
		logits, regs, err := f.InferFill(func(dst []float32, k, bias float32) error {
			var err error
			lb, err = b.letterboxInto(in, src, dst, k, bias, shrink)
			return err
		})
		return lb, logits, regs, err
	}
	lb, err := b.letterbox(in, src, shrink)
	if err != nil {
		return lb, nil, nil, err
	}
	logits, regs, err := in.model.Infer(in.rgb)
	return lb, logits, regs, err
}

// Close releases the scratch Mat. It does not close the model.
func (b *BlazeFace) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	return b.resized.Close()
}

// decodeBlazeFace turns raw outputs into candidate detections in input
// pixels (before NMS).
func decodeBlazeFace(anchors []Anchor, logits, regs []float32, minScore float32) []Detection {
	var out []Detection
	// Most anchors score far below minScore: a logit below minScore's own
	// by more than a margin for the score's float32 rounding is skipped
	// without the exp; the rest are scored and compared as before.
	cut := float32(math.Inf(-1))
	if minScore > 0 && minScore < 1 {
		cut = float32(math.Log(float64(minScore)/(1-float64(minScore)))) - 1e-3
	}
	for i, a := range anchors {
		if logits[i] < cut {
			continue
		}
		if score := anchorScore(logits[i]); score >= minScore {
			if d, ok := anchorDetection(a, regs[16*i:16*i+16], score); ok {
				out = append(out, d)
			}
		}
	}
	return out
}

// anchorScore is an anchor's score: the sigmoid of its logit, clamped to ±100.
func anchorScore(logit float32) float32 {
	l := math.Max(-100, math.Min(100, float64(logit)))
	return float32(1 / (1 + math.Exp(-l)))
}

// anchorDetection decodes an anchor's 16 regressors (box centre and size,
// six keypoints, offsets from the anchor); false for an empty box.
func anchorDetection(a Anchor, r []float32, score float32) (Detection, bool) {
	cx, cy := a.X+float64(r[0]), a.Y+float64(r[1])
	w, h := float64(r[2]), float64(r[3])
	if !(w > 0 && h > 0) {
		return Detection{}, false
	}
	kp := make([]Point, 6)
	for k := range kp {
		kp[k] = Point{a.X + float64(r[4+2*k]), a.Y + float64(r[5+2*k])}
	}
	return Detection{Box: Rect{cx - w/2, cy - h/2, w, h}, Score: score, Keypoints: kp}, true
}

// weightedNMS is MediaPipe's weighted non-maximum suppression: take the
// strongest remaining candidate, gather every candidate overlapping it by
// more than iou (itself included), and replace them by one detection whose
// box and keypoints are the score-weighted mean of the group and whose score
// is the strongest's. Keeps at most maxN.
func weightedNMS(cands []Detection, iou float64, maxN int) []Detection {
	sort.SliceStable(cands, func(i, j int) bool { return cands[i].Score > cands[j].Score })
	used := make([]bool, len(cands))
	var out []Detection
	for i := range cands {
		if used[i] || len(out) >= maxN {
			continue
		}
		var wsum float64
		var box Rect
		kp := make([]Point, len(cands[i].Keypoints))
		for j := i; j < len(cands); j++ {
			if used[j] || cands[i].Box.IoU(cands[j].Box) <= iou && j != i {
				continue
			}
			used[j] = true
			w := float64(cands[j].Score)
			wsum += w
			box.X += w * cands[j].Box.X
			box.Y += w * cands[j].Box.Y
			box.W += w * cands[j].Box.W
			box.H += w * cands[j].Box.H
			for k := range kp {
				kp[k].X += w * cands[j].Keypoints[k].X
				kp[k].Y += w * cands[j].Keypoints[k].Y
			}
		}
		box = Rect{box.X / wsum, box.Y / wsum, box.W / wsum, box.H / wsum}
		for k := range kp {
			kp[k] = Point{kp[k].X / wsum, kp[k].Y / wsum}
		}
		out = append(out, Detection{Box: box, Score: cands[i].Score, Keypoints: kp})
	}
	return out
}

var _ RegionDetector = (*BlazeFace)(nil)

// EyeRollDegrees is the roll CropAligned corrects for keypoints kp (right
// eye, left eye first), in degrees; 0 when they give none.
func EyeRollDegrees(kp []Point) float64 {
	a, ok := eyeRoll(kp)
	if !ok || math.Abs(a) < 0.5*math.Pi/180 {
		return 0
	}
	return a * 180 / math.Pi
}
