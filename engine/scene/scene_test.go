package scene

import (
	"image"
	"image/color"
	_ "image/jpeg"
	_ "image/png"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/internal/testenv"
)

// frame is a packed BGR picture filled by px(x, y) -> r, g, b.
type frame struct {
	w, h int
	bgr  []byte
}

func newFrame(w, h int, px func(x, y int) (r, g, b uint8)) frame {
	f := frame{w, h, make([]byte, w*h*3)}
	for y := range h {
		for x := range w {
			r, g, b := px(x, y)
			i := 3 * (y*w + x)
			f.bgr[i], f.bgr[i+1], f.bgr[i+2] = b, g, r
		}
	}
	return f
}

func solid(r, g, b uint8) frame {
	return newFrame(640, 480, func(int, int) (uint8, uint8, uint8) { return r, g, b })
}

func sceneOf(t *testing.T, f frame) tree.Scene {
	t.Helper()
	a, err := Sample(f.bgr, f.w, f.h, 3*f.w)
	if err != nil {
		t.Fatal(err)
	}
	if a.N < GridPoints*3/4 || a.N > GridPoints {
		t.Fatalf("sampled %g pixels of %d×%d, want about %d", a.N, f.w, f.h, GridPoints)
	}
	return a.Scene()
}

// reference computes the figures over every pixel, straight from their
// definitions, independently of Sample's grid and sums.
func reference(f frame) (brightness, colorfulness float64) {
	var n, y, srg, syb float64
	rgs, ybs := make([]float64, 0, f.w*f.h), make([]float64, 0, f.w*f.h)
	for i := 0; i < len(f.bgr); i += 3 {
		b, g, r := float64(f.bgr[i]), float64(f.bgr[i+1]), float64(f.bgr[i+2])
		y += 0.299*r + 0.587*g + 0.114*b
		rgs = append(rgs, r-g)
		ybs = append(ybs, (r+g)/2-b)
		srg += r - g
		syb += (r+g)/2 - b
		n++
	}
	mrg, myb := srg/n, syb/n
	var vrg, vyb float64
	for i := range rgs {
		vrg += (rgs[i] - mrg) * (rgs[i] - mrg)
		vyb += (ybs[i] - myb) * (ybs[i] - myb)
	}
	vrg, vyb = vrg/n, vyb/n
	return y / n / 255, math.Sqrt(vrg+vyb) + 0.3*math.Sqrt(mrg*mrg+myb*myb)
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

func TestBlackAndWhite(t *testing.T) {
	k := sceneOf(t, solid(0, 0, 0))
	if k.Brightness != 0 || k.Colorfulness != 0 || k.Chromatic != 0 || k.Hue != nil || k.HueHistogram != [tree.HueBins]float64{} || !k.LowLight || k.Frames != 1 {
		t.Errorf("black: %+v", k)
	}
	w := sceneOf(t, solid(255, 255, 255))
	if w.Brightness != 1 || w.Colorfulness != 0 || w.Chromatic != 0 || w.Hue != nil || w.LowLight {
		t.Errorf("white: %+v", w)
	}
}

// A uniform saturated colour: luma 0.299 R + 0.587 G + 0.114 B, no spread
// so colorfulness is 0.3 × |(R − G, (R + G)/2 − B)|, one hue, every pixel
// chromatic and in that hue's bin.
func TestPureHues(t *testing.T) {
	for _, c := range []struct {
		name    string
		r, g, b uint8
		hue     float64
		bin     int
	}{
		{"red", 255, 0, 0, 0, 0},
		{"orange", 255, 128, 0, 30.1, 1},
		{"yellow", 255, 255, 0, 60, 2},
		{"green", 0, 255, 0, 120, 4},
		{"cyan", 0, 255, 255, 180, 6},
		{"blue", 0, 0, 255, 240, 8},
		{"magenta", 255, 0, 255, 300, 10},
		{"rose", 255, 0, 43, 349.9, 0}, // bin 0 spans 345°..15°
		{"dark blue", 0, 0, 60, 240, 8},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := sceneOf(t, solid(c.r, c.g, c.b))
			r, g, b := float64(c.r), float64(c.g), float64(c.b)
			wantY := (0.299*r + 0.587*g + 0.114*b) / 255
			wantM := 0.3 * math.Hypot(r-g, (r+g)/2-b)
			if !near(s.Brightness, wantY, 1e-4) || !near(s.Colorfulness, wantM, 0.01) {
				t.Errorf("brightness %g colorfulness %g, want %.4f %.2f", s.Brightness, s.Colorfulness, wantY, wantM)
			}
			if s.Hue == nil || !near(*s.Hue, c.hue, 0.05) {
				t.Errorf("hue %v, want %g", s.Hue, c.hue)
			}
			if s.Chromatic != 1 || s.HueHistogram[c.bin] != 1 {
				t.Errorf("chromatic %g, histogram %v, want all in bin %d", s.Chromatic, s.HueHistogram, c.bin)
			}
			if s.LowLight != (wantY < LowLight) {
				t.Errorf("low light %v at brightness %g", s.LowLight, s.Brightness)
			}
		})
	}
}

