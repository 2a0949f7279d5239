package videmo

import (
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// Qwen2.5-VL's geometry: merge 2, patch 14, window 112 px (4 merged tokens).
const tMerge, tPatch, tWindow = 2, 14, 112

// permute is torch's x.reshape(shape).permute(perm).flatten() on a flat
// C-order array: the ports below use it to follow transformers' tensor code
// step by step rather than re-deriving its loops.
func permute(x []int64, shape, perm []int) []int64 {
	strides := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		strides[i] = s
		s *= shape[i]
	}
	if s != len(x) {
		panic("permute: shape does not match the data")
	}
	out := make([]int64, 0, len(x))
	idx := make([]int, len(shape)) // over the permuted dims
	for range x {
		off := 0
		for k, p := range perm {
			off += idx[k] * strides[p]
		}
		out = append(out, x[off])
		for k := len(perm) - 1; k >= 0; k-- {
			if idx[k]++; idx[k] < shape[perm[k]] {
				break
			}
			idx[k] = 0
		}
	}
	return out
}

// rotPosEmbPort is transformers 4.49
// Qwen2_5_VisionTransformerPretrainedModel.rot_pos_emb's pos_ids:
//
//	hpos = arange(h).unsqueeze(1).expand(-1, w)
//	hpos = hpos.reshape(h//m, m, w//m, m).permute(0, 2, 1, 3).flatten()
//	wpos = arange(w).unsqueeze(0).expand(h, -1) (same reshape)
//	pos_ids.append(stack([hpos, wpos], -1).repeat(t, 1))
func rotPosEmbPort(grids [][3]int, m int) []int64 {
	var out []int64
	for _, g := range grids {
		t, h, w := g[0], g[1], g[2]
		hp, wp := make([]int64, h*w), make([]int64, h*w)
		for y := range h {
			for x := range w {
				hp[y*w+x], wp[y*w+x] = int64(y), int64(x)
			}
		}
		shape, perm := []int{h / m, m, w / m, m}, []int{0, 2, 1, 3}
		hp, wp = permute(hp, shape, perm), permute(wp, shape, perm)
		for range t {
			for i := range hp {
				out = append(out, hp[i], wp[i])
			}
		}
	}
	return out
}

// getWindowIndexPort is transformers 4.49 get_window_index followed by the
// forward's torch.unique_consecutive(cu_window_seqlens): window_index over
// merge units and the cumulative window lengths in patches.
func getWindowIndexPort(grids [][3]int, m, patch, windowSize int) (windowIndex, cu []int64) {
	vm := windowSize / m / patch
	cu = []int64{0}
	var id int64
	for _, g := range grids {
		gt, lh, lw := g[0], g[1]/m, g[2]/m
		padH, padW := vm-lh%vm, vm-lw%vm
		nwh, nww := (lh+padH)/vm, (lw+padW)/vm
		// index = arange(t·lh·lw).reshape(t, lh, lw), F.pad(..., -100)
		ph, pw := lh+padH, lw+padW
		padded := make([]int64, gt*ph*pw)
		for i := range padded {
			padded[i] = -100
		}
		for t := range gt {
			for y := range lh {
				for x := range lw {
					padded[(t*ph+y)*pw+x] = int64((t*lh+y)*lw + x)
				}
			}
		}
		// reshape(t, nwh, vm, nww, vm).permute(0, 1, 3, 2, 4).reshape(t, nwh·nww, vm, vm)
		win := permute(padded, []int{gt, nwh, vm, nww, vm}, []int{0, 1, 3, 2, 4})
		for w := 0; w < gt*nwh*nww; w++ {
			var n int64
			for _, u := range win[w*vm*vm : (w+1)*vm*vm] {
				if u != -100 {
					windowIndex = append(windowIndex, u+id)
					n++
				}
			}
			cu = append(cu, cu[len(cu)-1]+n*int64(m*m))
		}
		id += int64(gt * lh * lw)
	}
	// unique_consecutive
	uq := cu[:1]
	for _, c := range cu[1:] {
		if c != uq[len(uq)-1] {
			uq = append(uq, c)
		}
	}
	return windowIndex, uq
}

