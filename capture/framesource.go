package capture

import (
	"fmt"
	"time"

	"gocv.io/x/gocv"
)

// FrameSource is where a pipeline reads frames from. *Source, which decodes
// with OpenCV, is one; anything else that can hand over BGR pictures with
// timestamps (a go2rtc or GStreamer appsink binding, a generator in a test)
// plugs in by implementing these four methods, building each frame with
// FrameFromBGR or its own gocv.Mat.
//
// The contract, which *Source keeps:
//   - Frames returns the same channel on every call. Frames arrive on it in
//     Seq order, Mat BGR (CV_8UC3), Time never going back; it is closed when
//     the source ends for good (end of input, Close, its context cancelled).
//   - Every *Frame received belongs to the receiver, who calls its Close
//     exactly once. The source closes the frames it drops and, on Close or
//     cancellation, those still queued: no Mat is left open on any path.
//   - Err says why the source stopped, once Frames is closed: nil for a
//     clean end or a stop that was asked for. Before that it returns nil.
//   - Stats is safe to call from any goroutine at any time; a source fills
//     the counters that apply to it and leaves the others zero.
//   - Close stops the source and closes the frames still queued; it is safe
//     to call more than once and while a receiver is reading. The pipeline
//     never calls it: whoever opened the source closes it.
type FrameSource interface {
	Frames() <-chan *Frame
	Err() error
	Stats() Stats
	Close() error
}

var _ FrameSource = (*Source)(nil)

// DecodeMeter is a FrameSource that counts the CPU time it spends decoding
// (*Source does); the pipeline reports it where a source has it. Not part
// of FrameSource: a source that cannot tell leaves it out.
type DecodeMeter interface {
	DecodeCPU() time.Duration
}

var _ DecodeMeter = (*Source)(nil)

// FrameFromBGR copies a packed BGR picture (width×height×3 bytes, rows top
// to bottom, as a GStreamer appsink with format=BGR or a decoder's output
// delivers it) into a new frame's Mat, so bgr can be reused at once. The
// caller sets Seq, PTS and Time; the receiver of the frame closes it.
func FrameFromBGR(width, height int, bgr []byte) (*Frame, error) {
	if width <= 0 || height <= 0 {
		return nil, fmt.Errorf("capture: frame size %d×%d: width and height must be positive", width, height)
	}
	if n := width * height * 3; len(bgr) != n {
		return nil, fmt.Errorf("capture: %d bytes for a %d×%d BGR frame, want %d (width×height×3, no row padding)", len(bgr), width, height, n)
	}
	m := gocv.NewMatWithSize(height, width, gocv.MatTypeCV8UC3)
	pix, err := m.DataPtrUint8()
	if err != nil { // a fresh Mat is continuous; kept for safety
		m.Close()
		return nil, fmt.Errorf("capture: frame buffer: %w", err)
	}
	copy(pix, bgr)
	return &Frame{Mat: m}, nil
}
