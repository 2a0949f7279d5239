package window

import (
	"testing"
	"time"

	"github.com/edgemo/edgemo/facetrack"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

func crop(n int) facetrack.Crop { return facetrack.Crop{W: n, H: 1, Pix: make([]byte, n*3)} }

// feed offers one frame of trackID at 25 fps frame index i, as the pipeline
// does, and returns the window it completed, if any.
func feed(b *Buffers, id, i int, size int) (Window, bool) {
	at := t0.Add(time.Duration(i) * 40 * time.Millisecond)
	if !b.Observe(id, at) {
		return Window{}, false
	}
	return b.Add(id, Sample{FrameSeq: uint64(i), Time: at, Crop: crop(size)})
}

func TestSamplingRateAndSlidingWindows(t *testing.T) {
	b, err := New("cam", Config{FPS: 5, Length: 10, Stride: 5})
	if err != nil {
		t.Fatal(err)
	}
	var wins []Window
	for i := 0; i < 250; i++ { // 10 s at 25 fps → 50 samples at 5 fps
		if w, ok := feed(b, 1, i, 4); ok {
			wins = append(wins, w)
		}
	}
	if got := b.Stats().Samples; got != 50 {
		t.Fatalf("kept %d samples over 10 s at 5 fps, want 50", got)
	}
	// First window after 10 samples, then one every 5: 10,15,...,50 → 9.
	if len(wins) != 9 {
		t.Fatalf("got %d windows, want 9", len(wins))
	}
	for k, w := range wins {
		if w.Seq != uint64(k) || len(w.Samples) != 10 || w.Camera != "cam" || w.TrackID != 1 {
			t.Fatalf("window %d: seq %d, %d samples", k, w.Seq, len(w.Samples))
		}
		// Stride: each window starts 5 samples (1 s) after the previous one.
		if want := t0.Add(time.Duration(k) * time.Second); !w.Start.Equal(want) {
			t.Fatalf("window %d starts %v, want %v", k, w.Start, want)
		}
		if got := w.End.Sub(w.Start); got != 1800*time.Millisecond {
			t.Fatalf("window %d spans %v, want 1.8s", k, got)
		}
		for j := 1; j < len(w.Samples); j++ {
			if w.Samples[j].FrameSeq <= w.Samples[j-1].FrameSeq {
				t.Fatal("samples out of order")
			}
		}
	}
	// The last window closes on the 50th sample, at 9.8 s = frame 245.
	if wins[8].FramesSeen != 246 {
		t.Fatalf("frames seen %d, want 246", wins[8].FramesSeen)
	}
}

func TestWindowsAreImmutable(t *testing.T) {
	b, _ := New("cam", Config{FPS: 25, Length: 4, Stride: 1})
	var first Window
	for i := 0; i < 4; i++ {
		first, _ = feed(b, 1, i, 2)
	}
	before := []uint64{first.Samples[0].FrameSeq, first.Samples[3].FrameSeq}
	for i := 4; i < 40; i++ {
		feed(b, 1, i, 2)
	}
	if first.Samples[0].FrameSeq != before[0] || first.Samples[3].FrameSeq != before[1] {
		t.Fatalf("an emitted window changed after later samples: %v", first.Samples)
	}
}

func TestEndReleasesAndFlushesTail(t *testing.T) {
	b, _ := New("cam", Config{FPS: 25, Length: 16, MinLength: 6})
	for i := 0; i < 10; i++ {
		if _, ok := feed(b, 7, i, 100); ok {
			t.Fatal("window before Length samples")
		}
	}
	if b.Stats().Bytes != 10*300 {
		t.Fatalf("holding %d bytes", b.Stats().Bytes)
	}
	w, ok := b.End(7)
	if !ok || len(w.Samples) != 10 {
		t.Fatalf("tail window: ok=%v samples=%d, want 10", ok, len(w.Samples))
	}
	if s := b.Stats(); s.Bytes != 0 || s.Tracks != 0 {
		t.Fatalf("ended track still held: %+v", s)
	}
	// Too short for a tail window: released, nothing emitted.
	for i := 0; i < 3; i++ {
		feed(b, 8, i, 1)
	}
	if _, ok := b.End(8); ok {
		t.Fatal("tail window shorter than MinLength")
	}
}

// A window's LastSeen is the track's latest sighting when it was emitted:
// its End for a window a sample completed, the last Observe for the final
// window of an ended track, whose last frames gave no sample.
func TestLastSeenAtEmission(t *testing.T) {
	b, _ := New("cam", Config{FPS: 5, Length: 2, Stride: 2, MinLength: 1})
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * 40 * time.Millisecond) }
	var first Window
	for i := 0; i <= 7; i++ { // samples at frames 0 and 5: a window at 5
		if w, ok := feed(b, 1, i, 1); ok {
			first = w
		}
	}
	if !first.End.Equal(at(5)) || !first.LastSeen.Equal(at(5)) {
		t.Fatalf("window at frame 5: end %v last seen %v, want both %v", first.End, first.LastSeen, at(5))
	}
	for i := 10; i <= 12; i++ { // a sample at 10, sightings to 12
		if _, ok := feed(b, 1, i, 1); ok {
			t.Fatal("a window before Stride samples")
		}
	}
	last, ok := b.End(1)
	if !ok || !last.End.Equal(at(10)) || !last.LastSeen.Equal(at(12)) {
		t.Fatalf("final window: ok %v end %v last seen %v, want end %v last seen %v", ok, last.End, last.LastSeen, at(10), at(12))
	}
	if !first.LastSeen.Equal(at(5)) {
		t.Fatal("an emitted window's LastSeen moved with the track")
	}
}

func TestMemoryBounds(t *testing.T) {
	// Per track: 3 crops of 300 B fit in 1000 B, so the 4th evicts the oldest.
	b, _ := New("cam", Config{FPS: 25, Length: 8, MaxBytesPerTrack: 1000, MaxBytesTotal: 1500})
	for i := 0; i < 8; i++ {
		feed(b, 1, i, 100)
	}
	s := b.Stats()
	if s.Bytes > 1000 || s.DroppedMemory == 0 {
		t.Fatalf("per-track bound not enforced: %+v", s)
	}
	// Total: a second track may only add what is left of 1500 B.
	for i := 0; i < 8; i++ {
		feed(b, 2, i, 100)
	}
	if s := b.Stats(); s.Bytes > 1500 {
		t.Fatalf("total bound not enforced: %+v", s)
	}
	b.End(1)
	b.End(2)
	if s := b.Stats(); s.Bytes != 0 {
		t.Fatalf("bytes after all tracks ended: %d", s.Bytes)
	}
}

func TestTracksAreIndependent(t *testing.T) {
	b, _ := New("cam", Config{FPS: 25, Length: 4, Stride: 4})
	n := map[int]int{}
	for i := 0; i < 40; i++ {
		for _, id := range []int{1, 2, 3} {
			if i < 20 || id != 2 {
				if w, ok := feed(b, id, i, 1); ok {
					n[w.TrackID]++
				}
			}
		}
	}
	if n[1] != 10 || n[3] != 10 || n[2] != 5 {
		t.Fatalf("windows per track %v", n)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{{FPS: -1}, {Length: 4, Stride: 5}, {Length: 4, MinLength: 5}, {MaxBytesPerTrack: 10, MaxBytesTotal: 5}} {
		if _, err := New("cam", c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
}
