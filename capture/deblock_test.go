package capture

import (
	"math"
	"strings"
	"testing"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine/registry"
)

// decodeFrames decodes every frame of clip with deblock.
func decodeFrames(t *testing.T, clip, deblock string) []gocv.Mat {
	t.Helper()
	av, err := openAvCapture(clip, avOptions{threads: 1, deblock: deblock})
	if err != nil {
		t.Fatal(err)
	}
	defer av.Close()
	var out []gocv.Mat
	for {
		m := gocv.NewMat()
		if !av.Read(&m) {
			m.Close()
			return out
		}
		out = append(out, m)
	}
}

// psnr is the peak signal-to-noise ratio of b against a, in dB (+Inf when
// equal).
func psnr(a, b gocv.Mat) float64 {
	l2 := gocv.NormWithMats(a, b, gocv.NormL2)
	mse := l2 * l2 / float64(a.Total()*a.Channels())
	return 10 * math.Log10(255*255/mse)
}

// Deblocking: "reference" leaves the loop filter on the frames others are
// predicted from, so those come out exactly as "all" (the encoder's own
// picture) gives them and a skipped frame's error never carries into a
// later one; only frames nothing refers to differ, and little. "none"
// differs on every frame the filter touched, and its error carries on.
// Codecs with no loop filter come out the same whatever is asked.
func TestDeblocking(t *testing.T) {
	defer leakCheck(t)()
	// A lossy encode, so the filter has blocking to smooth.
	h264 := encode(t, "h264.mp4", "-c:v", "libx264", "-bf", "3", "-crf", "32", "-pix_fmt", "yuv420p")
	closeAll := func(ms []gocv.Mat) {
		for _, m := range ms {
			m.Close()
		}
	}
	all := decodeFrames(t, h264, registry.DeblockAll)
	defer closeAll(all)
	if len(all) < 40 {
		t.Fatalf("only %d frames of a 2 s clip at 25 fps", len(all))
	}
	type result struct {
		same, sameAfter, firstDiffer int // sameAfter: as all's, after one that was not
		minPSNR                      float64
	}
	compare := func(deblock string) result {
		got := decodeFrames(t, h264, deblock)
		defer closeAll(got)
		if len(got) != len(all) {
			t.Fatalf("%s: %d frames, all: %d", deblock, len(got), len(all))
		}
		r := result{firstDiffer: -1, minPSNR: math.Inf(1)}
		for i := range all {
			if maxAbsDiff(all[i], got[i]) == 0 {
				r.same++
				if r.firstDiffer >= 0 {
					r.sameAfter++
				}
				continue
			}
			if r.firstDiffer < 0 {
				r.firstDiffer = i
			}
			r.minPSNR = min(r.minPSNR, psnr(all[i], got[i]))
		}
		t.Logf("%s: %d of %d frames as all's, the others at PSNR >= %.1f dB (first differing: %d)", deblock, r.same, len(all), r.minPSNR, r.firstDiffer)
		return r
	}
	ref := compare(registry.DeblockReference)
	none := compare(registry.DeblockNone)
	if ref.firstDiffer < 0 {
		t.Fatal("reference: every frame as all's: the loop filter was not skipped on any frame (B-frames were asked for)")
	}
	if ref.same < len(all)/5 {
		t.Errorf("reference: only %d of %d frames as all's: the frames others are predicted from must keep the filter", ref.same, len(all))
	}
	// Frames after a skipped one come out exact again: nothing carried over.
	if ref.sameAfter == 0 {
		t.Error("reference: no frame after the first skipped one comes out as all's: its error carried over")
	}
	if ref.minPSNR < 30 {
		t.Errorf("reference: a frame at %.1f dB PSNR of all's; want >= 30", ref.minPSNR)
	}
	if none.same >= ref.same || none.minPSNR > ref.minPSNR {
		t.Errorf("none: %d frames as all's (min PSNR %.1f), reference %d (%.1f): none must skip more", none.same, none.minPSNR, ref.same, ref.minPSNR)
	}
	// MJPEG has no loop filter: every option gives the same frames.
	mjpeg := encode(t, "mjpeg.avi", "-c:v", "mjpeg", "-q:v", "8")
	a := decodeFrames(t, mjpeg, registry.DeblockAll)
	defer closeAll(a)
	n := decodeFrames(t, mjpeg, registry.DeblockNone)
	defer closeAll(n)
	for i := range a {
		if i >= len(n) || maxAbsDiff(a[i], n[i]) != 0 {
			t.Fatalf("mjpeg frame %d differs with deblock none", i)
		}
	}
}

// An unknown deblocking name is refused, naming the choices.
func TestDeblockUnknownIsRefused(t *testing.T) {
	_, err := Config{Source: "x.mp4", Deblock: "some"}.withDefaults()
	if err == nil {
		t.Fatal("deblock \"some\" accepted")
	}
	for _, n := range registry.Deblocking.Names() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error %q does not name %q", err, n)
		}
	}
}