// A grey ramp from black to white: mean luma one half, no colour at all.
func TestGreyRamp(t *testing.T) {
	for _, dir := range []string{"horizontal", "vertical"} {
		f := newFrame(1280, 720, func(x, y int) (uint8, uint8, uint8) {
			v := uint8(x * 256 / 1280)
			if dir == "vertical" {
				v = uint8(y * 256 / 720)
			}
			return v, v, v
		})
		s := sceneOf(t, f)
		wantY, _ := reference(f)
		if !near(s.Brightness, wantY, 0.005) || !near(s.Brightness, 0.5, 0.01) {
			t.Errorf("%s ramp: brightness %g, every pixel gives %g", dir, s.Brightness, wantY)
		}
		if s.Colorfulness != 0 || s.Chromatic != 0 || s.Hue != nil || s.LowLight {
			t.Errorf("%s ramp: %+v, want no colour", dir, s)
		}
	}
}

// chart is six vertical stripes (red, yellow, green, cyan, blue, magenta),
// each mixed with mid grey: sat 1 is fully saturated, 0 grey.
func chart(sat float64) frame {
	cols := [][3]float64{{255, 0, 0}, {255, 255, 0}, {0, 255, 0}, {0, 255, 255}, {0, 0, 255}, {255, 0, 255}}
	return newFrame(1200, 600, func(x, y int) (uint8, uint8, uint8) {
		c := cols[x*6/1200]
		m := func(v float64) uint8 { return uint8(math.Round(128 + sat*(v-128))) }
		return m(c[0]), m(c[1]), m(c[2])
	})
}

// Colorfulness as Hasler and Süsstrunk define it: R − G and (R + G)/2 − B
// are linear in a pixel's difference from grey, so mixing every pixel with
// grey scales M by the saturation: the charts are ordered by it, and the
// fully saturated six-colour chart (σ_rg² = 4·255²/6, σ_yb² = (4·127.5² +
// 2·255²)/6, means 0) has M = 275.4, far into "extremely colourful" (≥ 109).
func TestColourChartOrderedByColorfulness(t *testing.T) {
	_, full := reference(chart(1))
	if !near(full, 275.43, 0.5) {
		t.Fatalf("reference colorfulness of the saturated chart %g, want 275.43 (definition)", full)
	}
	prev := math.Inf(1)
	for _, sat := range []float64{1, 0.75, 0.5, 0.25, 0} {
		f := chart(sat)
		s := sceneOf(t, f)
		_, ref := reference(f)
		if !near(s.Colorfulness, ref, 0.02*ref+0.01) {
			t.Errorf("saturation %g: sampled colorfulness %g, every pixel gives %g", sat, s.Colorfulness, ref)
		}
		if !near(ref, sat*full, 1.5) {
			t.Errorf("saturation %g: colorfulness %g, want %g × %g", sat, ref, sat, full)
		}
		if !(s.Colorfulness < prev) {
			t.Errorf("saturation %g: colorfulness %g not below the more saturated chart's %g", sat, s.Colorfulness, prev)
		}
		prev = s.Colorfulness
		if sat >= 0.25 {
			for _, k := range []int{0, 2, 4, 6, 8, 10} {
				if !near(s.HueHistogram[k], 1.0/6, 0.02) {
					t.Errorf("saturation %g: bin %d holds %g, want 1/6: %v", sat, k, s.HueHistogram[k], s.HueHistogram)
				}
			}
		}
	}
	if prev != 0 {
		t.Errorf("the grey chart has colorfulness %g", prev)
	}
}

