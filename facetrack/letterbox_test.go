package facetrack

import (
	"image"
	"testing"

	"gocv.io/x/gocv"
)

// byteModel takes bytes only: the two-pass path (letterbox to RGB bytes,
// then bytes to floats), as before BlazeFaceFiller.
type byteModel struct{ size int }

func (m byteModel) InputSize() (w, h int) { return m.size, m.size }
func (m byteModel) Infer(rgb []byte) ([]float32, []float32, error) {
	return nil, nil, nil
}

func letterboxFrame(tb testing.TB) (*BlazeFace, gocv.Mat) {
	tb.Helper()
	b, err := NewBlazeFace(byteModel{256}, BlazeFaceConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return b, noiseFrame(1280, 720)
}

// The one-pass letterbox writes exactly what the two passes did.
func TestLetterboxIntoMatchesTwoPasses(t *testing.T) {
	b, frame := letterboxFrame(t)
	defer b.Close()
	defer frame.Close()
	const k, bias = 2.0 / 255, -1
	dst := make([]float32, 256*256*3)
	lb1, err := b.letterboxInto(b.inputs[0], frame, dst, k, bias, 0)
	if err != nil {
		t.Fatal(err)
	}
	lb2, err := b.letterbox(b.inputs[0], frame, 0)
	if err != nil {
		t.Fatal(err)
	}
	if lb1 != lb2 {
		t.Fatalf("mappings differ: %+v vs %+v", lb1, lb2)
	}
	for i, v := range b.inputs[0].rgb {
		if want := float32(v)*k + bias; dst[i] != want {
			t.Fatalf("value %d: %v, two passes give %v", i, dst[i], want)
		}
	}
}

// Into the buffer it wrote last, the letterbox writes only the padding that
// was picture before: through a run of full frames, regions of several
// sizes and shrink factors, a frame of another shape, a new bias and a
// buffer someone else scribbled on, each input equals one made into a
// fresh buffer.
func TestLetterboxIntoRepadsOnlyWhatChanged(t *testing.T) {
	b, frame := letterboxFrame(t)
	defer b.Close()
	defer frame.Close()
	ref, err := NewBlazeFace(byteModel{256}, BlazeFaceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	portrait := noiseFrame(360, 640)
	defer portrait.Close()
	region := func(w, h int) gocv.Mat { return frame.Region(image.Rect(100, 50, 100+w, 50+h)) }
	r1, r2, r3 := region(400, 400), region(300, 200), region(720, 510)
	defer r1.Close()
	defer r2.Close()
	defer r3.Close()
	dst := make([]float32, 256*256*3)
	steps := []struct {
		name   string
		src    gocv.Mat
		bias   float32
		shrink int
		before func()
	}{
		{"full frame", frame, -1, 0, nil},
		{"full frame again", frame, -1, 0, nil},
		{"region 400 by 2", r1, -1, 2, nil},
		{"region 300x200 by 2", r2, -1, 2, nil},
		{"region 720x510 by 3", r3, -1, 3, nil},
		{"portrait frame", portrait, -1, 0, nil},
		{"full frame", frame, -1, 0, nil},
		{"full frame, bias 0", frame, 0, 0, nil},
		{"region, buffer scribbled on", r1, 0, 2, func() {
			for i := range dst {
				dst[i] = 7
			}
		}},
		{"full frame", frame, 0, 0, nil},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		if _, err := b.letterboxInto(b.inputs[0], st.src, dst, 2.0/255, st.bias, st.shrink); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		want := make([]float32, len(dst))
		if _, err := ref.letterboxInto(ref.inputs[0], st.src, want, 2.0/255, st.bias, st.shrink); err != nil {
			t.Fatalf("%s, fresh buffer: %v", st.name, err)
		}
		for i := range want {
			if dst[i] != want[i] {
				t.Fatalf("%s: value %d (pixel %d, %d) is %v, a fresh buffer has %v", st.name, i, i/3%256, i/3/256, dst[i], want[i])
			}
		}
	}
}

// go test -tags matprofile -run '^$' -bench Letterbox -benchmem ./facetrack/
// One pass (resize, then RGB·k+bias straight into the input tensor)
// against two (RGB bytes, then bytes to floats); allocs/op must be 0.
func BenchmarkLetterboxOnePass(b *testing.B) {
	bf, frame := letterboxFrame(b)
	defer bf.Close()
	defer frame.Close()
	dst := make([]float32, 256*256*3)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := bf.letterboxInto(bf.inputs[0], frame, dst, 2.0/255, -1, 0); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLetterboxTwoPasses(b *testing.B) {
	bf, frame := letterboxFrame(b)
	defer bf.Close()
	defer frame.Close()
	dst := make([]float32, 256*256*3)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := bf.letterbox(bf.inputs[0], frame, 0); err != nil {
			b.Fatal(err)
		}
		for i, v := range bf.inputs[0].rgb {
			dst[i] = float32(v)*(2.0/255) - 1
		}
	}
}

// captureModel takes bytes and keeps the last input; it finds nothing.
type captureModel struct {
	size, anchors int
	w, h          int // a non-square input; size is then unused
	rgb           []byte
}

func (m *captureModel) InputSize() (w, h int) {
	if m.w != 0 {
		return m.w, m.h
	}
	return m.size, m.size
}
func (m *captureModel) Infer(rgb []byte) ([]float32, []float32, error) {
	m.rgb = append(m.rgb[:0], rgb...)
	logits := make([]float32, m.anchors)
	for i := range logits {
		logits[i] = -100
	}
	return logits, make([]float32, 16*m.anchors), nil
}

// regionFactor shrinks by a whole factor where that scales the region
// within a quarter of fitting it to the input, and fits it otherwise.
func TestRegionFactor(t *testing.T) {
	for _, c := range []struct{ w, h, want int }{
		{100, 100, 0}, // smaller than the input: fitted (grown)
		{128, 128, 0},
		{180, 150, 0}, // 2× would make it 90 px, under ¾ of 128
		{200, 150, 2}, // 100 px
		{240, 240, 2},
		{256, 100, 2},
		{300, 300, 3},
		{390, 390, 4}, // 97 px of 128
		{370, 300, 3}, // 123 px
		{520, 520, 5}, // 104 px: 4× would not fit the input
		{260, 260, 0}, // 3× is 86 px: fitted
		{737, 720, 6},
		{1280, 720, 10},
	} {
		got := regionFactor(c.w, c.h, 128)
		if got != c.want {
			t.Errorf("regionFactor(%d, %d, 128) = %d, want %d", c.w, c.h, got, c.want)
		}
	}
}

// A region shrunk by a whole factor is trimmed, centred, to multiples of
// it and each input pixel is the mean of its block (RGB), centred in the
// input with black around it.
func TestDetectRegionsShrinksByAWholeFactor(t *testing.T) {
	m := &captureModel{size: 128}
	b, err := NewBlazeFace(m, BlazeFaceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	m.anchors = len(b.inputs[0].anchors)
	frame := noiseFrame(1280, 720)
	defer frame.Close()
	// 390×390 at (301, 97): factor 4, trimmed to 388 from (302, 98); 97 px
	// in the input from (15, 15).
	if _, err := b.DetectRegions(frame, []Rect{{X: 301, Y: 97, W: 390, H: 390}}); err != nil {
		t.Fatal(err)
	}
	if len(m.rgb) != 128*128*3 {
		t.Fatalf("input of %d bytes", len(m.rgb))
	}
	const k, x0, y0, n, off = 4, 302, 98, 97, 15
	for y := range 128 {
		for x := range 128 {
			for c := range 3 {
				got := int(m.rgb[(y*128+x)*3+c])
				want := 0
				if x >= off && x < off+n && y >= off && y < off+n {
					sum := 0
					for j := range k {
						for i := range k {
							sum += int(frame.GetVecbAt(y0+(y-off)*k+j, x0+(x-off)*k+i)[2-c]) // BGR to RGB
						}
					}
					want = (sum + k*k/2) / (k * k)
					if sum%(k*k) == k*k/2 && want%2 == 1 { // a tie rounds to even
						want--
					}
				}
				if got != want {
					t.Fatalf("input (%d, %d) channel %d: %d, want %d", x, y, c, got, want)
				}
			}
		}
	}
}

// Each frame goes to the smallest input that holds it at the square's
// scale: 16:9 and 16:10 to 256×160, portrait to 160×256, the rest (4:3,
// square) to the square.
func TestInputForPicksTheSmallestThatHolds(t *testing.T) {
	b, err := NewBlazeFace(&captureModel{size: 256}, BlazeFaceConfig{}, &captureModel{w: 256, h: 160}, &captureModel{w: 160, h: 256})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, c := range []struct{ W, H, w, h int }{
		{1280, 720, 256, 160},
		{1920, 1080, 256, 160},
		{1920, 1200, 256, 160}, // 16:10: exactly 160 rows
		{2560, 1080, 256, 160},
		{640, 480, 256, 256}, // 4:3: 192 rows, more than the wide input holds
		{720, 528, 256, 256},
		{1000, 1000, 256, 256},
		{720, 1280, 160, 256},
	} {
		in := b.inputFor(c.W, c.H)
		if in.w != c.w || in.h != c.h {
			t.Errorf("a %dx%d frame goes to %dx%d, want %dx%d", c.W, c.H, in.w, in.h, c.w, c.h)
		}
	}
	for _, bad := range []*captureModel{{w: 256, h: 100}, {w: 128, h: 128}, {w: 512, h: 256}} {
		if _, err := NewBlazeFace(&captureModel{size: 256}, BlazeFaceConfig{}, bad); err == nil {
			t.Errorf("a %dx%d shape beside a 256 square was accepted", bad.w, bad.h)
		}
	}
}

// The wide input holds the very picture the square does, centred between
// 8 rows of black instead of 56.
func TestWideInputIsTheSquaresPicture(t *testing.T) {
	sqModel, wideModel := &captureModel{size: 256, anchors: 896}, &captureModel{w: 256, h: 160, anchors: 560}
	sq, err := NewBlazeFace(sqModel, BlazeFaceConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer sq.Close()
	shaped, err := NewBlazeFace(&captureModel{size: 256, anchors: 896}, BlazeFaceConfig{}, wideModel)
	if err != nil {
		t.Fatal(err)
	}
	defer shaped.Close()
	if n := len(shaped.inputs[1].anchors); n != 560 {
		t.Fatalf("256x160 has %d anchors, want 16·10·2 + 8·5·6 = 560", n)
	}
	frame := noiseFrame(1280, 720)
	defer frame.Close()
	if _, err := sq.Detect(frame); err != nil {
		t.Fatal(err)
	}
	if _, err := shaped.Detect(frame); err != nil {
		t.Fatal(err)
	}
	if len(wideModel.rgb) != 256*160*3 {
		t.Fatalf("the wide model got %d bytes, want 256x160x3", len(wideModel.rgb))
	}
	const row = 256 * 3
	for y := range 160 {
		got := wideModel.rgb[y*row : (y+1)*row]
		if y < 8 || y >= 152 {
			for _, v := range got {
				if v != 0 {
					t.Fatalf("wide row %d is not black padding", y)
				}
			}
			continue
		}
		if want := sqModel.rgb[(y+48)*row : (y+49)*row]; string(got) != string(want) {
			t.Fatalf("wide row %d differs from the square's row %d", y, y+48)
		}
	}
}
