//go:build !customenv && !static

package capture

// OpenCV's and FFmpeg's compile and link flags for avdec.cpp, under the
// same build tags as gocv's own: with -tags customenv or static,
// CGO_CPPFLAGS and CGO_LDFLAGS supply them, as they do for gocv.

/*
#cgo !windows pkg-config: opencv4 libavformat libavcodec libswscale libavutil
*/
import "C"
