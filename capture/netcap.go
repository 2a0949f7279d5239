package capture

/*
#cgo CXXFLAGS: --std=c++11
#include <stdlib.h>
#include "netcap.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"gocv.io/x/gocv"
)

// netCapture is a cv::VideoCapture opened by edgemo_netcap_open: an FFmpeg
// capture whose open and reads are bounded by OpenCV's own interrupt
// callback (CAP_PROP_OPEN_TIMEOUT_MSEC, CAP_PROP_READ_TIMEOUT_MSEC), set per
// capture. gocv 0.31 can only pass such limits through the process-wide
// OPENCV_FFMPEG_CAPTURE_OPTIONS variable, which forced one lock around
// every network open.
type netCapture struct {
	p unsafe.Pointer
}

// openNetCapture opens uri with the FFmpeg backend. Callers validate uri
// first; C++ exceptions are caught in C++ and returned as the error.
func openNetCapture(uri string, open, read time.Duration) (*netCapture, error) {
	if uri == "" {
		return nil, errors.New("capture: empty URL")
	}
	cURI := C.CString(uri)
	defer C.free(unsafe.Pointer(cURI))
	var buf [256]C.char
	p := C.edgemo_netcap_open(cURI, C.int(cvMillis(open)), C.int(cvMillis(read)), &buf[0], C.int(len(buf)))
	if p == nil {
		if msg := C.GoString(&buf[0]); msg != "" {
			return nil, fmt.Errorf("OpenCV: %s", msg)
		}
		return nil, errors.New("OpenCV could not open the stream")
	}
	return &netCapture{p: p}, nil
}

// cvMillis converts d to whole milliseconds for OpenCV, at least 1 (0 would turn
// OpenCV's timeout off) and at most what an int holds.
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

func (c *netCapture) Read(m *gocv.Mat) bool {
	if c.p == nil || m == nil || m.Ptr() == nil {
		return false
	}
	return C.edgemo_netcap_read(c.p, unsafe.Pointer(m.Ptr())) != 0
}

func (c *netCapture) Get(prop gocv.VideoCaptureProperties) float64 {
	if c.p == nil {
		return 0
	}
	return float64(C.edgemo_netcap_get(c.p, C.int(prop)))
}

func (c *netCapture) IsOpened() bool { return c.p != nil }

func (c *netCapture) Close() error {
	if c.p != nil {
		C.edgemo_netcap_close(c.p)
		c.p = nil
	}
	return nil
}
