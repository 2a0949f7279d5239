package videmo

import "math"

// argmax is the index of the largest value of v, the first one on ties; NaNs
// are never chosen; 0 when v is empty or holds only NaNs.
//
// Greedy decoding scans the whole vocabulary (151,936 logits for Qwen) every
// token, which on a small decoder is a visible share of the step: it runs as
// two vector passes where the CPU has them (the maximum, then the first
// index holding it) and as a four-lane scalar scan elsewhere.
func argmax(v []float32) int {
	if !haveVectorArgmax || len(v) < 64 {
		return argmaxScalar(v)
	}
	// One pass over the logits, which the decoder has just written (often
	// from another core's cache): the maximum of each block, then the first
	// index of the best block's maximum inside that block only.
	const block = 2048
	best, at := negInf, -1
	for b := 0; b < len(v); b += block {
		if m := maxVec(v[b:min(b+block, len(v))]); m > best || at < 0 {
			best, at = m, b
		}
	}
	if i := findVec(v[at:min(at+block, len(v))], best); i >= 0 {
		return at + i
	}
	return argmaxScalar(v) // NaNs and -Inf only: rare, keep it simple
}

// argmaxScalar keeps four independent running maxima so the CPU can compare
// in parallel. A lane takes its first non-NaN value, then only larger ones;
// a NaN never wins a comparison.
func argmaxScalar(v []float32) int {
	const lanes = 4
	var bv [lanes]float32
	var bi [lanes]int
	for l := range bv {
		bv[l], bi[l] = negInf, -1
	}
	i := 0
	for ; i+lanes <= len(v); i += lanes {
		x := v[i : i+lanes : i+lanes]
		if x[0] > bv[0] || bi[0] < 0 && x[0] == x[0] {
			bv[0], bi[0] = x[0], i
		}
		if x[1] > bv[1] || bi[1] < 0 && x[1] == x[1] {
			bv[1], bi[1] = x[1], i+1
		}
		if x[2] > bv[2] || bi[2] < 0 && x[2] == x[2] {
			bv[2], bi[2] = x[2], i+2
		}
		if x[3] > bv[3] || bi[3] < 0 && x[3] == x[3] {
			bv[3], bi[3] = x[3], i+3
		}
	}
	best, bestV := -1, negInf
	for l := range lanes {
		if bi[l] < 0 {
			continue
		}
		if best < 0 || bv[l] > bestV || bv[l] == bestV && bi[l] < best {
			best, bestV = bi[l], bv[l]
		}
	}
	for ; i < len(v); i++ {
		if v[i] > bestV || best < 0 && v[i] == v[i] {
			best, bestV = i, v[i]
		}
	}
	if best < 0 {
		return 0
	}
	return best
}

var negInf = float32(math.Inf(-1))
