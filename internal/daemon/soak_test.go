package daemon

import (
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"
)

// memSample is the process's memory at one loop boundary.
type memSample struct {
	loop   int
	frames uint64
	heap   uint64 // Go heap in use after a GC
	rss    uint64 // resident set: Go, OpenCV, ONNX Runtime together
	mats   int    // live gocv Mats
}

func rssBytes(t *testing.T) uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * uint64(os.Getpagesize())
}

// A long run keeps memory flat: the daemon loops the sample video as fast
// as it decodes (every stage, the embedded broker and the WebRTC sink live),
// and from the second loop on neither the Go heap nor the number of live
// Mats grows with the loops.
func TestLongRunMemoryIsFlat(t *testing.T) {
	cfg := daemonConfig(t, "  embedded: {listen: "+freeAddr(t)+"}", `  sample:
    source: deps/media/Megamind.avi
    loop: true
    realtime: false
`)
	r, _ := start(t, cfg)
	const loopFrames = 270 // Megamind.avi
	const loops = 9
	var samples []memSample
	deadline := time.Now().Add(5 * time.Minute)
	for next := 1; next <= loops; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d loops in 5 minutes", next-1, loops)
		}
		cams := r.d.Snapshot().Cameras
		if len(cams) == 0 || cams[0].Frames < uint64(next*loopFrames) {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		runtime.GC()
		runtime.GC() // the second empties sync.Pool victims
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, memSample{loop: next, frames: cams[0].Frames, heap: ms.HeapInuse, rss: rssBytes(t), mats: testenv.MatCount(t)})
		next++
	}
	mb := func(b uint64) float64 { return float64(b) / (1 << 20) }
	for _, s := range samples {
		t.Logf("loop %d (%d frames): heap %.1f MB, rss %.1f MB, %d Mats", s.loop, s.frames, mb(s.heap), mb(s.rss), s.mats)
	}
	// A leak grows with the loops; what is in flight at a sample (queued
	// windows, an MQTT burst) comes and goes and bounded buffers fill over
	// the first loops: so compare medians of three, loops 3-5 against 7-9.
	// A leak of 16 KB per frame moves them ~17 MB apart; a sample alone
	// was seen ~10 MB off the others.
	median := func(ss []memSample) uint64 {
		h := []uint64{ss[0].heap, ss[1].heap, ss[2].heap}
		slices.Sort(h)
		return h[1]
	}
	early, late := median(samples[2:5]), median(samples[len(samples)-3:])
	if late > early+4<<20 {
		t.Errorf("Go heap grew from %.1f MB (median of loops 3-5) to %.1f MB (median of loops %d-%d)", mb(early), mb(late), loops-2, loops)
	}
	// Resident memory is logged, not bounded: it steps up once (~240 MB
	// here) at a loop that varies from run to run and then stays, the
	// high-water mark of native allocators (ONNX Runtime's arena sized by
	// the largest batch of crops, malloc's per-thread arenas), not a trend.
	// Native Mats are counted.
	maxMats := 0
	for _, s := range samples[1:] {
		maxMats = max(maxMats, s.mats)
	}
	if maxMats > samples[1].mats+16 {
		t.Errorf("live Mats grew from %d (loop 2) to %d", samples[1].mats, maxMats)
	}
	if last := samples[len(samples)-1]; last.frames < loops*loopFrames {
		t.Fatalf("frames %d after %d loops", last.frames, loops)
	}
}
