package videmo

import (
	"errors"
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"
)

// Grid-dependent inputs of the vision graph. Qwen2.5-VL's vision tower
// (transformers 4.49 Qwen2_5_VisionTransformerPretrainedModel) derives, from
// video_grid_thw alone, the 2-D rotary positions of every patch and the
// attention groups of its blocks: windowed blocks attend within windows of
// window_size pixels (get_window_index), full-attention blocks within one
// temporal step (cu_seqlens). Computing them here keeps that data-dependent
// indexing out of the exported graph, which then only gathers, attends with
// an additive mask and scatters back.

// DefaultWindowSize is Qwen2.5-VL's vision_config.window_size (pixels).
const DefaultWindowSize = 112

// VisionConfig is the vision tower's geometry (HF vision_config names). Zero
// fields take the defaults: window_size 112, spatial_merge_size and
// patch_size the preprocessing's merge_size and patch_size.
type VisionConfig struct {
	WindowSize       int `json:"window_size"`
	SpatialMergeSize int `json:"spatial_merge_size"`
	PatchSize        int `json:"patch_size"`
	// The tower's shape, as the converter read it from config.json (the
	// graph has it baked in; kept for doctor and the reader of a manifest).
	Depth               int   `json:"depth,omitempty"`
	Hidden              int   `json:"hidden,omitempty"`
	Heads               int   `json:"heads,omitempty"`
	FullAttBlockIndexes []int `json:"fullatt_block_indexes,omitempty"`
}

// WithDefaults fills zero fields from the defaults and p.
func (c VisionConfig) WithDefaults(p PreprocessConfig) VisionConfig {
	if c.WindowSize == 0 {
		c.WindowSize = DefaultWindowSize
	}
	if c.SpatialMergeSize == 0 {
		c.SpatialMergeSize = p.MergeSize
	}
	if c.PatchSize == 0 {
		c.PatchSize = p.PatchSize
	}
	return c
}

// check reports a geometry the processor's pixel_values cannot be fed to:
// the patch order groups patches by the processor's merge_size, and a patch
// is the processor's patch_size square.
func (c VisionConfig) check(p PreprocessConfig) error {
	if c.SpatialMergeSize != p.MergeSize || c.PatchSize != p.PatchSize {
		return fmt.Errorf("vision spatial_merge_size %d and patch_size %d must equal preprocess merge_size %d and patch_size %d (the pixel_values patch order depends on them)",
			c.SpatialMergeSize, c.PatchSize, p.MergeSize, p.PatchSize)
	}
	if c.WindowSize < c.SpatialMergeSize*c.PatchSize {
		return fmt.Errorf("vision window_size %d is smaller than one merged token (%d×%d pixels)", c.WindowSize, c.SpatialMergeSize, c.PatchSize)
	}
	return nil
}

// VisionInputs are the grid-dependent vision graph inputs for a list of
// videos whose patches are concatenated in the processor's order (rows of
// pixel_values). Index matrices are row-major, padded with index 0 whose
// mask entry is the float32 lowest value (an additive attention mask: 0 for
// real entries); Inverse[n] is where patch n sits in the flattened index
// matrix, to scatter the groups' outputs back to processor order.
type VisionInputs struct {
	N int // patches

	// PosIDs [N, 2]: each patch's (row, column) in patches, transformers'
	// rot_pos_emb pos_ids (hpos, wpos).
	PosIDs []int64

	// Windows of the windowed-attention blocks: WindowIndex and WindowMask
	// [Windows, WindowLen], WindowInverse [N].
	WindowIndex   []int64
	WindowMask    []float32
	WindowInverse []int64
	Windows       int
	WindowLen     int

	// Temporal steps of the full-attention blocks: FrameIndex and FrameMask
	// [Frames, FrameLen], FrameInverse [N].
	FrameIndex   []int64
	FrameMask    []float32
	FrameInverse []int64
	Frames       int
	FrameLen     int
}

// maskPad is the mask value of padding entries: float32's lowest, so that
// padding gets zero weight after softmax without producing inf − inf.
const maskPad = -math.MaxFloat32

