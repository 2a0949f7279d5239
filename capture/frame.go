package capture

import (
	"time"

	"gocv.io/x/gocv"
)

// Frame is one decoded picture. Whoever receives a *Frame owns its Mat and
// must call Close exactly once (Close is idempotent, so a defer plus an early
// Close is fine).
type Frame struct {
	Seq  uint64        // monotonic per source, from 0, never reused across reconnects
	PTS  time.Duration // media time for files; time since the source opened for live sources
	Time time.Time     // capture time (files: run start + PTS, so windows follow media time)
	Mat  gocv.Mat      // BGR, owned by the receiver
	Luma LumaGrid      // the decoder's grey grid, when Config.LumaGrid asked for one and it could (W 0: none); valid until Close

	pool *matPool // where Close returns Mat for the source's next read; nil: Close frees it
}

// Close releases the frame's Mat: back to its source for a later frame
// (its pixels will be overwritten: keep nothing of Mat past Close), or
// freed. It is safe to call more than once and on a nil *Frame.
func (f *Frame) Close() {
	if f == nil {
		return
	}
	// Only the pointer is checked: Mat.Empty on a zero Mat dereferences a
	// nil cv::Mat in C and would crash a second Close.
	if f.Mat.Ptr() != nil {
		f.pool.put(f.Mat)
	}
	f.pool.putLuma(f.Luma.Pix)
	f.Mat, f.Luma = gocv.Mat{}, LumaGrid{}
}