// groups returns the real entries of each row of a padded grouping, after
// checking the padding (index 0, mask lowest), that every patch appears
// exactly once and that inverse inverts index.
func groups(t *testing.T, what string, index []int64, mask []float32, inverse []int64, g, l, n int) [][]int64 {
	t.Helper()
	if len(index) != g*l || len(mask) != g*l || len(inverse) != n {
		t.Fatalf("%s: %d index, %d mask, %d inverse entries for [%d, %d] over %d patches", what, len(index), len(mask), len(inverse), g, l, n)
	}
	seen := make([]int, n)
	out := make([][]int64, g)
	for r := range g {
		for j := range l {
			k := r*l + j
			switch mask[k] {
			case 0:
				p := index[k]
				if p < 0 || p >= int64(n) {
					t.Fatalf("%s: index[%d][%d] = %d outside [0, %d)", what, r, j, p, n)
				}
				seen[p]++
				out[r] = append(out[r], p)
				if inverse[p] != int64(k) {
					t.Errorf("%s: inverse[%d] = %d, the patch is at %d", what, p, inverse[p], k)
				}
			case -math.MaxFloat32:
				if index[k] != 0 {
					t.Errorf("%s: padding index[%d][%d] = %d, want 0", what, r, j, index[k])
				}
			default:
				t.Fatalf("%s: mask[%d][%d] = %g, want 0 or float32 lowest", what, r, j, mask[k])
			}
		}
		if len(out[r]) == 0 {
			t.Errorf("%s: group %d is empty", what, r)
		}
		// Real entries first, then padding: a row's length is its count.
		for j := len(out[r]); j < l; j++ {
			if mask[r*l+j] == 0 {
				t.Errorf("%s: row %d has a real entry at %d after padding", what, r, j)
			}
		}
	}
	for p, c := range seen {
		if c != 1 {
			t.Fatalf("%s: patch %d appears %d times", what, p, c)
		}
	}
	return out
}

func sorted(x []int64) []int64 { s := slices.Clone(x); slices.Sort(s); return s }

// checkAgainstTransformers compares vi with the ports of rot_pos_emb,
// get_window_index and cu_seqlens for grids.
func checkAgainstTransformers(t *testing.T, grids [][3]int, vi *VisionInputs) {
	t.Helper()
	n := 0
	var frameLens []int
	for _, g := range grids {
		n += g[0] * g[1] * g[2]
		for range g[0] {
			frameLens = append(frameLens, g[1]*g[2])
		}
	}
	if vi.N != n {
		t.Fatalf("%v: N = %d, want %d", grids, vi.N, n)
	}
	if want := rotPosEmbPort(grids, tMerge); !slices.Equal(vi.PosIDs, want) {
		t.Errorf("%v: pos ids differ from rot_pos_emb's", grids)
	}

	wins := groups(t, "windows", vi.WindowIndex, vi.WindowMask, vi.WindowInverse, vi.Windows, vi.WindowLen, n)
	wi, cu := getWindowIndexPort(grids, tMerge, tPatch, tWindow)
	if len(wins) != len(cu)-1 {
		t.Fatalf("%v: %d windows, transformers has %d", grids, len(wins), len(cu)-1)
	}
	unit := int64(tMerge * tMerge)
	longest := 0
	for g, w := range wins {
		var want []int64
		for _, u := range wi[cu[g]/unit : cu[g+1]/unit] {
			for k := range unit {
				want = append(want, unit*u+k)
			}
		}
		if !slices.Equal(sorted(w), sorted(want)) {
			t.Fatalf("%v: window %d holds %v, transformers' window %d %v", grids, g, w, g, want)
		}
		longest = max(longest, len(w))
	}
	if vi.WindowLen != longest {
		t.Errorf("%v: window length %d, the longest window has %d", grids, vi.WindowLen, longest)
	}

	// cu_seqlens = repeat_interleave(h·w, t).cumsum(0), padded with 0.
	frs := groups(t, "frames", vi.FrameIndex, vi.FrameMask, vi.FrameInverse, vi.Frames, vi.FrameLen, n)
	if len(frs) != len(frameLens) {
		t.Fatalf("%v: %d frame groups, cu_seqlens has %d", grids, len(frs), len(frameLens))
	}
	start := int64(0)
	for g, f := range frs {
		want := make([]int64, frameLens[g])
		for j := range want {
			want[j] = start + int64(j)
		}
		if !slices.Equal(sorted(f), want) {
			t.Fatalf("%v: frame group %d is not patches %d..%d", grids, g, start, start+int64(frameLens[g])-1)
		}
		start += int64(frameLens[g])
	}
	if vi.FrameLen != slices.Max(frameLens) {
		t.Errorf("%v: frame length %d, want %d", grids, vi.FrameLen, slices.Max(frameLens))
	}
}

