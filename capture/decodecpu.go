package capture

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/internal/cpuclock"
)

// decodeMeter counts the CPU time a source spends decoding, so a benchmark
// can split the process's time into decode, inference and the rest from
// one run rather than from a separate decode-only pass (in a busy pipeline
// decode runs slower than alone: the other stages evict its caches).
//
// Decode runs on two kinds of thread: the one that calls Read (demux,
// FFmpeg's hand-off, swscale's conversion to BGR), measured by its own
// thread CPU clock around each Read, and the threads the decoder starts at
// open (FFmpeg's frame threads, GStreamer's streaming threads). Those are
// found by name: a Linux thread inherits its creator's name, so the open
// runs on a thread renamed to a tag of this capture's own, which is then
// given its old name back. Go's runtime never starts its own threads from
// a locked thread, so the tag marks only the decoder's.
type decodeMeter struct {
	done atomic.Int64 // ns: reads, and the threads of captures already closed

	mu   sync.Mutex
	tags []string // captures open now
}

var decodeTags atomic.Int64

// CPU is the decode time so far: closed captures' and the live ones'.
func (d *decodeMeter) CPU() time.Duration {
	total := time.Duration(d.done.Load())
	d.mu.Lock()
	tags := append([]string(nil), d.tags...)
	d.mu.Unlock()
	for _, t := range tags {
		cpu, _ := threadsCPU(t)
		total += cpu
	}
	return total
}

// open runs fn, which opens a capture, on a thread carrying a fresh tag, and
// returns fn's capture metered.
func (d *decodeMeter) open(fn func() (videoCapture, error)) (videoCapture, error) {
	tag := "edgemo-dec" + strconv.FormatInt(decodeTags.Add(1), 10) // ≤ 15 bytes, the kernel's limit
	runtime.LockOSThread()
	old, named := threadName()
	if named {
		named = setThreadName(tag)
	}
	vc, err := fn()
	if named {
		setThreadName(old)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return nil, err
	}
	if named {
		d.mu.Lock()
		d.tags = append(d.tags, tag)
		d.mu.Unlock()
	} else {
		tag = ""
	}
	return &meteredCapture{videoCapture: vc, meter: d, tag: tag}, nil
}

// meteredCapture is a capture whose reads and decoder threads are counted.
type meteredCapture struct {
	videoCapture
	meter  *decodeMeter
	tag    string
	closed bool
}

func (c *meteredCapture) Read(m *gocv.Mat) bool {
	runtime.LockOSThread() // the clock is the thread's: keep the call on it
	t0 := cpuclock.Thread()
	ok := c.videoCapture.Read(m)
	c.meter.done.Add(int64(cpuclock.Thread() - t0))
	runtime.UnlockOSThread()
	return ok
}

// ReadLuma meters a read that also makes the frame's LumaGrid, less the
// grid's own time: that is the motion gate's work, not decoding.
func (c *meteredCapture) ReadLuma(m *gocv.Mat, g *LumaGrid, spec GridSpec) (bool, time.Duration) {
	lr, ok := c.videoCapture.(lumaReader)
	if !ok {
		g.W, g.H = 0, 0
		return c.Read(m), 0
	}
	runtime.LockOSThread()
	t0 := cpuclock.Thread()
	ok, grid := lr.ReadLuma(m, g, spec)
	c.meter.done.Add(int64(cpuclock.Thread() - t0 - grid))
	runtime.UnlockOSThread()
	return ok, grid
}

// Close banks the decoder threads' time before they exit with the capture.
func (c *meteredCapture) Close() error {
	if !c.closed && c.tag != "" {
		c.closed = true
		c.meter.mu.Lock()
		cpu, _ := threadsCPU(c.tag)
		c.meter.done.Add(int64(cpu))
		c.meter.tags = remove(c.meter.tags, c.tag)
		c.meter.mu.Unlock()
	}
	return c.videoCapture.Close()
}

func remove(s []string, v string) []string {
	for i, x := range s {
		if x == v {
			return append(s[:i], s[i+1:]...)
		}
	}
	return s
}

const prSetName, prGetName = 15, 16

func threadName() (string, bool) {
	var b [16]byte
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prGetName, uintptr(unsafe.Pointer(&b[0])), 0); e != 0 {
		return "", false
	}
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	return string(b[:n]), true
}

func setThreadName(name string) bool {
	var b [16]byte
	copy(b[:15], name)
	_, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetName, uintptr(unsafe.Pointer(&b[0])), 0)
	return e == 0
}

// threadsCPU sums the CPU time of this process's n threads named tag, from
// the scheduler's nanosecond count (clock ticks where that is missing).
func threadsCPU(tag string) (total time.Duration, n int) {
	dir := "/proc/self/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/comm")
		if err != nil || strings.TrimSpace(string(b)) != tag {
			continue
		}
		total += taskCPU(dir + "/" + e.Name())
		n++
	}
	return total, n
}

const userHZ = 100 // clock ticks a second on every Linux ABI Go runs on

func taskCPU(task string) time.Duration {
	if b, err := os.ReadFile(task + "/schedstat"); err == nil {
		if f := strings.Fields(string(b)); len(f) > 0 {
			if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				return time.Duration(ns)
			}
		}
	}
	b, err := os.ReadFile(task + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the name may hold spaces
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	var ticks int64
	for _, x := range f[11:13] { // utime, stime
		var n int64
		if _, err := fmt.Sscan(x, &n); err == nil {
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / userHZ
}
