package videmo

import (
	"fmt"
)

// Positions are M-RoPE position ids of a token sequence: rows temporal,
// height, width; each row has one entry per token.
type Positions [3][]int64

// Len is the number of tokens.
func (p Positions) Len() int { return len(p[0]) }

// Pack3BS lays the positions out for a position_ids input of shape
// [3, 1, S] (ORT-GenAI's builder), row-major.
func (p Positions) Pack3BS() []int64 {
	n := p.Len()
	out := make([]int64, 3*n)
	for r := range 3 {
		copy(out[r*n:], p[r])
	}
	return out
}

// PackBS3 lays the positions out for shape [1, S, 3].
func (p Positions) PackBS3() []int64 {
	n := p.Len()
	out := make([]int64, 3*n)
	for i := range n {
		for r := range 3 {
			out[i*3+r] = p[r][i]
		}
	}
	return out
}

// RopeIndex is the video branch of transformers'
// Qwen2_5_VLForConditionalGeneration.get_rope_index (and vLLM's
// MRotaryEmbedding for qwen2.5-vl) for one sequence without padding:
//
//   - text tokens get t = h = w = a running index, starting at 0 or at the
//     previous span's maximum + 1;
//   - the i-th <|video_pad|> run (the i-th <|vision_start|> followed by a
//     pad) covers grids[i] = (T, H, W) patches, i.e. T × H/m × W/m tokens in
//     (t, h, w) row-major order, with
//     t = trunc(float32(g · second_per_grid_t) · tokens_per_second) for
//     temporal group g (float32 as torch computes it, truncated, not
//     rounded), h and w the merged row and column, all three offset by the
//     index the span starts at;
//   - ropeDelta = max position + 1 − len(ids), so that any token after the
//     last span at cache index k has position k + ropeDelta.
//
// transformers ≥ 4.51 first casts second_per_grid_t to int64 (torch.as_tensor
// with the arange's dtype), which truncates non-integer values (0.5 → 0);
// vLLM — which VidEmo's inference script uses — and transformers 4.49/4.50
// do not. This follows vLLM; the two agree whenever second_per_grid_t is an
// integer (1.0 for any window sampled at the target 2 fps).
func RopeIndex(ids []int, tok TokenIDs, grids [][3]int, secondPerGridT []float64, cfg PreprocessConfig) (Positions, int64, error) {
	var pos Positions
	for r := range 3 {
		pos[r] = make([]int64, len(ids))
	}
	m := cfg.MergeSize
	if m <= 0 {
		return pos, 0, fmt.Errorf("videmo: merge_size must be > 0, got %d", m)
	}
	if secondPerGridT != nil && len(secondPerGridT) != len(grids) {
		return pos, 0, fmt.Errorf("videmo: %d second_per_grid_t for %d videos", len(secondPerGridT), len(grids))
	}
	nvideos := 0
	for i := 0; i+1 < len(ids); i++ {
		if ids[i] == tok.VisionStart && ids[i+1] == tok.VideoPad {
			nvideos++
		}
	}
	if nvideos != len(grids) {
		return pos, 0, fmt.Errorf("videmo: %d video spans in the ids but %d grids", nvideos, len(grids))
	}

	var next int64 // first position of the next text run: previous max + 1
	var maxPos int64 = -1
	st := 0
	setText := func(from, to int) {
		for k := from; k < to; k++ {
			p := next + int64(k-from)
			pos[0][k], pos[1][k], pos[2][k] = p, p, p
			maxPos = max(maxPos, p)
		}
	}
	for v, g := range grids {
		ed := -1
		for k := st; k < len(ids); k++ {
			if ids[k] == tok.VideoPad {
				ed = k
				break
			}
		}
		if ed < 0 {
			return pos, 0, fmt.Errorf("videmo: video %d: no <|video_pad|> after index %d", v, st)
		}
		gt, gh, gw := g[0], g[1]/m, g[2]/m
		if gt <= 0 || gh <= 0 || gw <= 0 || g[1]%m != 0 || g[2]%m != 0 {
			return pos, 0, fmt.Errorf("videmo: video %d: bad grid %v for merge %d", v, g, m)
		}
		n := gt * gh * gw
		if ed+n > len(ids) {
			return pos, 0, fmt.Errorf("videmo: video %d: grid %v needs %d pads from index %d, ids end at %d", v, g, n, ed, len(ids))
		}
		for k := ed; k < ed+n; k++ {
			if ids[k] != tok.VideoPad {
				return pos, 0, fmt.Errorf("videmo: video %d: grid %v needs %d pads from index %d, found %d", v, g, n, ed, k-ed)
			}
		}
		spg := 1.0
		if secondPerGridT != nil {
			spg = secondPerGridT[v]
		}
		setText(st, ed)
		base := next + int64(ed-st)
		k := ed
		for ti := range gt {
			t := base + temporalIndex(ti, spg, cfg.TokensPerSecond)
			for hi := range gh {
				for wi := range gw {
					pos[0][k], pos[1][k], pos[2][k] = t, base+int64(hi), base+int64(wi)
					maxPos = max(maxPos, t, base+int64(hi), base+int64(wi))
					k++
				}
			}
		}
		next = maxPos + 1
		st = ed + n
	}
	setText(st, len(ids))
	return pos, maxPos + 1 - int64(len(ids)), nil
}

// temporalIndex is torch's (arange(T) · second_per_grid_t · tokens_per_second).long()
// for one group: int64 tensor times Python floats gives float32, .long()
// truncates. second_per_grid_t reaches the model as a float32 tensor value.
func temporalIndex(g int, secondPerGridT, tokensPerSecond float64) int64 {
	x := float32(float32(g) * float32(secondPerGridT))
	return int64(float32(x * float32(tokensPerSecond)))
}

// TextPositions are the positions of n text tokens at KV-cache indices
// start … start+n−1 of a sequence whose video spans all lie before start:
// every row is index + ropeDelta. A question suffix branched off a shared
// prefix uses start = len(prefix) and the prefix's ropeDelta (appending
// text does not change the delta); decoding uses DecodePositions.
func TextPositions(start, n int, ropeDelta int64) Positions {
	var p Positions
	for r := range 3 {
		p[r] = make([]int64, n)
		for i := range n {
			p[r][i] = int64(start+i) + ropeDelta
		}
	}
	return p
}

// DecodePositions is the position of the token fed at a decode step when
// the KV cache already holds cacheLen tokens: all three rows are
// cacheLen + ropeDelta.
func DecodePositions(cacheLen int, ropeDelta int64) [3]int64 {
	p := int64(cacheLen) + ropeDelta
	return [3]int64{p, p, p}
}
