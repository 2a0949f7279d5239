package capture

import (
	"math"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine/registry"
)

// encode makes a 2 s clip of ffmpeg's testsrc at 25 fps with args (codec,
// container options) into t.TempDir()/name.
func encode(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-hide_banner", "-v", "error", "-f", "lavfi",
		"-i", "testsrc=size=192x108:rate=25", "-t", "2"}, args...), "-y", out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (apt-get install ffmpeg) failed to make %s: %v\n%s", name, err, b)
	}
	return out
}

// rotate rewrites clip with a display matrix turning it by deg, as phones
// record portrait video.
func rotate(t *testing.T, clip string, deg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "rotated"+deg+".mp4")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-v", "error", "-i", clip, "-c", "copy",
		"-metadata:s:v:0", "rotate="+deg, "-y", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg failed to rotate %s: %v\n%s", clip, err, b)
	}
	return out
}

// The decoder edgemo runs for files gives what OpenCV's FFmpeg backend
// gives, frame for frame: the same pixels, timestamps, rate, count and
// size, on an old codec, on H.264 with B-frames (frames out of decode
// order), and on a stream stored turned, which both turn upright. One
// decoder thread or several changes nothing but the threads.
func TestAvCaptureMatchesOpenCV(t *testing.T) {
	defer leakCheck(t)()
	h264 := encode(t, "h264.mp4", "-c:v", "libx264", "-bf", "2", "-pix_fmt", "yuv420p")
	clips := map[string]string{
		"mpeg4 avi":        synthClip(t, 25, 2),
		"h264 b-frames":    h264,
		"h264 rotated 90":  rotate(t, h264, "90"),
		"mjpeg full-range": encode(t, "mjpeg.avi", "-c:v", "mjpeg", "-pix_fmt", "yuvj422p", "-q:v", "4"),
	}
	for name, clip := range clips {
		for _, threads := range []int{1, 2} {
			t.Run(name+"/threads"+strconv.Itoa(threads), func(t *testing.T) {
				compareWithOpenCV(t, clip, threads)
			})
		}
	}
}

func compareWithOpenCV(t *testing.T, clip string, threads int) {
	cv, err := gocv.VideoCaptureFileWithAPI(clip, gocv.VideoCaptureFFmpeg)
	if err != nil || !cv.IsOpened() {
		t.Fatalf("OpenCV cannot open %s: %v", clip, err)
	}
	defer cv.Close()
	av, err := openAvCapture(clip, avOptions{threads: threads, deblock: registry.DeblockAll})
	if err != nil {
		t.Fatal(err)
	}
	defer av.Close()
	// Codecs without frame or slice threads (MJPEG) run one whatever is asked.
	if got := av.Threads(); got != threads && (got != 1 || !strings.Contains(clip, "mjpeg")) {
		t.Errorf("decoder runs %d threads, asked for %d", got, threads)
	}
	for _, p := range []gocv.VideoCaptureProperties{gocv.VideoCaptureFPS, gocv.VideoCaptureFrameCount,
		gocv.VideoCaptureFrameWidth, gocv.VideoCaptureFrameHeight} {
		if a, o := av.Get(p), cv.Get(p); math.Abs(a-o) > 1e-6 {
			t.Errorf("property %d: %v, OpenCV %v", p, a, o)
		}
	}
	a, o := gocv.NewMat(), gocv.NewMat()
	defer a.Close()
	defer o.Close()
	n := 0
	for {
		okA, okO := av.Read(&a), cv.Read(&o)
		if okA != okO {
			t.Fatalf("frame %d: decoded %v, OpenCV %v", n, okA, okO)
		}
		if !okA {
			break
		}
		if a.Cols() != o.Cols() || a.Rows() != o.Rows() || a.Type() != o.Type() {
			t.Fatalf("frame %d: %dx%d %v, OpenCV %dx%d %v", n, a.Cols(), a.Rows(), a.Type(), o.Cols(), o.Rows(), o.Type())
		}
		if strings.Contains(clip, "rotated") && a.Cols() != 108 {
			t.Fatalf("frame %d of a 192x108 stream stored turned by 90° is %dx%d, not upright", n, a.Cols(), a.Rows())
		}
		if d := maxAbsDiff(a, o); d != 0 {
			t.Fatalf("frame %d differs from OpenCV's by up to %v grey levels", n, d)
		}
		// OpenCV answers 0 for the frames a B-frame decoder gives after the
		// file's end (the flush); every frame here is 40 ms after the last.
		pa, po := av.Get(gocv.VideoCapturePosMsec), cv.Get(gocv.VideoCapturePosMsec)
		if (po != 0 || n == 0) && math.Abs(pa-po) > 0.5 {
			t.Errorf("frame %d: at %v ms, OpenCV %v ms", n, pa, po)
		}
		if math.Abs(pa-float64(40*n)) > 0.5 {
			t.Errorf("frame %d: at %v ms, want %d", n, pa, 40*n)
		}
		n++
	}
	if n < 40 {
		t.Fatalf("only %d frames of a 2 s clip at 25 fps", n)
	}
}

func maxAbsDiff(a, b gocv.Mat) float64 {
	d := gocv.NewMat()
	defer d.Close()
	gocv.AbsDiff(a, b, &d)
	flat := d.Reshape(1, 0)
	defer flat.Close()
	_, hi, _, _ := gocv.MinMaxLoc(flat)
	return float64(hi)
}

// DecodeThreads shares the cores out among the cameras: never none, and
// one each once there are as many cameras as cores.
func TestDecodeThreads(t *testing.T) {
	cpus := runtime.NumCPU()
	for _, c := range []struct{ cams, want int }{
		{0, cpus}, {1, cpus}, {cpus, 1}, {4 * cpus, 1}, {2, max(1, cpus/2)},
	} {
		if got := DecodeThreads(c.cams); got != c.want {
			t.Errorf("DecodeThreads(%d) on %d CPUs = %d, want %d", c.cams, cpus, got, c.want)
		}
	}
}

// A single decoder thread starts no frame threads: the decode runs on the
// reading thread alone, which is what DecodeThreads(cameras ≥ cores) buys.
func TestAvCaptureOneThreadStartsNone(t *testing.T) {
	defer leakCheck(t)()
	var d decodeMeter
	vc, err := d.open(func() (videoCapture, error) { return openAvCapture(synthClip(t, 25, 1), avOptions{threads: 1}) })
	if err != nil {
		t.Fatal(err)
	}
	m := gocv.NewMat()
	defer m.Close()
	for vc.Read(&m) {
	}
	d.mu.Lock()
	tag := d.tags[0]
	d.mu.Unlock()
	if _, n := threadsCPU(tag); n != 0 {
		t.Errorf("%d decoder threads running for a one-thread decoder", n)
	}
	if err := vc.Close(); err != nil {
		t.Fatal(err)
	}
	if cpu := d.CPU(); cpu <= 0 {
		t.Errorf("decode CPU %v: the reads were not metered", cpu)
	}
}