// The dominant hue is the fullest bin's: two thirds blue, one third red.
func TestDominantHue(t *testing.T) {
	f := newFrame(600, 300, func(x, y int) (uint8, uint8, uint8) {
		if x < 200 {
			return 255, 0, 0
		}
		return 0, 0, 255
	})
	s := sceneOf(t, f)
	if s.Hue == nil || *s.Hue != 240 || !near(s.HueHistogram[8], 2.0/3, 0.02) || !near(s.HueHistogram[0], 1.0/3, 0.02) {
		t.Errorf("hue %v, histogram %v", s.Hue, s.HueHistogram)
	}
}

// On a real photograph the grid's figures are those of every pixel.
func TestGridMatchesFullFrame(t *testing.T) {
	for _, name := range []string{"astronaut.png", "messi5.jpg"} {
		fh, err := os.Open(testenv.Media(t, name))
		if err != nil {
			t.Fatal(err)
		}
		img, _, err := image.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatal(err)
		}
		b := img.Bounds()
		f := newFrame(b.Dx(), b.Dy(), func(x, y int) (uint8, uint8, uint8) {
			c := color.RGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.RGBA)
			return c.R, c.G, c.B
		})
		s := sceneOf(t, f)
		y, m := reference(f)
		if !near(s.Brightness, y, 0.01) || !near(s.Colorfulness, m, 0.03*m) {
			t.Errorf("%s: grid brightness %g colorfulness %g, every pixel %g %g", name, s.Brightness, s.Colorfulness, y, m)
		}
		t.Logf("%s %d×%d: brightness %g (all pixels %.4f), colorfulness %g (%.2f), hue %v, chromatic %g", name, b.Dx(), b.Dy(), s.Brightness, y, s.Colorfulness, m, *s.Hue, s.Chromatic)
	}
}

func TestSampleRejectsBadFrames(t *testing.T) {
	for name, c := range map[string]struct {
		n, w, h, stride int
		want            string
	}{
		"zero width":   {0, 0, 10, 0, "positive sizes"},
		"short stride": {300, 10, 10, 20, "stride"},
		"short buffer": {100, 10, 10, 30, "needs 300 bytes, got 100"},
	} {
		_, err := Sample(make([]byte, c.n), c.w, c.h, c.stride)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to say %q", name, err, c.want)
		}
	}
	// a padded stride (a ROI of a wider frame) reads only the picture
	wide := newFrame(20, 10, func(x, y int) (uint8, uint8, uint8) {
		if x < 10 {
			return 255, 255, 255
		}
		return 0, 0, 0
	})
	a, err := Sample(wide.bgr, 10, 10, 60)
	if err != nil || a.Scene().Brightness != 1 {
		t.Errorf("padded stride: %v, brightness %g", err, a.Scene().Brightness)
	}
}