// NewVisionInputs computes the vision inputs for grids (T, H, W in
// patches, as video_grid_thw) with spatial merge size merge, patch size
// patch and window size windowSize (pixels).
//
// Windows follow transformers 4.49 get_window_index: per temporal step the
// merged grid (H/merge × W/merge tokens) is tiled from the top left by
// vm × vm tokens, vm = windowSize / merge / patch (4 for Qwen2.5-VL); edge
// windows are smaller; windows are ordered by video, temporal step, window
// row, window column (transformers pads the grid to a multiple of vm and
// then drops the empty windows with unique_consecutive over the cumulative
// lengths, which leaves the same windows in the same order). A window lists
// its merged tokens row-major, each token's merge² patches in processor
// order. Frame groups are transformers' cu_seqlens: temporal step t of a
// video holds its H·W consecutive patches.
func NewVisionInputs(grids [][3]int, merge, patch, windowSize int) (*VisionInputs, error) {
	if merge <= 0 || patch <= 0 || windowSize <= 0 {
		return nil, fmt.Errorf("videmo: vision inputs need merge, patch and window sizes > 0, got %d, %d, %d", merge, patch, windowSize)
	}
	vm := windowSize / merge / patch
	if vm <= 0 {
		return nil, fmt.Errorf("videmo: window size %d is below one merged token (%d·%d pixels)", windowSize, merge, patch)
	}
	if len(grids) == 0 {
		return nil, errors.New("videmo: vision inputs need at least one grid")
	}
	n, frames, frameLen := 0, 0, 0
	for i, g := range grids {
		if g[0] <= 0 || g[1] <= 0 || g[2] <= 0 || g[1]%merge != 0 || g[2]%merge != 0 {
			return nil, fmt.Errorf("videmo: grid %d %v: need positive sizes with H and W multiples of the merge size %d", i, g, merge)
		}
		n += g[0] * g[1] * g[2]
		frames += g[0]
		frameLen = max(frameLen, g[1]*g[2])
	}
	mm := merge * merge
	vi := &VisionInputs{N: n, PosIDs: make([]int64, 0, 2*n)}

	// Windows: first the list of each window's patches, then the padding.
	var wins [][]int64
	winLen := 0
	base := 0 // first patch of the current video
	for _, g := range grids {
		gt, lh, lw := g[0], g[1]/merge, g[2]/merge
		for t := range gt {
			for bh := range lh {
				for bw := range lw {
					for mh := range merge {
						for mw := range merge {
							vi.PosIDs = append(vi.PosIDs, int64(bh*merge+mh), int64(bw*merge+mw))
						}
					}
				}
			}
			for wr := 0; wr < lh; wr += vm {
				for wc := 0; wc < lw; wc += vm {
					var win []int64
					for bh := wr; bh < min(wr+vm, lh); bh++ {
						for bw := wc; bw < min(wc+vm, lw); bw++ {
							u := base + ((t*lh+bh)*lw+bw)*mm // first patch of the merged token
							for k := range mm {
								win = append(win, int64(u+k))
							}
						}
					}
					wins = append(wins, win)
					winLen = max(winLen, len(win))
				}
			}
		}
		base += gt * g[1] * g[2]
	}
	vi.Windows, vi.WindowLen = len(wins), winLen
	vi.WindowIndex, vi.WindowMask, vi.WindowInverse = padGroups(wins, winLen, n)

	// Frames: consecutive runs of H·W patches.
	fr := make([][]int64, 0, frames)
	base = 0
	for _, g := range grids {
		hw := g[1] * g[2]
		for range g[0] {
			f := make([]int64, hw)
			for j := range f {
				f[j] = int64(base + j)
			}
			fr = append(fr, f)
			base += hw
		}
	}
	vi.Frames, vi.FrameLen = frames, frameLen
	vi.FrameIndex, vi.FrameMask, vi.FrameInverse = padGroups(fr, frameLen, n)
	return vi, nil
}

// padGroups lays groups (which together hold each of the n patches once)
// out as a [len(groups), l] index matrix padded with 0, its additive mask
// and the inverse map patch → flat position.
func padGroups(groups [][]int64, l, n int) (index []int64, mask []float32, inverse []int64) {
	index = make([]int64, len(groups)*l)
	mask = make([]float32, len(groups)*l)
	inverse = make([]int64, n)
	for g, grp := range groups {
		row := g * l
		for j, p := range grp {
			index[row+j] = p
			inverse[p] = int64(row + j)
		}
		for j := len(grp); j < l; j++ {
			mask[row+j] = maskPad
		}
	}
	return index, mask, inverse
}