// The reference README's window counts for the model cases.
func TestVisionWindowsReferenceGrids(t *testing.T) {
	cases := []struct {
		grid  [3]int
		sizes map[int]int // patches per window → windows
	}{
		{[3]int{2, 4, 4}, map[int]int{16: 2}},
		{[3]int{2, 22, 24}, map[int]int{64: 12, 48: 6}},
		{[3]int{4, 8, 10}, map[int]int{64: 4, 16: 4}},
	}
	for _, c := range cases {
		vi, err := NewVisionInputs([][3]int{c.grid}, tMerge, tPatch, tWindow)
		if err != nil {
			t.Fatal(err)
		}
		wins := groups(t, "windows", vi.WindowIndex, vi.WindowMask, vi.WindowInverse, vi.Windows, vi.WindowLen, vi.N)
		got := map[int]int{}
		total := 0
		for _, w := range wins {
			got[len(w)]++
		}
		for _, k := range c.sizes {
			total += k
		}
		if vi.Windows != total || !maps.Equal(got, c.sizes) {
			t.Errorf("grid %v: %d windows by size %v, the reference %d by %v", c.grid, vi.Windows, got, total, c.sizes)
		}
		checkAgainstTransformers(t, [][3]int{c.grid}, vi)
	}
	// Hand-checked [2, 4, 4]: one window per temporal step (2×2 merged
	// tokens fit in 4×4), listing tokens row-major, each its 4 patches.
	vi, _ := NewVisionInputs([][3]int{{2, 4, 4}}, tMerge, tPatch, tWindow)
	if vi.WindowLen != 16 || vi.WindowIndex[0] != 0 || vi.WindowIndex[15] != 15 || vi.WindowIndex[16] != 16 || vi.WindowIndex[31] != 31 {
		t.Errorf("[2,4,4] windows: %v", vi.WindowIndex)
	}
	// Patch 5 is token 1 (merged row 0, column 1), sub-patch (0, 1): row 0,
	// column 3.
	if vi.PosIDs[10] != 0 || vi.PosIDs[11] != 3 {
		t.Errorf("[2,4,4] patch 5 at (%d, %d), want (0, 3)", vi.PosIDs[10], vi.PosIDs[11])
	}
}

// Random grids, alone and concatenated, against the transformers ports.
func TestVisionInputsProperty(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	grid := func() [3]int { return [3]int{1 + rng.IntN(5), 2 * (1 + rng.IntN(20)), 2 * (1 + rng.IntN(20))} }
	for i := range 400 {
		grids := [][3]int{grid()}
		if i%4 == 3 { // several videos concatenated
			for range 1 + rng.IntN(2) {
				grids = append(grids, grid())
			}
		}
		vi, err := NewVisionInputs(grids, tMerge, tPatch, tWindow)
		if err != nil {
			t.Fatalf("%v: %v", grids, err)
		}
		checkAgainstTransformers(t, grids, vi)
		if t.Failed() {
			return
		}
	}
}

