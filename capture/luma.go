package capture

import (
	"time"

	"gocv.io/x/gocv"
)

// GridSpec asks a source for each frame's LumaGrid: Cells columns (fewer
// when the frame is narrower), each cell the mean of Taps² luma samples.
// The zero GridSpec asks for none.
type GridSpec struct {
	Cells, Taps int
}

// LumaGrid is a frame's grey levels averaged over a W×H grid, made by the
// decoder from the picture's luma plane right after decoding it: the
// motion gate's input (facetrack.Motion) at a third of the bytes the BGR
// frame would cost, read while the plane is still in cache. Cells are
// full-range grey (limited-range luma stretched as the BGR conversion
// stretches it), so a cell is the BT.601 luma of the BGR frame's same
// samples to within rounding (TestLumaGridMatchesBGR).
//
// Files and RTSP/HTTP streams decoded by FFmpeg's libraries (avdec.cpp)
// make one for every planar-YUV frame that is not turned by a display
// matrix; other sources and formats leave W == 0, and the consumer works
// from the BGR frame instead.
type LumaGrid struct {
	W, H int
	Pix  []uint8 // W·H cells, row by row
}

// Empty reports whether g holds no grid.
func (g LumaGrid) Empty() bool { return g.W <= 0 || g.H <= 0 || len(g.Pix) < g.W*g.H }

// lumaCap is the largest grid a source makes: room for 160×160 cells.
const lumaCap = 160 * 160

// lumaReader is a capture that can make a frame's LumaGrid as it decodes
// it; grid is the thread CPU time the grid took, which is not decoding.
type lumaReader interface {
	ReadLuma(m *gocv.Mat, g *LumaGrid, spec GridSpec) (ok bool, grid time.Duration)
}