// A window's scene is that of the frames sampled in its span, all their
// pixels together; before the first sample there is none; a span with no
// sample gets the latest before it.
func TestHistoryWindow(t *testing.T) {
	var h History
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if _, ok := h.Window(t0, t0.Add(time.Second)); ok {
		t.Fatal("a scene before any sample")
	}
	add := func(d time.Duration, f frame) {
		a, err := Sample(f.bgr, f.w, f.h, 3*f.w)
		if err != nil {
			t.Fatal(err)
		}
		h.Add(t0.Add(d), a)
	}
	add(0, solid(0, 0, 0))
	add(250*time.Millisecond, solid(255, 255, 255))
	add(500*time.Millisecond, solid(255, 0, 0))
	s, ok := h.Window(t0, t0.Add(300*time.Millisecond))
	if !ok || s.Brightness != 0.5 || s.Frames != 2 || s.Chromatic != 0 {
		t.Errorf("black+white window: %+v", s)
	}
	s, _ = h.Window(t0, t0.Add(time.Second))
	if s.Frames != 3 || s.Hue == nil || *s.Hue != 0 || !near(s.Chromatic, 1.0/3, 1e-4) {
		t.Errorf("three-frame window: %+v", s)
	}
	s, ok = h.Window(t0.Add(600*time.Millisecond), t0.Add(700*time.Millisecond))
	if !ok || s.Frames != 1 || s.Hue == nil {
		t.Errorf("span without a sample should get the latest (red) frame: %+v", s)
	}
	if _, ok := h.Window(t0.Add(-time.Second), t0.Add(-time.Millisecond)); ok {
		t.Error("a span before every sample got a scene")
	}
	for i := range HistoryLen + 10 { // the ring keeps the newest
		add(time.Second+time.Duration(i)*time.Millisecond, solid(255, 255, 255))
	}
	s, _ = h.Window(t0, t0.Add(time.Hour))
	if s.Frames != HistoryLen || s.Brightness != 1 {
		t.Errorf("full ring: %d frames, brightness %g", s.Frames, s.Brightness)
	}
	if !h.Last().Equal(t0.Add(time.Second + (HistoryLen+9)*time.Millisecond)) {
		t.Errorf("Last = %v", h.Last())
	}
}

func TestDiscount(t *testing.T) {
	for _, c := range []struct{ b, th, want float64 }{
		{0, LowLight, 0.5}, {LowLight / 2, LowLight, 0.75}, {LowLight, LowLight, 1}, {0.9, LowLight, 1},
		{0.2, 0.4, 0.75}, {0, 0, 1}, // a camera's own threshold; 0: never low light
	} {
		if got := Discount(c.b, c.th); !near(got, c.want, 1e-12) {
			t.Errorf("Discount(%g, %g) = %g, want %g", c.b, c.th, got, c.want)
		}
	}
}

func faceTree() *tree.Tree {
	return &tree.Tree{
		Schema: tree.Schema, ID: "cam-1-000001", Camera: "cam", TrackID: 1,
		Window: tree.Window{Start: tree.Time(time.Unix(0, 0)), End: tree.Time(time.Unix(2, 0)), Frames: 8},
		Attributes: &tree.Attributes{
			Age:    &tree.NumberValue{Value: 30, Confidence: 0.6},
			Gender: &tree.LabelValue{Value: "female", Confidence: 0.8},
			Other:  []tree.NamedValue{{Name: "age_group", Value: "young adult", Confidence: 0.4}},
		},
		Expression: &tree.Expression{Label: "happy", Confidence: 0.9, Scores: map[string]float64{"happy": 0.9, "neutral": 0.1}},
		Emotion: &tree.Emotion{Label: "happiness", Confidence: 0.8, Rationale: "happy in 8 of 8 frames (p 0.90)",
			Mikels: &tree.Mikels{Label: "amusement", Confidence: 0.5, Scores: map[string]float64{"amusement": 0.5, "contentment": 0.5}, Derived: true}},
		Source: tree.Source{Engine: "fast-head", Model: "emotion@0123abcd"},
	}
}

