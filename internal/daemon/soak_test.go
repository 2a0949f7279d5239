package daemon

import (
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"
)

// memSample is the process's memory at one instant of the run.
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
	const loops = 13
	// Ten samples a loop: what is in flight at one instant (queued frames
	// and windows, an MQTT burst, the engine's cached tensors for the last
	// batch sizes) swings the heap by about 20 MB, so loops are judged by
	// their floor, the least heap any of their samples saw: in-flight data
	// only ever adds to it, a leak lifts it.
	const perLoop = 10
	var samples []memSample
	deadline := time.Now().Add(5 * time.Minute)
	for next := 1; next <= loops*perLoop; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d loops in 5 minutes", (next-1)/perLoop, loops)
		}
		cams := r.d.Snapshot().Cameras
		if len(cams) == 0 || cams[0].Frames < uint64(next*loopFrames/perLoop) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		runtime.GC()
		runtime.GC() // the second empties sync.Pool victims
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		samples = append(samples, memSample{loop: (next-1)/perLoop + 1, frames: cams[0].Frames, heap: ms.HeapInuse, rss: rssBytes(t), mats: testenv.MatCount(t)})
		next++
	}
	mb := func(b uint64) float64 { return float64(b) / (1 << 20) }
	// heap over loops [from, to]: the floor and the peak
	heap := func(from, to int) (lo, hi uint64) {
		lo = math.MaxUint64
		for _, s := range samples {
			if s.loop >= from && s.loop <= to {
				lo, hi = min(lo, s.heap), max(hi, s.heap)
			}
		}
		return lo, hi
	}
	for l := 1; l <= loops; l++ {
		last := samples[l*perLoop-1]
		lo, hi := heap(l, l)
		t.Logf("loop %d (%d frames): heap %.1f–%.1f MB, rss %.1f MB, %d Mats", l, last.frames, mb(lo), mb(hi), mb(last.rss), last.mats)
	}
	// A leak grows with the loops; bounded buffers fill over the first
	// loops: so compare the floor of loops 3-5 with that of the last three
	// (30 samples each). The floor itself steps by up to ~20 MB for seconds
	// at a time: each face model keeps its input and output tensors for the
	// last 4 batch sizes (engine.FaceModel), Go memory, and which sizes
	// those are follows how many crops happened to queue up. So the bound is
	// 24 MB, over 8 loops (2160 frames) apart: a leak of 12 KB per frame
	// (~25 MB) fails.
	early, _ := heap(3, 5)
	late, _ := heap(loops-2, loops)
	if late > early+24<<20 {
		t.Errorf("Go heap floor grew from %.1f MB (loops 3-5) to %.1f MB (loops %d-%d)", mb(early), mb(late), loops-2, loops)
	}
	// Resident memory is logged, not bounded: it steps up once (~240 MB
	// here) at a loop that varies from run to run and then stays, the
	// high-water mark of native allocators (ONNX Runtime's arena sized by
	// the largest batch of crops, malloc's per-thread arenas), not a trend.
	// Native Mats are counted.
	maxMats := 0
	for _, s := range samples[perLoop:] {
		maxMats = max(maxMats, s.mats)
	}
	if first := samples[2*perLoop-1].mats; maxMats > first+16 {
		t.Errorf("live Mats grew from %d (end of loop 2) to %d", first, maxMats)
	}
	if last := samples[len(samples)-1]; last.frames < loops*loopFrames {
		t.Fatalf("frames %d after %d loops", last.frames, loops)
	}
}
