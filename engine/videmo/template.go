package videmo

import (
	"errors"
	"fmt"
)

// TokenIDs are the special tokens the prompt and the position ids need; the
// manifest supplies them (Qwen2.5-VL: im_start 151644, im_end 151645,
// vision_start 151652, vision_end 151653, video_pad 151656).
type TokenIDs struct {
	ImStart     int `json:"im_start"`
	ImEnd       int `json:"im_end"`
	VisionStart int `json:"vision_start"`
	VisionEnd   int `json:"vision_end"`
	VideoPad    int `json:"video_pad"`
}

// Encoder turns plain text (no special tokens) into token ids. The Qwen2
// tokenizer splits its input at special tokens before BPE, so encoding the
// text between special tokens separately is exactly what it does to the
// whole prompt.
type Encoder func(string) []int

// Template is VidEmo's ChatML prompt around one video (ms-swift's qwen2_5_vl
// template, the same as Qwen2.5-VL's chat template):
//
//	<|im_start|>system\n{System}<|im_end|>\n
//	<|im_start|>user\n<|vision_start|><|video_pad|>×n<|vision_end|>{question}<|im_end|>\n
//	<|im_start|>assistant\n
//
// An empty System leaves the system turn out.
type Template struct {
	System string
	Tokens TokenIDs
}

// DefaultSystem is Qwen2.5-VL's (and ms-swift's) default system prompt.
const DefaultSystem = "You are a helpful assistant."

// Prompt is a tokenised prompt split for prefix sharing: Prefix (system turn,
// user turn up to and including <|vision_end|>) is prefilled once per
// window; each question's Suffix ("{question}<|im_end|>\n<|im_start|>assistant\n")
// is prefilled on a branch of the prefix's KV cache.
type Prompt struct {
	Prefix   []int
	Suffixes [][]int
	// VisionStart is the index in Prefix of <|vision_start|>; the video pads
	// are Prefix[VideoStart:VideoEnd] (the rows the vision features go to),
	// and Prefix[VideoEnd] is <|vision_end|>.
	VisionStart, VideoStart, VideoEnd int
}

// Full returns Prefix followed by Suffixes[i] (a fresh slice).
func (p *Prompt) Full(i int) []int {
	out := make([]int, 0, len(p.Prefix)+len(p.Suffixes[i]))
	return append(append(out, p.Prefix...), p.Suffixes[i]...)
}

// Build tokenises the prompt for a video of videoTokens <|video_pad|> tokens
// (Video.Tokens: GridT·GridH·GridW / merge²) and the given questions.
func (t Template) Build(enc Encoder, videoTokens int, questions ...string) (*Prompt, error) {
	if enc == nil {
		return nil, errors.New("videmo: template needs a text encoder")
	}
	if videoTokens <= 0 {
		return nil, fmt.Errorf("videmo: template needs video tokens, got %d", videoTokens)
	}
	tk := t.Tokens
	var pre []int
	if t.System != "" {
		pre = append(pre, tk.ImStart)
		pre = append(pre, enc("system\n"+t.System)...)
		pre = append(pre, tk.ImEnd)
		pre = append(pre, enc("\n")...)
	}
	pre = append(pre, tk.ImStart)
	pre = append(pre, enc("user\n")...)
	p := &Prompt{VisionStart: len(pre)}
	pre = append(pre, tk.VisionStart)
	p.VideoStart = len(pre)
	for range videoTokens {
		pre = append(pre, tk.VideoPad)
	}
	p.VideoEnd = len(pre)
	pre = append(pre, tk.VisionEnd)
	p.Prefix = pre

	nl, asst := enc("\n"), enc("assistant\n")
	for _, q := range questions {
		var s []int
		if q != "" {
			s = append(s, enc(q)...)
		}
		s = append(s, tk.ImEnd)
		s = append(s, nl...)
		s = append(s, tk.ImStart)
		s = append(s, asst...)
		p.Suffixes = append(p.Suffixes, s)
	}
	return p, nil
}
