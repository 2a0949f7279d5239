package capture

/*
#cgo CXXFLAGS: --std=c++11
#include "pool.h"
*/
import "C"

import (
	"sync"
	"unsafe"

	"gocv.io/x/gocv"
)

// matPool keeps the Mats of closed frames for the source's next reads. A
// 720p BGR frame is 2.7 MB: freed and allocated again on every frame,
// glibc handed its pages back to the kernel and faulted fresh zeroed ones
// in, one per 4 KiB, 25 times a second per camera (docs/performance.md:
// page faults and decode time over the bench clip, with and without). A
// decoder writing into a pooled Mat of the same size allocates nothing.
//
// A Mat goes back only while its pixels are its own: one whose data a
// Region or header still shares (OpenCV's refcount above 1) is closed, so
// a consumer that kept a view past Close never sees the next frame in it.
type matPool struct {
	mu     sync.Mutex
	free   []gocv.Mat
	lumas  [][]uint8 // LumaGrid buffers of closed frames
	max    int
	closed bool
}

func newMatPool(size int) *matPool { return &matPool{max: size} }

// get is a pooled Mat, or a new empty one.
func (p *matPool) get() gocv.Mat {
	if p != nil {
		p.mu.Lock()
		defer p.mu.Unlock()
		if n := len(p.free); n > 0 {
			m := p.free[n-1]
			p.free = p.free[:n-1]
			return m
		}
	}
	return gocv.NewMat()
}

// put takes m back, or closes it when the pool is full, closed, or m's
// pixels are shared.
func (p *matPool) put(m gocv.Mat) {
	if m.Ptr() == nil {
		return
	}
	if p != nil && C.edgemo_mat_sole(unsafe.Pointer(m.Ptr())) != 0 {
		p.mu.Lock()
		if !p.closed && len(p.free) < p.max {
			p.free = append(p.free, m)
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
	}
	m.Close()
}

// luma is a pooled grid buffer (nil: the reader makes one).
func (p *matPool) luma() LumaGrid {
	if p == nil {
		return LumaGrid{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n := len(p.lumas); n > 0 {
		b := p.lumas[n-1]
		p.lumas = p.lumas[:n-1]
		return LumaGrid{Pix: b}
	}
	return LumaGrid{}
}

// putLuma takes a grid buffer back while the pool has room.
func (p *matPool) putLuma(b []uint8) {
	if p == nil || cap(b) == 0 {
		return
	}
	p.mu.Lock()
	if !p.closed && len(p.lumas) < p.max {
		p.lumas = append(p.lumas, b[:cap(b)])
	}
	p.mu.Unlock()
}

// close frees the pooled Mats; Mats put after it are closed.
func (p *matPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, m := range p.free {
		m.Close()
	}
	p.free, p.lumas = nil, nil
}

// size is the Mats held, for tests.
func (p *matPool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.free)
}