func TestVisionInputsErrors(t *testing.T) {
	for _, c := range []struct {
		grids               [][3]int
		merge, patch, wsize int
	}{
		{[][3]int{{2, 5, 4}}, 2, 14, 112}, // H not a multiple of merge
		{[][3]int{{2, 4, 6}}, 4, 14, 112}, // W not a multiple of merge
		{[][3]int{{0, 4, 4}}, 2, 14, 112},
		{[][3]int{{2, -4, 4}}, 2, 14, 112},
		{nil, 2, 14, 112},
		{[][3]int{{2, 4, 4}}, 0, 14, 112},
		{[][3]int{{2, 4, 4}}, 2, 0, 112},
		{[][3]int{{2, 4, 4}}, 2, 14, 0},
		{[][3]int{{2, 4, 4}}, 2, 14, 27}, // below one merged token: vm = 0
	} {
		if _, err := NewVisionInputs(c.grids, c.merge, c.patch, c.wsize); err == nil {
			t.Errorf("NewVisionInputs(%v, %d, %d, %d) accepted", c.grids, c.merge, c.patch, c.wsize)
		}
	}
}

func TestVisionConfigDefaults(t *testing.T) {
	p := DefaultPreprocess()
	if got := (VisionConfig{}).WithDefaults(p); !reflect.DeepEqual(got, VisionConfig{WindowSize: 112, SpatialMergeSize: p.MergeSize, PatchSize: p.PatchSize}) {
		t.Errorf("defaults %+v", got)
	}
	if got := (VisionConfig{WindowSize: 224}).WithDefaults(p); got.WindowSize != 224 {
		t.Errorf("set window size replaced: %+v", got)
	}
	if err := (VisionConfig{WindowSize: 112, SpatialMergeSize: 4, PatchSize: 14}).check(p); err == nil {
		t.Error("a merge size other than the processor's accepted")
	}
}

