package capture

/*
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "avdec.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine/registry"
)

// Why edgemo decodes files itself.
//
// OpenCV 4.6's FFmpeg backend gives every capture's decoder one frame
// thread per CPU and has no property to change it (CAP_PROP_N_THREADS came
// in 4.7). With more cameras than cores those threads only hand frames
// back and forth: on this project's 2-core build machine the 720p sample
// cost 5–28% more CPU a frame on two threads than on one, decoded alone
// (five interleaved pairs), and 19% more with 8 cameras decoding at once; decode is a camera's
// largest stage. avCapture opens the stream with FFmpeg's
// own libraries, which OpenCV links too, and sets the count: DecodeThreads.
// Frames are converted to BGR by swscale as OpenCV's are, into the
// caller's Mat without OpenCV's extra copy, and turned upright by the
// stream's display matrix as OpenCV's auto-orientation does: with every
// frame deblocked (Deblock "all") they are OpenCV's, pixel for pixel
// (TestAvCaptureMatchesOpenCV); the default skips the loop filter where
// no frame is predicted from it (registry.Deblocking).

// DecodeThreads is the decoder threads each of n video sources gets: the
// cores shared out, at least one. One camera on a multi-core machine keeps
// frame threading, which a large stream needs for real time on slow cores;
// a machine with as many cameras as cores gets one thread per camera,
// each camera's decoder then running on its own core.
func DecodeThreads(n int) int {
	return max(1, runtime.NumCPU()/max(1, n))
}

// FFmpegVersion names the FFmpeg release and libraries files and streams
// are decoded with, for doctor.
func FFmpegVersion() string {
	var buf [256]C.char
	C.edgemo_avdec_versions(&buf[0], C.int(len(buf)))
	return C.GoString(&buf[0])
}

// avCapture is a video stream decoded by avdec.cpp.
type avCapture struct {
	p unsafe.Pointer
}

// deblockCodes are avdec.h's codes for registry.Deblocking's names.
var deblockCodes = map[string]C.int{registry.DeblockReference: 0, registry.DeblockAll: 1, registry.DeblockNone: 2}

// avOptions are how a stream is decoded.
type avOptions struct {
	threads int    // decoder threads (0: FFmpeg's choice)
	deblock string // a registry.Deblocking name ("": its default)
}

func (c Config) avOptions() avOptions {
	return avOptions{threads: c.DecodeThreads, deblock: c.Deblock}
}

// openAvCapture opens a file. Callers validate path first.
func openAvCapture(path string, o avOptions) (*avCapture, error) {
	return openAvStream(path, o, 0, 0)
}

// openAvStream opens uri, a file or a network stream; open and read bound
// the open and each read (0: unbounded), through FFmpeg's interrupt
// callback, per stream.
func openAvStream(uri string, o avOptions, open, read time.Duration) (*avCapture, error) {
	if uri == "" {
		return nil, errors.New("capture: empty path")
	}
	if o.threads < 0 || o.threads > 64 {
		return nil, fmt.Errorf("capture: %d decoder threads: want 0 (FFmpeg's choice) to 64", o.threads)
	}
	if o.deblock == "" {
		o.deblock = registry.Deblocking.Default()
	}
	deblock, ok := deblockCodes[o.deblock]
	if !ok {
		return nil, fmt.Errorf("capture: %w", registry.Deblocking.Check(o.deblock))
	}
	cURI := C.CString(uri)
	defer C.free(unsafe.Pointer(cURI))
	var buf [256]C.char
	ms := func(d time.Duration) C.int {
		if d <= 0 {
			return 0
		}
		return C.int(cvMillis(d))
	}
	p := C.edgemo_avdec_open(cURI, C.int(o.threads), deblock, ms(open), ms(read), &buf[0], C.int(len(buf)))
	if p == nil {
		return nil, fmt.Errorf("FFmpeg: %s", C.GoString(&buf[0]))
	}
	return &avCapture{p: p}, nil
}

func (c *avCapture) Read(m *gocv.Mat) bool {
	if c.p == nil || m == nil || m.Ptr() == nil {
		return false
	}
	return C.edgemo_avdec_read(c.p, unsafe.Pointer(m.Ptr()), nil, 0, 0, 0, nil, nil, nil) != 0
}

// ReadLuma is Read that also makes the frame's LumaGrid into g.Pix (grown
// to lumaCap once), from the luma plane before it is released.
func (c *avCapture) ReadLuma(m *gocv.Mat, g *LumaGrid, spec GridSpec) (bool, time.Duration) {
	g.W, g.H = 0, 0
	if c.p == nil || m == nil || m.Ptr() == nil {
		return false, 0
	}
	if cap(g.Pix) < lumaCap {
		g.Pix = make([]uint8, lumaCap)
	}
	g.Pix = g.Pix[:cap(g.Pix)]
	var w, h C.int
	var ns C.longlong
	ok := C.edgemo_avdec_read(c.p, unsafe.Pointer(m.Ptr()), (*C.uchar)(unsafe.Pointer(&g.Pix[0])), C.int(len(g.Pix)),
		C.int(spec.Cells), C.int(spec.Taps), &w, &h, &ns) != 0
	if ok && w > 0 && h > 0 {
		g.W, g.H = int(w), int(h)
		g.Pix = g.Pix[:g.W*g.H]
	}
	return ok, time.Duration(ns)
}

func (c *avCapture) Get(prop gocv.VideoCaptureProperties) float64 {
	if c.p == nil {
		return 0
	}
	return float64(C.edgemo_avdec_get(c.p, C.int(prop)))
}

// Threads is the decoder's thread count.
func (c *avCapture) Threads() int {
	if c.p == nil {
		return 0
	}
	return int(C.edgemo_avdec_threads(c.p))
}

func (c *avCapture) IsOpened() bool { return c.p != nil }

func (c *avCapture) Close() error {
	if c.p != nil {
		C.edgemo_avdec_close(c.p)
		c.p = nil
	}
	return nil
}

// cvMillis converts d to whole milliseconds, at least 1 (0 would turn the
// timeout off) and at most what an int holds.
func cvMillis(d time.Duration) int {
	m := d.Milliseconds()
	switch {
	case m < 1:
		return 1
	case m > 1<<31-1:
		return 1<<31 - 1
	}
	return int(m)
}
