package facetrack

import (
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"sort"
	"sync"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine/registry"
)

// DefaultHaarCascade is the frontal-face cascade shipped by Debian's
// opencv-data package.
const DefaultHaarCascade = "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml"

// HaarConfig tunes the Haar-cascade detector. Zero fields take the defaults
// of DefaultHaarConfig.
type HaarConfig struct {
	// Cascade is the cascade XML path. Default DefaultHaarCascade.
	Cascade string
	// ScaleFactor is the image-pyramid step (> 1). Default 1.1.
	ScaleFactor float64
	// MinNeighbors: a group of at least this many neighbouring raw windows
	// (OpenCV's minNeighbors) scores >= 0.5, i.e. is a high-score detection
	// for the tracker's default HighThreshold. Default 5.
	MinNeighbors int
	// LowNeighbors: groups with LowNeighbors <= neighbours < MinNeighbors
	// are still reported, with scores below 0.5 (low-score detections for
	// the tracker's second pass). Must be in [1, MinNeighbors]; set it equal
	// to MinNeighbors to report only high-score faces. Default 1.
	LowNeighbors int
	// MinFace is the smallest face side in source pixels. Default 30.
	MinFace int
	// MaxWidth: frames wider than this are downscaled to it before
	// detection (boxes are mapped back to source pixels). Default 640;
	// negative disables downscaling.
	MaxWidth int
	// GroupEps is the rectangle-grouping tolerance (cv::groupRectangles'
	// eps). Default 0.2, as OpenCV's detectMultiScale.
	GroupEps float64
}

// DefaultHaarConfig returns the defaults documented on HaarConfig.
func DefaultHaarConfig() HaarConfig {
	return HaarConfig{
		Cascade:      DefaultHaarCascade,
		ScaleFactor:  1.1,
		MinNeighbors: 5,
		LowNeighbors: 1,
		MinFace:      30,
		MaxWidth:     640,
		GroupEps:     0.2,
	}
}

func (c HaarConfig) withDefaults() HaarConfig {
	d := DefaultHaarConfig()
	orDefault(&c.Cascade, d.Cascade)
	orDefault(&c.ScaleFactor, d.ScaleFactor)
	orDefault(&c.MinNeighbors, d.MinNeighbors)
	orDefault(&c.LowNeighbors, d.LowNeighbors)
	orDefault(&c.MinFace, d.MinFace)
	orDefault(&c.MaxWidth, d.MaxWidth)
	orDefault(&c.GroupEps, d.GroupEps)
	return c
}

// orDefault sets a zero *v to d: a config's zero value means "the default".
func orDefault[T comparable](v *T, d T) {
	var zero T
	if *v == zero {
		*v = d
	}
}

// Haar is a Detector backed by an OpenCV Haar cascade.
//
// OpenCV returns no confidence for Haar detections, so Haar asks for the raw
// candidate windows (minNeighbors 0) and groups them itself with the
// cv::groupRectangles algorithm. A group of n raw windows has k = n−1
// neighbours (OpenCV's meaning of minNeighbors) and scores
//
//	score = k / (k + MinNeighbors)
//
// which is 0 for a lone window, rises monotonically towards 1, and is
// exactly 0.5 at k = MinNeighbors: groups OpenCV itself would keep are
// high-score detections at the tracker's default HighThreshold, and weaker
// groups (down to LowNeighbors) are low-score ones.
//
// Detect is safe for concurrent use (calls are serialised).
type Haar struct {
	cfg HaarConfig
	mu  sync.Mutex
	cc  gocv.CascadeClassifier
	ok  bool // cc is loaded and not closed
}