func TestApplyLowLight(t *testing.T) {
	lit := tree.Scene{Brightness: 0.4, Frames: 8}
	tr := faceTree()
	Apply(tr, lit, LowLight)
	if tr.Scene == nil || tr.Scene.Brightness != 0.4 || tr.Expression.Confidence != 0.9 || tr.Emotion.Rationale != "happy in 8 of 8 frames (p 0.90)" {
		t.Fatalf("a lit scene changed the face levels: %+v %+v", tr.Expression, tr.Emotion)
	}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}

	dark := tree.Scene{Brightness: 0.075, LowLight: true, Frames: 8} // Discount 0.75
	tr = faceTree()
	orig := faceTree()
	shared := *tr // a tiered tree shares its levels with the VLM's
	Apply(tr, dark, LowLight)
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string][2]float64{
		"age":        {tr.Attributes.Age.Confidence, 0.45},
		"gender":     {tr.Attributes.Gender.Confidence, 0.6},
		"other":      {tr.Attributes.Other[0].Confidence, 0.3},
		"expression": {tr.Expression.Confidence, 0.675},
		"emotion":    {tr.Emotion.Confidence, 0.6},
		"mikels":     {tr.Emotion.Mikels.Confidence, 0.375},
	} {
		if !near(c[0], c[1], 1e-9) {
			t.Errorf("%s confidence %g in low light, want %g", name, c[0], c[1])
		}
	}
	if tr.Expression.Scores["happy"] != 0.9 || tr.Emotion.Mikels.Scores["amusement"] != 0.5 {
		t.Error("scores changed: they are measurements, only confidences are discounted")
	}
	want := "happy in 8 of 8 frames (p 0.90); low light (brightness 0.07 < 0.15): face confidences × 0.75"
	if !strings.Contains(tr.Emotion.Rationale, "low light (brightness 0.0") || !strings.HasSuffix(tr.Emotion.Rationale, "face confidences × 0.75") {
		t.Errorf("rationale %q, want like %q", tr.Emotion.Rationale, want)
	}
	if shared.Expression.Confidence != orig.Expression.Confidence || shared.Emotion.Mikels.Confidence != orig.Emotion.Mikels.Confidence ||
		shared.Attributes.Gender.Confidence != orig.Attributes.Gender.Confidence || shared.Attributes.Other[0].Confidence != orig.Attributes.Other[0].Confidence ||
		shared.Emotion.Rationale != orig.Emotion.Rationale {
		t.Error("Apply changed levels another tree shares")
	}

	// a tree without an emotion level still says why its levels are lowered
	tr = faceTree()
	tr.Emotion = nil
	Apply(tr, dark, LowLight)
	if tr.Emotion == nil || !strings.HasPrefix(tr.Emotion.Rationale, "low light") {
		t.Errorf("emotion %+v", tr.Emotion)
	}
	if err := tr.Validate(); err != nil {
		t.Fatal(err)
	}

	// a camera's own threshold decides: 0.4 makes a 0.3 scene dark, 0 none
	tr = faceTree()
	Apply(tr, tree.Scene{Brightness: 0.3, Frames: 8}, 0.4)
	if !tr.Scene.LowLight || tr.Expression.Confidence != 0.7875 || !strings.HasSuffix(tr.Emotion.Rationale, "low light (brightness 0.30 < 0.40): face confidences × 0.88") {
		t.Errorf("threshold 0.4: scene %+v, expression %g, rationale %q", tr.Scene, tr.Expression.Confidence, tr.Emotion.Rationale)
	}
	tr = faceTree()
	Apply(tr, dark, 0)
	if tr.Scene.LowLight || tr.Expression.Confidence != 0.9 {
		t.Errorf("threshold 0 (off): scene %+v, expression %g", tr.Scene, tr.Expression.Confidence)
	}
}

// The schema and docs/tree.md state the threshold the code uses.
func TestLowLightThresholdDocumented(t *testing.T) {
	for _, p := range []string{"engine/tree/tree.v1.schema.json", "docs/tree.md"} {
		b, err := os.ReadFile(testenv.Path(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "0.15") {
			t.Errorf("%s does not state the low-light threshold %g", p, LowLight)
		}
	}
}

// BenchmarkSample720p: one frame's cost (the pipeline samples 4 a second).
func BenchmarkSample720p(b *testing.B) {
	f := chart(0.8)
	g := newFrame(1280, 720, func(x, y int) (uint8, uint8, uint8) { return f.bgr[3*((y%600)*1200+x%1200)+2], uint8(x), uint8(y) })
	b.ResetTimer()
	for b.Loop() {
		a, _ := Sample(g.bgr, g.w, g.h, 3*g.w)
		_ = a.Scene()
	}
}

func BenchmarkSampleGrey720p(b *testing.B) {
	g := newFrame(1280, 720, func(x, y int) (uint8, uint8, uint8) { return 100, 100, 100 })
	b.ResetTimer()
	for b.Loop() {
		a, _ := Sample(g.bgr, g.w, g.h, 3*g.w)
		_ = a.Scene()
	}
}
