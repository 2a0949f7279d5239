package capture

import (
	"context"
	"runtime"
	"testing"

	"github.com/edgemo/edgemo/internal/cpuclock"
	"github.com/edgemo/edgemo/internal/testenv"
)

// A file source counts its decode time: the reads and FFmpeg's own frame
// threads, which carry the capture's tag while it is open and take it with
// them when it closes, their time banked first. The count agrees with the
// process CPU of decoding the same file alone.
func TestDecodeCPUCountsDecoderThreads(t *testing.T) {
	path := testenv.Path(t, "deps/streams/megamind-720p.mp4")
	alone := cpuclock.Process()
	if _, err := DecodeOnly(path); err != nil {
		t.Fatal(err)
	}
	alone = cpuclock.Process() - alone

	check := leakCheck(t)
	src, err := Open(context.Background(), Config{Source: path}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	src.decode.mu.Lock()
	tags := append([]string(nil), src.decode.tags...)
	src.decode.mu.Unlock()
	if len(tags) != 1 {
		t.Fatalf("open file source has tags %q, want one", tags)
	}
	_, n := threadsCPU(tags[0])
	if runtime.NumCPU() >= 2 && n == 0 { // OpenCV gives FFmpeg a thread per CPU
		t.Errorf("no thread named %q: FFmpeg's frame threads did not inherit the tag", tags[0])
	}
	if name, _ := threadName(); name == tags[0] {
		t.Errorf("the opening thread kept the tag %q", name)
	}
	collect(t, src, nil)
	open := src.DecodeCPU()
	src.Close()
	closed := src.DecodeCPU()
	if closed < open {
		t.Errorf("DecodeCPU fell from %v to %v at Close: the decoder threads' time was not banked", open, closed)
	}
	if _, n := threadsCPU(tags[0]); n != 0 {
		t.Errorf("%d threads still named %q after Close", n, tags[0])
	}
	// Wide bounds: a pipeline decodes slower than decode alone, and a loaded
	// test machine moves both. Missing the frame threads would fall below.
	if r := closed.Seconds() / alone.Seconds(); r < 0.6 || r > 2.5 {
		t.Errorf("DecodeCPU %v is %.2f× the process CPU of decoding the file alone (%v), want 0.6–2.5×", closed, r, alone)
	}
	t.Logf("decode CPU %v with %d decoder threads; decode alone %v of process CPU", closed, n, alone)
	check()
}