// NewHaar validates cfg, checks that the cascade file exists, is readable
// and is well-formed OpenCV cascade XML (gocv 0.31 does not catch C++
// exceptions, so a bad file would abort the process), and loads it.
func NewHaar(cfg HaarConfig) (*Haar, error) {
	cfg = cfg.withDefaults()
	if cfg.ScaleFactor <= 1 {
		return nil, fmt.Errorf("facetrack: haar ScaleFactor %.3g must be > 1 (e.g. 1.1)", cfg.ScaleFactor)
	}
	if cfg.MinNeighbors < 1 || cfg.LowNeighbors < 1 || cfg.LowNeighbors > cfg.MinNeighbors {
		return nil, fmt.Errorf("facetrack: haar needs 1 <= LowNeighbors (%d) <= MinNeighbors (%d)", cfg.LowNeighbors, cfg.MinNeighbors)
	}
	if cfg.MinFace < 1 {
		return nil, fmt.Errorf("facetrack: haar MinFace %d must be >= 1 pixel", cfg.MinFace)
	}
	if cfg.MaxWidth > 0 && cfg.MaxWidth < 2*cfg.MinFace {
		return nil, fmt.Errorf("facetrack: haar MaxWidth %d is too small for MinFace %d: raise MaxWidth or set it negative to disable downscaling", cfg.MaxWidth, cfg.MinFace)
	}
	if !(cfg.GroupEps > 0 && cfg.GroupEps < 1) {
		return nil, fmt.Errorf("facetrack: haar GroupEps %.3g must be in (0, 1)", cfg.GroupEps)
	}
	if err := checkCascadeFile(cfg.Cascade); err != nil {
		return nil, err
	}
	cc := gocv.NewCascadeClassifier()
	if !cc.Load(cfg.Cascade) {
		cc.Close()
		return nil, fmt.Errorf("facetrack: OpenCV could not load cascade %s (is it a cascade for OpenCV 4? install opencv-data or set HaarConfig.Cascade)", cfg.Cascade)
	}
	slog.Debug("facetrack: haar cascade loaded", "path", cfg.Cascade, "minNeighbors", cfg.MinNeighbors, "maxWidth", cfg.MaxWidth)
	return &Haar{cfg: cfg, cc: cc, ok: true}, nil
}

// checkCascadeFile fails unless path is a readable regular file holding
// well-formed XML whose root is <opencv_storage> with a cascade inside
// (new format <cascade>, or old format type_id="opencv-haar-classifier").
func checkCascadeFile(path string) error {
	const fix = "install opencv-data (apt-get install opencv-data) or set HaarConfig.Cascade to a cascade XML such as " + DefaultHaarCascade
	st, err := os.Stat(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is already in the message
		}
		return fmt.Errorf("facetrack: haar cascade %s: %w (%s)", path, err, fix)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("facetrack: haar cascade %s is not a regular file (%s)", path, fix)
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("facetrack: haar cascade %s is not readable: %w (%s)", path, err, fix)
	}
	defer f.Close()

	dec := xml.NewDecoder(f)
	depth, root, cascade := 0, "", false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("facetrack: haar cascade %s is not well-formed XML: %w (%s)", path, err, fix)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 {
				root = e.Name.Local
				if root != "opencv_storage" {
					return fmt.Errorf("facetrack: haar cascade %s has root <%s>, not <opencv_storage>: not an OpenCV cascade (%s)", path, root, fix)
				}
			}
			if depth == 2 {
				if e.Name.Local == "cascade" {
					cascade = true
				}
				for _, a := range e.Attr {
					if a.Name.Local == "type_id" && a.Value == "opencv-haar-classifier" {
						cascade = true
					}
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	if root == "" {
		return fmt.Errorf("facetrack: haar cascade %s holds no XML element: not an OpenCV cascade (%s)", path, fix)
	}
	if !cascade {
		return fmt.Errorf("facetrack: haar cascade %s is OpenCV storage without a cascade in it (%s)", path, fix)
	}
	return nil
}

// Name implements Detector.
func (h *Haar) Name() string { return registry.DetectorHaar }

// Config returns the effective configuration (defaults filled in).
func (h *Haar) Config() HaarConfig { return h.cfg }

// Close releases the cascade; Detect fails afterwards. Safe to call twice.
func (h *Haar) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ok {
		h.cc.Close()
		h.ok = false
	}
	return nil
}