// visionTensors feeds every known input by name, in the order given, with
// the shapes the graph declares, and names the graph and the input it
// cannot feed.
func TestVisionTensors(t *testing.T) {
	testRuntime(t) // ONNX Runtime loaded
	cfg := DefaultPreprocess()
	v := newVideo(4, 8*14, 10*14, cfg) // grid [2, 8, 10]
	for i := range v.Pixels {
		v.Pixels[i] = float32(i % 97)
	}
	vc := VisionConfig{}.WithDefaults(cfg)
	names := []string{inFrameInverse, inPixelValues, inWindowIndex, inWindowMask, inWindowInverse, inVisionPosIDs, inFrameIndex, inFrameMask, inImageGridTHW}
	vals, free, err := visionTensors("vision.onnx", names, v, vc)
	if err != nil {
		t.Fatal(err)
	}
	defer free()
	vi, err := NewVisionInputs([][3]int{v.Grid()}, vc.SpatialMergeSize, vc.PatchSize, vc.WindowSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(vals) != len(names) {
		t.Fatalf("%d tensors for %d names", len(vals), len(names))
	}
	N := int64(v.N)
	for i, name := range names {
		dt, spec, _ := visionInputSpec(name, cfg.PatchDim())
		shape := vals[i].GetShape()
		if len(shape) != len(spec) {
			t.Errorf("%s: shape %v, the spec %v", name, shape, spec)
		}
		for k := range spec {
			if spec[k] >= 0 && shape[k] != spec[k] {
				t.Errorf("%s: shape %v, the spec %v", name, shape, spec)
			}
		}
		var wantI []int64
		var wantF []float32
		var wantShape []int64
		switch name {
		case inPixelValues:
			wantF, wantShape = v.Pixels, []int64{N, 1176}
		case inImageGridTHW:
			wantI, wantShape = []int64{2, 8, 10}, []int64{1, 3}
		case inVisionPosIDs:
			wantI, wantShape = vi.PosIDs, []int64{N, 2}
		case inWindowIndex:
			wantI, wantShape = vi.WindowIndex, []int64{4, 64} // 2 steps × (4×4 + 4×1 tokens)
		case inWindowMask:
			wantF, wantShape = vi.WindowMask, []int64{4, 64}
		case inWindowInverse:
			wantI, wantShape = vi.WindowInverse, []int64{N}
		case inFrameIndex:
			wantI, wantShape = vi.FrameIndex, []int64{2, 80}
		case inFrameMask:
			wantF, wantShape = vi.FrameMask, []int64{2, 80}
		case inFrameInverse:
			wantI, wantShape = vi.FrameInverse, []int64{N}
		}
		if !slices.Equal([]int64(shape), wantShape) {
			t.Errorf("%s: shape %v, want %v", name, shape, wantShape)
		}
		switch x := vals[i].(type) {
		case *ort.Tensor[int64]:
			if dt != ort.TensorElementDataTypeInt64 || !slices.Equal(x.GetData(), wantI) {
				t.Errorf("%s: int64 data differs (or the spec says %v)", name, dt)
			}
		case *ort.Tensor[float32]:
			if dt != ort.TensorElementDataTypeFloat || !slices.Equal(x.GetData(), wantF) {
				t.Errorf("%s: float32 data differs (or the spec says %v)", name, dt)
			}
		default:
			t.Errorf("%s: %T", name, x)
		}
	}
	if _, _, err := visionTensors("models/x/vision.onnx", []string{inPixelValues, "attention_bias"}, v, vc); err == nil ||
		!strings.Contains(err.Error(), "models/x/vision.onnx") || !strings.Contains(err.Error(), `"attention_bias"`) {
		t.Errorf("unknown input: %v", err)
	}
	bad := v
	bad.GridH = 7 // not a multiple of the merge size
	if _, _, err := visionTensors("vision.onnx", []string{inWindowIndex}, bad, vc); err == nil || !strings.Contains(err.Error(), "vision.onnx") {
		t.Errorf("odd grid: %v", err)
	}
}

// The runner checks the vision graph's inputs by name: unknown, missing and
// repeated names are errors naming the graph, and inputs listed in another
// order still get the right tensors.
func TestVisionInputsByName(t *testing.T) {
	rt := testRuntime(t)
	tk := testTokenizer(t)
	dir := t.TempDir()
	write := func(name string, inputs []string) string {
		return manifestCopy(t, dir, name+".json", func(m map[string]any) {
			m["io"].(map[string]any)["vision"].(map[string]any)["inputs"] = inputs
		})
	}
	// the converter's inputs, in its order
	all := []string{"pixel_values", "vision_pos_ids", "window_index", "window_mask", "window_inverse", "frame_index", "frame_mask", "frame_inverse"}
	open := func(p string) (*Runner, error) {
		return NewRunner(rt, p, tk, Options{Logger: slog.New(slog.DiscardHandler)})
	}
	for _, c := range []struct {
		name   string
		inputs []string
		want   []string
	}{
		{"unknown", append(slices.Clone(all), "colour_lut"), []string{"vision.onnx", `"colour_lut"`}},
		{"absent", append(slices.Clone(all), "image_grid_thw"), []string{"vision.onnx", `"image_grid_thw"`, "has no input"}},
		{"twice", append(slices.Clone(all), "window_mask"), []string{"vision.onnx", "twice"}},
	} {
		r, err := open(write(c.name, c.inputs))
		if err == nil {
			r.Close()
			t.Errorf("%s: opened", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %s", c.name, err, w)
			}
		}
	}

	// Same graph, inputs listed the other way round: the same features.
	features := func(p string) []float32 {
		r, err := open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		f, err := r.visionFeatures(testVideo(t, r))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Destroy()
		return slices.Clone(f.GetData())
	}
	swapped := slices.Clone(all)
	slices.Reverse(swapped[1:]) // pixel_values stays first, as the manifest requires
	a := features(write("ordered", all))
	sw := features(write("swapped", swapped))
	if len(a) == 0 || !slices.Equal(a, sw) {
		t.Errorf("features with the inputs swapped differ (%d vs %d values)", len(a), len(sw))
	}
}
