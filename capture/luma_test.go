package capture

import (
	"context"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"gocv.io/x/gocv"
)

// lumaClip encodes 1 s of ffmpeg's testsrc2 (colour bars, a moving
// gradient, text) at 1280×720 with args into t.TempDir().
func lumaClip(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-hide_banner", "-v", "error", "-f", "lavfi",
		"-i", "testsrc2=size=1280x720:rate=25", "-t", "1"}, args...), "-y", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (apt-get install ffmpeg) failed to make %s: %v\n%s", name, err, b)
	}
	return out
}

// bgrGrid is the grid a LumaGrid stands for, worked out from the BGR frame
// independently of avdec.cpp: the same sample positions (OpenCV's
// INTER_NEAREST_EXACT, 16.16 fixed point, as the motion grid's), each
// sample's BT.601 luma, the cell's mean.
func bgrGrid(t *testing.T, m gocv.Mat, w, h, taps int) []float64 {
	t.Helper()
	W, H := m.Cols(), m.Rows()
	pix, err := m.DataPtrUint8()
	if err != nil {
		t.Fatal(err)
	}
	pos := func(n, N int) []int {
		f := (int64(N)*65536 + int64(n)/2) / int64(n)
		out := make([]int, n)
		for i := range out {
			out[i] = int(min((f/2-1+int64(i)*f)>>16, int64(N-1)))
		}
		return out
	}
	xs, ys := pos(w*taps, W), pos(h*taps, H)
	g := make([]float64, w*h)
	for cy := range h {
		for cx := range w {
			var s float64
			for j := range taps {
				for i := range taps {
					p := pix[(ys[cy*taps+j]*W+xs[cx*taps+i])*3:]
					s += 0.114*float64(p[0]) + 0.587*float64(p[1]) + 0.299*float64(p[2])
				}
			}
			g[cy*w+cx] = s / float64(taps*taps)
		}
	}
	return g
}

// A file decoded by FFmpeg's libraries brings each frame's motion grid
// made from the luma plane, and it is the BGR frame's luma at the same
// samples: limited-range H.264 stretched to full range, full-range MJPEG
// as it is. Where the luma plane is not the picture (a stream turned by
// its display matrix) or there is no YUV (grey), frames come without one.
func TestLumaGridMatchesBGR(t *testing.T) {
	defer leakCheck(t)()
	h264 := lumaClip(t, "h264.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p")
	for _, c := range []struct {
		name, clip string
		grid       bool
	}{
		{"h264 limited range", h264, true},
		{"mjpeg full range", lumaClip(t, "mjpeg.avi", "-c:v", "mjpeg", "-pix_fmt", "yuvj420p", "-q:v", "3"), true},
		{"h264 rotated 90", rotate(t, h264, "90"), false},
		{"ffv1 grey", lumaClip(t, "grey.mkv", "-c:v", "ffv1", "-pix_fmt", "gray"), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec := GridSpec{Cells: 80, Taps: 4}
			src, err := Open(context.Background(), Config{Source: c.clip, LumaGrid: spec}, quietLog())
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			var frames, worst, over2 int
			var sum, largest float64
			collect(t, src, func(f *Frame) {
				frames++
				if !c.grid {
					if !f.Luma.Empty() {
						t.Errorf("frame %d: a %dx%d grid, want none", f.Seq, f.Luma.W, f.Luma.H)
					}
					return
				}
				if f.Luma.W != 80 || f.Luma.H != 45 {
					t.Fatalf("frame %d: grid %dx%d, want 80x45", f.Seq, f.Luma.W, f.Luma.H)
				}
				want := bgrGrid(t, f.Mat, 80, 45, spec.Taps)
				for i, v := range want {
					d := math.Abs(float64(f.Luma.Pix[i]) - v)
					sum += d
					if d > 2 {
						over2++
					}
					if d > largest {
						largest, worst = d, i
					}
				}
			})
			if frames < 20 {
				t.Fatalf("%d frames, want 25", frames)
			}
			if !c.grid {
				return
			}
			mean := sum / float64(frames*80*45)
			far := float64(over2) / float64(frames*80*45)
			t.Logf("%d frames: |grid − BGR luma| mean %.3f, over 2 in %.2f%% of cells, largest %.2f (cell %d)", frames, mean, 100*far, largest, worst)
			// The colour conversion rounds each channel where the grid does
			// not, and clips saturated colours (testsrc2's bars: the
			// largest differences) that luma holds.
			if mean > 1 || far > 0.02 || largest > 12 {
				t.Errorf("grid differs from the BGR frame's luma by %.3f on average, by over 2 in %.2f%% of cells, %.2f at most; want ≤ 1, ≤ 2%%, ≤ 12", mean, 100*far, largest)
			}
		})
	}
}

// Without Config.LumaGrid no grid is made.
func TestLumaGridOnlyWhenAsked(t *testing.T) {
	defer leakCheck(t)()
	src, err := Open(context.Background(), Config{Source: lumaClip(t, "h264.mp4", "-c:v", "libx264")}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	n := 0
	collect(t, src, func(f *Frame) {
		n++
		if !f.Luma.Empty() {
			t.Errorf("frame %d has a grid nobody asked for", f.Seq)
		}
	})
	if n == 0 {
		t.Fatal("no frames")
	}
}