// Detect finds faces in a BGR (or gray, or BGRA) frame. Boxes are in the
// frame's pixels; see Haar for how scores are made. Detections are sorted by
// descending score.
func (h *Haar) Detect(img gocv.Mat) ([]Detection, error) {
	if img.Empty() {
		return nil, errors.New("facetrack: haar Detect got an empty frame")
	}
	var code gocv.ColorConversionCode
	switch ch := img.Channels(); ch {
	case 1:
		code = -1
	case 3:
		code = gocv.ColorBGRToGray
	case 4:
		code = gocv.ColorBGRAToGray
	default:
		return nil, fmt.Errorf("facetrack: haar Detect needs a 1, 3 or 4 channel frame, got %d", ch)
	}
	if img.Type()&7 != 0 { // depth must be CV_8U
		return nil, fmt.Errorf("facetrack: haar Detect needs an 8-bit frame, got Mat type %v", img.Type())
	}

	// work is the Mat being processed; it aliases img or a Mat owned (and
	// closed) here.
	work := img
	if code >= 0 {
		gray := gocv.NewMat()
		defer gray.Close()
		gocv.CvtColor(img, &gray, code)
		work = gray
	}
	sx, sy := 1.0, 1.0 // source pixels per working pixel
	if w, hh := work.Cols(), work.Rows(); h.cfg.MaxWidth > 0 && w > h.cfg.MaxWidth {
		nh := max(int(math.Round(float64(hh)*float64(h.cfg.MaxWidth)/float64(w))), 1)
		sx, sy = float64(w)/float64(h.cfg.MaxWidth), float64(hh)/float64(nh)
		small := gocv.NewMat()
		defer small.Close()
		gocv.Resize(work, &small, image.Pt(h.cfg.MaxWidth, nh), 0, 0, gocv.InterpolationArea)
		work = small
	}
	eq := gocv.NewMat()
	defer eq.Close()
	gocv.EqualizeHist(work, &eq)

	minSide := max(int(math.Round(float64(h.cfg.MinFace)/math.Max(sx, sy))), 1)

	h.mu.Lock()
	if !h.ok {
		h.mu.Unlock()
		return nil, errors.New("facetrack: haar Detect called after Close")
	}
	raw := h.cc.DetectMultiScaleWithParams(eq, h.cfg.ScaleFactor, 0, 0, image.Pt(minSide, minSide), image.Pt(0, 0))
	h.mu.Unlock()

	groups := groupRects(raw, h.cfg.LowNeighbors, h.cfg.GroupEps)
	dets := make([]Detection, 0, len(groups))
	for _, g := range groups {
		k := float32(g.neighbors)
		dets = append(dets, Detection{
			Box: Rect{
				X: g.r.X * sx, Y: g.r.Y * sy,
				W: g.r.W * sx, H: g.r.H * sy,
			},
			Score: k / (k + float32(h.cfg.MinNeighbors)),
		})
	}
	sort.SliceStable(dets, func(i, j int) bool { return dets[i].Score > dets[j].Score })
	return dets, nil
}

type rectGroup struct {
	r         Rect
	neighbors int // raw windows in the group minus one
}

// groupRects is cv::groupRectangles without the threshold baked into the
// averaging: raw windows are partitioned by the eps-similarity (transitive
// closure), each class averaged, classes with fewer than minNeighbors
// neighbours dropped, and a class lying inside a stronger one removed, with
// OpenCV's rule (the outer one has more than max(3, n) windows, or the inner
// one fewer than 3).
func groupRects(raw []image.Rectangle, minNeighbors int, eps float64) []rectGroup {
	n := len(raw)
	if n == 0 {
		return nil
	}
	parent := make([]int, n)
	for i := range parent {
		parent[i] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	similar := func(a, b image.Rectangle) bool {
		aw, ah, bw, bh := a.Dx(), a.Dy(), b.Dx(), b.Dy()
		delta := eps * float64(min(aw, bw)+min(ah, bh)) * 0.5
		return math.Abs(float64(a.Min.X-b.Min.X)) <= delta &&
			math.Abs(float64(a.Min.Y-b.Min.Y)) <= delta &&
			math.Abs(float64(a.Max.X-b.Max.X)) <= delta &&
			math.Abs(float64(a.Max.Y-b.Max.Y)) <= delta
	}
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			if similar(raw[i], raw[j]) {
				if ri, rj := find(i), find(j); ri != rj {
					parent[rj] = ri
				}
			}
		}
	}
	type acc struct {
		x, y, w, h float64
		n          int
	}
	classes := map[int]*acc{}
	var order []int
	for i, r := range raw {
		root := find(i)
		a := classes[root]
		if a == nil {
			a = &acc{}
			classes[root] = a
			order = append(order, root)
		}
		a.x += float64(r.Min.X)
		a.y += float64(r.Min.Y)
		a.w += float64(r.Dx())
		a.h += float64(r.Dy())
		a.n++
	}
	var cands []rectGroup
	var counts []int
	for _, root := range order {
		a := classes[root]
		if a.n-1 < minNeighbors {
			continue
		}
		f := float64(a.n)
		cands = append(cands, rectGroup{r: Rect{X: a.x / f, Y: a.y / f, W: a.w / f, H: a.h / f}, neighbors: a.n - 1})
		counts = append(counts, a.n)
	}
	out := cands[:0:0]
	for i, c := range cands {
		r1, n1 := c.r, counts[i]
		inside := false
		for j, o := range cands {
			if i == j {
				continue
			}
			r2, n2 := o.r, counts[j]
			dx, dy := r2.W*eps, r2.H*eps
			if r1.X >= r2.X-dx && r1.Y >= r2.Y-dy &&
				r1.X+r1.W <= r2.X+r2.W+dx && r1.Y+r1.H <= r2.Y+r2.H+dy &&
				(n2 > max(3, n1) || n1 < 3) {
				inside = true
				break
			}
		}
		if !inside {
			out = append(out, c)
		}
	}
	return out
}