// Vision graph input names the runner knows how to feed.
const (
	inPixelValues   = "pixel_values"
	inImageGridTHW  = "image_grid_thw"
	inVisionPosIDs  = "vision_pos_ids"
	inWindowIndex   = "window_index"
	inWindowMask    = "window_mask"
	inWindowInverse = "window_inverse"
	inFrameIndex    = "frame_index"
	inFrameMask     = "frame_mask"
	inFrameInverse  = "frame_inverse"
)

// visionInputSpec is the element type and shape (−1: any) the runner
// feeds a vision input of that name; ok is false for a name it does not
// know. patchDim is the preprocessing's patch length.
func visionInputSpec(name string, patchDim int) (dt ort.TensorElementDataType, shape []int64, ok bool) {
	F, I := ort.TensorElementDataType(ort.TensorElementDataTypeFloat), ort.TensorElementDataType(ort.TensorElementDataTypeInt64)
	switch name {
	case inPixelValues:
		return F, []int64{-1, int64(patchDim)}, true
	case inImageGridTHW:
		return I, []int64{-1, 3}, true
	case inVisionPosIDs:
		return I, []int64{-1, 2}, true
	case inWindowIndex, inFrameIndex:
		return I, []int64{-1, -1}, true
	case inWindowMask, inFrameMask:
		return F, []int64{-1, -1}, true
	case inWindowInverse, inFrameInverse:
		return I, []int64{-1}, true
	}
	return 0, nil, false
}

// needsVisionInputs reports whether any of names is a grid-dependent input
// NewVisionInputs computes.
func needsVisionInputs(names []string) bool {
	for _, n := range names {
		switch n {
		case inVisionPosIDs, inWindowIndex, inWindowMask, inWindowInverse, inFrameIndex, inFrameMask, inFrameInverse:
			return true
		}
	}
	return false
}

// visionTensors builds the vision graph's inputs for video v, one per name
// in names (the graph's Run order). free destroys them all; on an error
// nothing is left to free. graph names the file in errors.
func visionTensors(graph string, names []string, v *Video, vc VisionConfig) (vals []ort.Value, free func(), err error) {
	var made []ort.Value
	destroy := func() {
		for _, t := range made {
			t.Destroy()
		}
		made = nil
	}
	defer func() {
		if err != nil {
			destroy()
		}
	}()
	var vi *VisionInputs
	if needsVisionInputs(names) {
		if vi, err = NewVisionInputs([][3]int{v.Grid()}, vc.SpatialMergeSize, vc.PatchSize, vc.WindowSize); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", graph, err)
		}
	}
	N := int64(v.N)
	for _, name := range names {
		var x ort.Value
		switch name {
		case inPixelValues:
			x, err = newTensor(v.Pixels, N, int64(v.Dim))
		case inImageGridTHW:
			x, err = newTensor([]int64{int64(v.GridT), int64(v.GridH), int64(v.GridW)}, 1, 3)
		case inVisionPosIDs:
			x, err = newTensor(vi.PosIDs, N, 2)
		case inWindowIndex:
			x, err = newTensor(vi.WindowIndex, int64(vi.Windows), int64(vi.WindowLen))
		case inWindowMask:
			x, err = newTensor(vi.WindowMask, int64(vi.Windows), int64(vi.WindowLen))
		case inWindowInverse:
			x, err = newTensor(vi.WindowInverse, N)
		case inFrameIndex:
			x, err = newTensor(vi.FrameIndex, int64(vi.Frames), int64(vi.FrameLen))
		case inFrameMask:
			x, err = newTensor(vi.FrameMask, int64(vi.Frames), int64(vi.FrameLen))
		case inFrameInverse:
			x, err = newTensor(vi.FrameInverse, N)
		default:
			return nil, nil, fmt.Errorf("%s: vision input %q is not one the runner can feed", graph, name)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: input %q: %w", graph, name, err)
		}
		made = append(made, x)
		vals = append(vals, x)
	}
	return vals, destroy, nil
}

// newTensor wraps data (not copied) as a tensor of the given shape.
func newTensor[T ort.TensorData](data []T, shape ...int64) (ort.Value, error) {
	t, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		return nil, err
	}
	return t, nil
}
