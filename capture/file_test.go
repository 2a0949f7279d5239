package capture

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"
)

// A whole read of Megamind.avi delivers every frame the container declares,
// in order, with media timestamps, and leaves no Mat or goroutine behind.
func TestFileFullRead(t *testing.T) {
	path := testenv.Media(t, "Megamind.avi")
	check := leakCheck(t)
	src, err := Open(context.Background(), Config{Source: path}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	info := src.Info()
	if info.Kind != KindFile || info.Width != 720 || info.Height != 528 || info.Frames != 270 || math.Abs(info.FPS-23.976) > 0.01 {
		t.Fatalf("Info = %+v, want file 720x528 at 23.976 fps, 270 frames", info)
	}
	var first *Frame
	frames := collect(t, src, func(f *Frame) {
		if f.Mat.Cols() != 720 || f.Mat.Rows() != 528 || f.Mat.Channels() != 3 {
			t.Errorf("frame %d is %dx%d×%d, want 720x528 BGR", f.Seq, f.Mat.Cols(), f.Mat.Rows(), f.Mat.Channels())
		}
	})
	if len(frames) > 0 {
		first = frames[0]
	}
	if err := src.Err(); err != nil {
		t.Errorf("Err after a clean read = %v", err)
	}
	if len(frames) != info.Frames {
		t.Fatalf("got %d frames, Info declares %d", len(frames), info.Frames)
	}
	frame := time.Duration(float64(time.Second) / info.FPS)
	for i, f := range frames {
		if f.Seq != uint64(i) {
			t.Fatalf("frame %d has Seq %d", i, f.Seq)
		}
		if want := time.Duration(float64(i) * float64(frame)); absDur(f.PTS-want) > time.Millisecond {
			t.Errorf("frame %d: PTS %v, want ≈ Seq/fps = %v", i, f.PTS, want)
		}
		if i > 0 && f.PTS <= frames[i-1].PTS {
			t.Errorf("frame %d: PTS %v not after %v", i, f.PTS, frames[i-1].PTS)
		}
		if got := f.Time.Sub(first.Time); got != f.PTS {
			t.Errorf("frame %d: Time-first.Time = %v, want PTS %v", i, got, f.PTS)
		}
	}
	st := src.Stats()
	if st.Read != 270 || st.Emitted != 270 || st.DroppedRate != 0 || st.DroppedSlow != 0 {
		t.Errorf("Stats = %+v, want 270 read and emitted, nothing dropped", st)
	}
	t.Logf("stats %+v", st)
	src.Close()
	check()
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// Cancelling ctx mid-stream closes the channel promptly, without Close, and
// the queued frames are released by the source itself.
func TestFileCancelMidStream(t *testing.T) {
	path := testenv.Media(t, "Megamind.avi")
	check := leakCheck(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := Open(ctx, Config{Source: path, Buffer: 4}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		f := <-src.Frames()
		f.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(src.frames) < 4 && time.Now().Before(deadline) { // let the producer fill the queue and block
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	// Nobody reads: the source itself must stop and release the queue.
	t0 := time.Now()
	for src.State() != StateClosed && time.Since(t0) < 2*time.Second {
		time.Sleep(time.Millisecond)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("source closed %v after cancel, want promptly", d)
	}
	select {
	case f, ok := <-src.Frames():
		if ok {
			f.Close()
			t.Errorf("frame %d still queued after cancel: the source must release its queue", f.Seq)
		}
	case <-time.After(time.Second):
		t.Fatal("Frames not closed 1s after cancel")
	}
	if err := src.Err(); err != nil {
		t.Errorf("Err after cancel = %v, want nil (cancelling is not a failure)", err)
	}
	check() // before Close: cancellation alone must release everything
	src.Close()
	src.Close() // idempotent
}

// Close while frames are queued and nobody reads releases them.
func TestFileCloseWithQueuedFrames(t *testing.T) {
	path := testenv.Media(t, "Megamind.avi")
	check := leakCheck(t)
	src, err := Open(context.Background(), Config{Source: path, Buffer: 8}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(src.frames) < 8 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(src.frames) != 8 {
		t.Fatalf("queue holds %d frames, want it full (8)", len(src.frames))
	}
	src.Close()
	if _, ok := <-src.Frames(); ok {
		t.Error("Frames still open after Close")
	}
	check()
}

// With Realtime, a consumer slower than the clip loses the oldest queued
// frames, never the newest, and never slows the producer.
func TestRealtimeSlowConsumerDropsOldest(t *testing.T) {
	path := synthClip(t, 50, 2) // 100 frames, 2 s
	check := leakCheck(t)
	t0 := time.Now()
	src, err := Open(context.Background(), Config{Source: path, Realtime: true, Buffer: 2}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	frames := collect(t, src, func(*Frame) { time.Sleep(35 * time.Millisecond) })
	elapsed := time.Since(t0)
	st := src.Stats()
	t.Logf("received %d in %v, stats %+v", len(frames), elapsed, st)
	if st.DroppedSlow == 0 {
		t.Error("DroppedSlow = 0, want > 0 for a consumer at ~28 fps behind a 50 fps clip")
	}
	if st.Emitted != 100 || uint64(len(frames))+st.DroppedSlow != st.Emitted {
		t.Errorf("emitted %d, received %d + dropped %d: want 100 emitted, all accounted for", st.Emitted, len(frames), st.DroppedSlow)
	}
	for i := 1; i < len(frames); i++ {
		if frames[i].Seq <= frames[i-1].Seq {
			t.Fatalf("Seq %d after %d: out of order", frames[i].Seq, frames[i-1].Seq)
		}
	}
	if last := frames[len(frames)-1].Seq; last != 99 {
		t.Errorf("last frame received has Seq %d, want 99 (drop-oldest keeps the newest)", last)
	}
	// 100 frames of 35 ms would take 3.5 s if the producer waited for us.
	if elapsed > 3*time.Second {
		t.Errorf("run took %v: the producer waited for the slow consumer", elapsed)
	}
	src.Close()
	check()
}

// Realtime paces a file at its native rate on the wall clock.
func TestRealtimePacing(t *testing.T) {
	path := synthClip(t, 25, 1)
	check := leakCheck(t)
	src, err := Open(context.Background(), Config{Source: path, Realtime: true}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	frames := collect(t, src, nil)
	if d := time.Since(t0); d < 900*time.Millisecond || d > 2*time.Second {
		t.Errorf("25 frames at 25 fps took %v, want ≈ 1 s", d)
	}
	if len(frames) != 25 {
		t.Errorf("got %d frames, want 25 (a fast consumer loses none)", len(frames))
	}
	src.Close()
	check()
}

// The real-time clock starts when frames start flowing, not when the open
// began: an open that took long (many cameras opening at once) must not
// make the first frames due at once and overflow the consumer's buffer.
func TestRealtimeClockStartsAfterOpen(t *testing.T) {
	path := synthClip(t, 25, 1)
	check := leakCheck(t)
	t0 := time.Now()
	src, err := Open(context.Background(), Config{Source: path, Realtime: true}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Now()
	frames := collect(t, src, nil)
	open := t1.Sub(t0)
	if len(frames) == 0 {
		t.Fatal("no frames")
	}
	if f0 := frames[0].Time; f0.Before(t1.Add(-open / 2)) {
		t.Errorf("frame 0 is timed %v before Open returned, the open took %v: the clock started with the open", t1.Sub(f0), open)
	}
	if st := src.Stats(); st.DroppedSlow != 0 {
		t.Errorf("a fast consumer lost %d frames", st.DroppedSlow)
	}
	src.Close()
	check()
}

// An FPS cap of 12.5 on a 25 fps clip emits every other frame.
func TestFPSCapHalves(t *testing.T) {
	path := synthClip(t, 25, 4) // 100 frames
	check := leakCheck(t)
	src, err := Open(context.Background(), Config{Source: path, FPS: 12.5}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	frames := collect(t, src, nil)
	st := src.Stats()
	t.Logf("stats %+v", st)
	if len(frames) < 49 || len(frames) > 51 {
		t.Fatalf("got %d frames, want 50±1", len(frames))
	}
	if st.Read != 100 || st.DroppedRate+st.Emitted != 100 {
		t.Errorf("Stats %+v: want 100 read = emitted + dropped by rate", st)
	}
	span := frames[len(frames)-1].PTS - frames[0].PTS
	if rate := float64(len(frames)-1) / span.Seconds(); rate > 12.5*1.02 || rate < 12.5*0.95 {
		t.Errorf("emitted rate %.2f fps, want ≤ 12.5 within tolerance", rate)
	}
	for i := 1; i < len(frames); i++ {
		if gap := frames[i].PTS - frames[i-1].PTS; absDur(gap-80*time.Millisecond) > 2*time.Millisecond {
			t.Errorf("frames %d→%d: PTS gap %v, want 80ms", frames[i-1].Seq, frames[i].Seq, gap)
		}
		if frames[i].Seq-frames[i-1].Seq != 2 {
			t.Errorf("Seq %d after %d, want every other frame", frames[i].Seq, frames[i-1].Seq)
		}
	}
	src.Close()
	check()
}

// A cap above the native rate drops nothing.
func TestFPSCapAboveNative(t *testing.T) {
	path := synthClip(t, 25, 1)
	check := leakCheck(t)
	src, err := Open(context.Background(), Config{Source: path, FPS: 30}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(collect(t, src, nil)); n != 25 {
		t.Errorf("got %d frames, want all 25", n)
	}
	src.Close()
	check()
}

// A still image becomes StillDuration×StillFPS frames 1/StillFPS apart.
func TestStillImageClip(t *testing.T) {
	path := testenv.Media(t, "messi5.jpg")
	check := leakCheck(t)
	src, err := Open(context.Background(), Config{Source: path, StillDuration: 2 * time.Second, StillFPS: 5}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if info := src.Info(); info.Kind != KindImage || info.Frames != 10 || info.FPS != 5 || info.Width != 548 || info.Height != 342 {
		t.Errorf("Info = %+v, want image 548x342, 10 frames at 5 fps", info)
	}
	frames := collect(t, src, func(f *Frame) {
		if f.Mat.Cols() != 548 || f.Mat.Rows() != 342 || f.Mat.Channels() != 3 {
			t.Errorf("frame %d is %dx%d×%d", f.Seq, f.Mat.Cols(), f.Mat.Rows(), f.Mat.Channels())
		}
	})
	if len(frames) != 10 {
		t.Fatalf("got %d frames, want 2s × 5fps = 10", len(frames))
	}
	for i, f := range frames {
		if f.Seq != uint64(i) || f.PTS != time.Duration(i)*200*time.Millisecond {
			t.Errorf("frame %d: Seq %d PTS %v, want Seq %d PTS %v", i, f.Seq, f.PTS, i, time.Duration(i)*200*time.Millisecond)
		}
	}
	src.Close()

	// Defaults: 5 s at 10 fps.
	src, err = Open(context.Background(), Config{Source: testenv.Media(t, "astronaut.png")}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(collect(t, src, nil)); n != 50 {
		t.Errorf("default still clip has %d frames, want 50", n)
	}
	src.Close()
	check()
}

// Bad inputs fail in Open with an error naming the file and the fix, or,
// when part of a file decodes, end cleanly with Err naming the frames read.
// What OpenCV 4.6 does with each is recorded next to it.
func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	mega := testenv.Media(t, "Megamind.avi")
	data, err := os.ReadFile(mega)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := make([]byte, 50000)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i/13)
	}
	check := leakCheck(t)

	cases := []struct {
		name, path string
		want       []string // substrings of Open's error
	}{
		// os.Stat fails: OpenCV never sees it.
		{"missing", filepath.Join(dir, "nope.avi"), []string{"nope.avi", "does not exist"}},
		{"empty", write("empty.avi", nil), []string{"empty.avi", "empty (0 bytes)"}},
		{"directory", dir, []string{"is a directory"}},
		// The FFmpeg backend refuses to open it (CAP_ANY would also try
		// GStreamer and CV_IMAGES, which log C++ exceptions).
		{"garbage", write("garbage.avi", garbage), []string{"garbage.avi", "cannot open", "ffprobe"}},
		// The AVI header survives in the first 20 KB: OpenCV opens it and
		// reports 270 frames, 720x528 at 23.976 fps, but the first read
		// fails. Open decodes the first frame, so this fails here.
		{"truncated 20KB", write("trunc20k.avi", data[:20*1024]), []string{"trunc20k.avi", "could not decode a single frame", "declares 270"}},
		{"garbage image", write("garbage.jpg", garbage), []string{"garbage.jpg", "cannot decode image"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := Open(context.Background(), Config{Source: c.path}, quietLog())
			if err == nil {
				src.Close()
				t.Fatalf("Open(%s) succeeded, want an error", c.path)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			t.Logf("%s: %v", c.name, err)
		})
	}

	// Truncated at 600 KB: OpenCV decodes 130 of the 270 frames (libavcodec
	// logs "mcbpc damaged"), then Read returns false exactly as at a clean
	// end; its last frame's POS_MSEC is 0. The source ends and says so.
	t.Run("truncated half", func(t *testing.T) {
		p := write("trunc600k.avi", data[:600000])
		src, err := Open(context.Background(), Config{Source: p}, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		frames := collect(t, src, nil)
		err = src.Err()
		t.Logf("%d frames, Err: %v, stats %+v", len(frames), err, src.Stats())
		if len(frames) == 0 || len(frames) >= 270 {
			t.Fatalf("got %d frames, want part of 270", len(frames))
		}
		if err == nil || !strings.Contains(err.Error(), "trunc600k.avi") ||
			!strings.Contains(err.Error(), "after "+itoa(len(frames))+" of the 270 frames") {
			t.Errorf("Err = %v, want one naming the file and %d of 270 frames", err, len(frames))
		}
		for i := 1; i < len(frames); i++ {
			if frames[i].PTS <= frames[i-1].PTS {
				t.Errorf("PTS not increasing at %d: %v after %v", i, frames[i].PTS, frames[i-1].PTS)
			}
		}
		src.Close()
	})

	// Megamind_bugy.avi is a different encode (30 fps, XVID with packed
	// B-frames: packets without timestamps). OpenCV 4.6 decodes all 270
	// frames; the only damage it shows is POS_MSEC = 0 for the last frame,
	// which the PTS repair replaces by previous + 1/30 s.
	t.Run("Megamind_bugy", func(t *testing.T) {
		src, err := Open(context.Background(), Config{Source: testenv.Media(t, "Megamind_bugy.avi")}, quietLog())
		if err != nil {
			t.Fatal(err)
		}
		frames := collect(t, src, nil)
		st := src.Stats()
		t.Logf("%d frames, Err: %v, info %+v stats %+v", len(frames), src.Err(), src.Info(), st)
		if err := src.Err(); err != nil {
			t.Errorf("Err = %v, want nil: every declared frame decoded", err)
		}
		if len(frames) != 270 {
			t.Errorf("got %d frames, want 270", len(frames))
		}
		if st.TimestampsRepaired == 0 {
			t.Error("TimestampsRepaired = 0, want the last frame's zero timestamp repaired")
		}
		for i, f := range frames {
			want := time.Duration(i) * time.Second / 30
			if absDur(f.PTS-want) > time.Millisecond {
				t.Errorf("frame %d: PTS %v, want %v", i, f.PTS, want)
			}
		}
		src.Close()
	})
	check()
}

func itoa(n int) string { return strconv.Itoa(n) }

// DecodeOnly counts every frame and refuses what Open refuses.
func TestDecodeOnly(t *testing.T) {
	check := leakCheck(t)
	n, err := DecodeOnly(testenv.Media(t, "Megamind.avi"))
	if err != nil || n != 270 {
		t.Errorf("DecodeOnly = %d, %v; want 270, nil", n, err)
	}
	if _, err := DecodeOnly(filepath.Join(t.TempDir(), "none.avi")); err == nil {
		t.Error("DecodeOnly of a missing file succeeded")
	}
	check()
}

// BenchmarkDecode is plain OpenCV decoding of Megamind.avi, the baseline
// for `edgemo bench`.
func BenchmarkDecode(b *testing.B) {
	path := testenv.Media(b, "Megamind.avi")
	total := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		n, err := DecodeOnly(path)
		if err != nil {
			b.Fatal(err)
		}
		total += n
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "frames/s")
}

// BenchmarkSource is the same file through Open/Frames (timestamps,
// channel, one Mat per frame), to show what the package adds.
func BenchmarkSource(b *testing.B) {
	path := testenv.Media(b, "Megamind.avi")
	total := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		src, err := Open(context.Background(), Config{Source: path}, quietLog())
		if err != nil {
			b.Fatal(err)
		}
		for f := range src.Frames() {
			f.Close()
			total++
		}
		src.Close()
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "frames/s")
}
