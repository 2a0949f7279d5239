package videmo

import (
	"slices"
	"testing"
)

var qwenTokens = TokenIDs{ImStart: 151644, ImEnd: 151645, VisionStart: 151652, VisionEnd: 151653, VideoPad: 151656}

func pads(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = qwenTokens.VideoPad
	}
	return out
}

func seq(parts ...[]int) []int { return slices.Concat(parts...) }

func TestRopeIndexHand(t *testing.T) {
	cfg := DefaultPreprocess() // merge 2, tokens_per_second 2
	VS, VE := qwenTokens.VisionStart, qwenTokens.VisionEnd
	// 3 text tokens (the last is <|vision_start|>), a (2, 4, 6) video → merged
	// 2×3 per temporal group → 12 pads, then 2 text tokens.
	ids := seq([]int{10, 11, VS}, pads(12), []int{VE, 12})
	pos, delta, err := RopeIndex(ids, qwenTokens, [][3]int{{2, 4, 6}}, []float64{1.0}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Text 0, 1, 2. Video starts at index 3: t = 3 + floor(g·1.0·2) = 3, 5;
	// h = 3 + {0, 1}; w = 3 + {0, 1, 2}. Max = 5, so <|vision_end|> is 6 and
	// the last token 7. rope_delta = 7 + 1 − 17 = −9.
	want := Positions{
		{0, 1, 2, 3, 3, 3, 3, 3, 3, 5, 5, 5, 5, 5, 5, 6, 7},
		{0, 1, 2, 3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4, 6, 7},
		{0, 1, 2, 3, 4, 5, 3, 4, 5, 3, 4, 5, 3, 4, 5, 6, 7},
	}
	for r := range 3 {
		if !slices.Equal(pos[r], want[r]) {
			t.Errorf("row %d = %v\nwant     %v", r, pos[r], want[r])
		}
	}
	if delta != -9 {
		t.Errorf("rope_delta = %d, want -9", delta)
	}
	// Decoding after the 17 prompt tokens: 17 − 9 = 8 = last position + 1.
	if got := DecodePositions(17, delta); got != [3]int64{8, 8, 8} {
		t.Errorf("DecodePositions(17) = %v, want 8s", got)
	}
	if got := DecodePositions(20, delta); got != [3]int64{11, 11, 11} {
		t.Errorf("DecodePositions(20) = %v, want 11s", got)
	}
	// Packing for [3, 1, S] and [1, S, 3].
	if p := pos.Pack3BS(); p[17] != 0 || p[17+6] != 4 || p[34+4] != 4 {
		t.Errorf("Pack3BS: %v", p)
	}
	if p := pos.PackBS3(); !slices.Equal(p[9:12], []int64{3, 3, 3}) || !slices.Equal(p[12:15], []int64{3, 3, 4}) {
		t.Errorf("PackBS3: %v", p[:15])
	}
}

func TestRopeIndexTemporalScaling(t *testing.T) {
	cfg := DefaultPreprocess()
	VS, VE := qwenTokens.VisionStart, qwenTokens.VisionEnd
	// Grid (4, 2, 2): one merged token per temporal group. second_per_grid_t
	// 0.375 × 2 tokens/s = 0.75 per group: floor gives 0, 0, 1, 2 (0, 0.75,
	// 1.5, 2.25); rounding would give 0, 1, 2, 2 — VidEmo's runtime floors.
	ids := seq([]int{VS}, pads(4), []int{VE})
	pos, delta, err := RopeIndex(ids, qwenTokens, [][3]int{{4, 2, 2}}, []float64{0.375}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 1, 1, 2, 3, 4}; !slices.Equal(pos[0], want) {
		t.Errorf("t row = %v, want %v", pos[0], want)
	}
	if want := []int64{0, 1, 1, 1, 1, 4}; !slices.Equal(pos[1], want) || !slices.Equal(pos[2], want) {
		t.Errorf("h/w rows = %v %v, want %v", pos[1], pos[2], want)
	}
	if delta != 5-6 {
		t.Errorf("delta = %d, want -1", delta)
	}
	// A 16 s window at 4 fps samples 16 of 64 frames: sample fps 1,
	// second_per_grid_t 2 → t = 4g (g = 0, 1, 2).
	ids = seq([]int{VS}, pads(3), []int{VE})
	pos, delta, err = RopeIndex(ids, qwenTokens, [][3]int{{3, 2, 2}}, []float64{2}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{0, 1, 5, 9, 10}; !slices.Equal(pos[0], want) || delta != 11-5 {
		t.Errorf("spg 2: t row = %v delta %d, want %v delta 6", pos[0], delta, want)
	}
	// No second_per_grid_ts: transformers uses 1.0.
	ids = seq([]int{VS}, pads(2), []int{VE})
	pos, _, err = RopeIndex(ids, qwenTokens, [][3]int{{2, 2, 2}}, nil, cfg)
	if want := []int64{0, 1, 3, 4}; err != nil || !slices.Equal(pos[0], want) {
		t.Errorf("nil spg: t row = %v (%v), want %v", pos[0], err, want)
	}
}

func TestRopeIndexTextOnlyAndErrors(t *testing.T) {
	cfg := DefaultPreprocess()
	pos, delta, err := RopeIndex([]int{5, 6, 7}, qwenTokens, nil, nil, cfg)
	if err != nil || delta != 0 || !slices.Equal(pos[1], []int64{0, 1, 2}) {
		t.Errorf("text only: %v %d %v", pos, delta, err)
	}
	VS, VE := qwenTokens.VisionStart, qwenTokens.VisionEnd
	ids := seq([]int{VS}, pads(11), []int{VE})
	if _, _, err := RopeIndex(ids, qwenTokens, [][3]int{{2, 4, 6}}, []float64{1}, cfg); err == nil {
		t.Error("11 pads for a 12-token grid accepted")
	}
	if _, _, err := RopeIndex(ids, qwenTokens, nil, nil, cfg); err == nil {
		t.Error("video span without a grid accepted")
	}
	if _, _, err := RopeIndex(seq([]int{VS}, pads(12)), qwenTokens, [][3]int{{2, 4, 6}}, []float64{1, 1}, cfg); err == nil {
		t.Error("two second_per_grid_t for one video accepted")
	}
}

// byteEncoder stands in for the tokenizer: one id per byte, offset 1000.
func byteEncoder(s string) []int {
	out := make([]int, len(s))
	for i := range len(s) {
		out[i] = 1000 + int(s[i])
	}
	return out
}

func TestTemplateAndBranchedPositions(t *testing.T) {
	cfg := DefaultPreprocess()
	tk := qwenTokens
	tpl := Template{System: "S", Tokens: tk}
	p, err := tpl.Build(byteEncoder, 12, "Q?", "")
	if err != nil {
		t.Fatal(err)
	}
	e := byteEncoder
	wantPrefix := seq([]int{tk.ImStart}, e("system\nS"), []int{tk.ImEnd}, e("\n"),
		[]int{tk.ImStart}, e("user\n"), []int{tk.VisionStart}, pads(12), []int{tk.VisionEnd})
	if !slices.Equal(p.Prefix, wantPrefix) {
		t.Fatalf("prefix = %v\nwant     %v", p.Prefix, wantPrefix)
	}
	// <|im_start|> system\nS(8) <|im_end|> \n <|im_start|> user\n(5) → 17.
	if p.VisionStart != 17 || p.VideoStart != 18 || p.VideoEnd != 30 || p.Prefix[p.VideoEnd] != tk.VisionEnd {
		t.Errorf("spans %d %d %d", p.VisionStart, p.VideoStart, p.VideoEnd)
	}
	wantSuffix := seq(e("Q?"), []int{tk.ImEnd}, e("\n"), []int{tk.ImStart}, e("assistant\n"))
	if !slices.Equal(p.Suffixes[0], wantSuffix) {
		t.Errorf("suffix = %v\nwant     %v", p.Suffixes[0], wantSuffix)
	}
	if !slices.Equal(p.Suffixes[1], wantSuffix[2:]) {
		t.Errorf("empty question suffix = %v", p.Suffixes[1])
	}

	// Branching: positions of the prefix once, then each suffix continues at
	// cache index len(prefix) with the prefix's delta — identical to
	// computing the whole sequence at once.
	grid := [][3]int{{2, 4, 6}}
	pre, dPre, err := RopeIndex(p.Prefix, tk, grid, []float64{1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Video at 18: t 18/20, h 18..19, w 18..20 → <|vision_end|> at 21;
	// delta = 22 − 31 = −9.
	if dPre != -9 || pre[0][30] != 21 {
		t.Errorf("prefix delta %d, vision_end at %d", dPre, pre[0][30])
	}
	for i := range p.Suffixes {
		full := p.Full(i)
		all, dAll, err := RopeIndex(full, tk, grid, []float64{1}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		suf := TextPositions(len(p.Prefix), len(p.Suffixes[i]), dPre)
		for r := range 3 {
			got := slices.Concat(pre[r], suf[r])
			if !slices.Equal(got, all[r]) {
				t.Errorf("question %d row %d: branched %v != whole %v", i, r, got, all[r])
			}
		}
		if dAll != dPre {
			t.Errorf("question %d: whole delta %d != prefix delta %d", i, dAll, dPre)
		}
		// First suffix token: 31 − 9 = 22.
		if suf[0][0] != 22 {
			t.Errorf("question %d starts at %d, want 22", i, suf[0][0])
		}
	}

	if _, err := tpl.Build(nil, 12, "q"); err == nil {
		t.Error("nil encoder accepted")
	}
	if _, err := tpl.Build(byteEncoder, 0, "q"); err == nil {
		t.Error("zero video tokens accepted")
	}
	// No system turn.
	p, _ = Template{Tokens: tk}.Build(byteEncoder, 1, "q")
	if p.Prefix[0] != tk.ImStart || p.VisionStart != 6 {
		t.Errorf("no-system prefix %v", p.Prefix)
	}
}
