package videmo

import "golang.org/x/sys/cpu"

var haveVectorArgmax = cpu.X86.HasAVX2

// maxVec is the largest non-NaN value of v (-Inf if none); AVX2.
//
//go:noescape
func maxVec(v []float32) float32

// findVec is the first index i with v[i] == x, or -1; AVX2.
//
//go:noescape
func findVec(v []float32, x float32) int
