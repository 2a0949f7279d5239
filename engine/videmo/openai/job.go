package openai

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/edgemo/edgemo/engine/tokenizer"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
)

// job is a validated request: one video (its frames' base64), the system
// prompt, the question and the sampling settings.
type job struct {
	system      string
	frames      []string
	question    string
	maxTokens   int
	gen         videmo.GenConfig
	seed        *int64
	logprobs    bool
	topLogprobs int
}

// parse validates req against the subset served: an optional system
// message, then one user message whose content is video/image parts and
// text (a single turn: the runner answers one question per prefix).
func (s *Server) parse(req *ChatRequest) (*job, error) {
	if req.Model != "" && req.Model != s.cfg.Model {
		return nil, &httpError{404, fmt.Sprintf("the model `%s` does not exist; this server serves `%s` (GET /v1/models)", req.Model, s.cfg.Model)}
	}
	if req.N != nil && *req.N != 1 {
		return nil, badRequest("n: %d: only n=1 is served", *req.N)
	}
	m := s.r.Manifest()
	j := &job{system: videmo.DefaultSystem, gen: m.Generation}
	users := 0
	for i, msg := range req.Messages {
		parts, err := msg.Parts()
		if err != nil {
			return nil, badRequest("messages[%d]: %v", i, err)
		}
		switch msg.Role {
		case "system":
			if i != 0 {
				return nil, badRequest("messages[%d]: a system message must come first", i)
			}
			var b strings.Builder
			for _, p := range parts {
				if p.Type != "text" {
					return nil, badRequest("messages[%d]: a system message holds text only, not %q", i, p.Type)
				}
				b.WriteString(p.Text)
			}
			j.system = b.String()
		case "user":
			users++
			if users > 1 {
				return nil, badRequest("messages[%d]: one user turn is served (a video and its question); send each question as its own request: the video's prefill is cached", i)
			}
			if err := s.readUser(j, parts, i); err != nil {
				return nil, err
			}
		default:
			return nil, badRequest("messages[%d]: role %q: a system message and one user message are served", i, msg.Role)
		}
	}
	if users == 0 {
		return nil, badRequest("messages: no user message")
	}
	if len(j.frames) == 0 {
		return nil, badRequest("messages: the user message has no video_url or image_url part; this server answers questions about a video")
	}
	j.maxTokens = 16
	if req.MaxCompletionTokens != nil {
		j.maxTokens = *req.MaxCompletionTokens
	}
	if req.MaxTokens != nil {
		j.maxTokens = *req.MaxTokens
	}
	if j.maxTokens < 1 || j.maxTokens > s.cfg.MaxTokens {
		return nil, badRequest("max_tokens: %d: must be between 1 and %d (edgemo serve --max-tokens)", j.maxTokens, s.cfg.MaxTokens)
	}
	if t := req.Temperature; t != nil {
		if *t < 0 || *t > 2 {
			return nil, badRequest("temperature: %g: must be between 0 and 2", *t)
		}
		j.gen.Temperature = *t
	}
	if p := req.TopP; p != nil {
		if *p <= 0 || *p > 1 {
			return nil, badRequest("top_p: %g: must be in (0, 1]", *p)
		}
		j.gen.TopP = *p
	}
	if k := req.TopK; k != nil {
		if *k < -1 || *k == 0 {
			return nil, badRequest("top_k: %d: -1 (all) or at least 1", *k)
		}
		j.gen.TopK = *k
		if *k == -1 {
			j.gen.TopK = 0
		}
	}
	if rp := req.RepetitionPenalty; rp != nil {
		if *rp <= 0 || *rp > 2 {
			return nil, badRequest("repetition_penalty: %g: must be in (0, 2]", *rp)
		}
		j.gen.RepetitionPenalty = *rp
	}
	j.seed = req.Seed
	j.logprobs = req.Logprobs
	if req.TopLogprobs != nil {
		if !req.Logprobs {
			return nil, badRequest("top_logprobs needs logprobs: true")
		}
		if *req.TopLogprobs < 0 || *req.TopLogprobs > s.cfg.MaxLogprobs {
			return nil, badRequest("top_logprobs: %d: must be between 0 and %d (edgemo serve --max-logprobs)", *req.TopLogprobs, s.cfg.MaxLogprobs)
		}
		j.topLogprobs = *req.TopLogprobs
	}
	return j, nil
}

// readUser takes the user turn's frames (every video and image part, in
// order, as one video) and its text (the parts concatenated, as Qwen2.5-VL's
// chat template joins them; the video goes first, as VidEmo's prompts have
// it).
func (s *Server) readUser(j *job, parts []Part, i int) error {
	var text strings.Builder
	for k, p := range parts {
		switch p.Type {
		case "text":
			text.WriteString(p.Text)
		case "video_url", "image_url":
			u := p.VideoURL
			if p.Type == "image_url" {
				u = p.ImageURL
			}
			if u == nil {
				return badRequest("messages[%d].content[%d]: %s part without its %s object", i, k, p.Type, p.Type)
			}
			media, frames, err := splitDataURL(u.URL)
			if err != nil {
				return badRequest("messages[%d].content[%d]: %v", i, k, err)
			}
			if p.Type == "image_url" && len(frames) != 1 {
				return badRequest("messages[%d].content[%d]: an image data URL holds one image", i, k)
			}
			if !strings.HasPrefix(media, "video/") && !strings.HasPrefix(media, "image/") {
				return badRequest("messages[%d].content[%d]: media type %q: send video/jpeg (base64 frames) or image/png, image/jpeg", i, k, media)
			}
			j.frames = append(j.frames, frames...)
		default:
			return badRequest("messages[%d].content[%d]: part type %q: text, video_url and image_url are served", i, k, p.Type)
		}
	}
	if len(j.frames) > s.cfg.Frames.MaxFrames {
		return badRequest("messages[%d]: %d frames: at most %d per request (sample the video at %g fps first, as VidEmo does)", i, len(j.frames), s.cfg.Frames.MaxFrames, s.r.Manifest().Preprocess.FPS)
	}
	j.question = text.String()
	return nil
}

// key is the prefix cache's key: the system prompt and the frames.
func (j *job) key() [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%d:%s", len(j.system), j.system)
	for _, f := range j.frames {
		fmt.Fprintf(h, "|%d:%s", len(f), f)
	}
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// result is a finished generation.
type result struct {
	id            string
	ans           *videmo.Answer
	text, finish  string
	prompt, cache int           // prompt tokens, of which from the cache
	held          time.Duration // time the request held the runner (its server time, queueing excluded)
}

func (o *result) usage() *Usage {
	n := len(o.ans.Tokens)
	return &Usage{PromptTokens: o.prompt, CompletionTokens: n, TotalTokens: o.prompt + n, PromptTokensDetails: &TokenDetails{CachedTokens: o.cache}}
}

// run answers j: the video's prefix from the cache or a new prefill, then
// the question off it. onToken streams.
func (s *Server) run(ctx context.Context, j *job, onToken func(*videmo.Answer) error) (*result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t0 := time.Now()
	defer func() { s.stats.busyNanos.Add(int64(time.Since(t0))) }()
	var res *result
	m := s.r.Manifest()
	tmpl := videmo.Template{System: j.system, Tokens: m.Tokens.TokenIDs()}
	key := j.key()
	e := s.cache.get(key)
	cached := 0
	if e != nil {
		s.stats.hits.Add(1)
		cached = e.prefix.Len()
	} else {
		s.stats.misses.Add(1)
		crops := make([]facetrack.Crop, len(j.frames))
		for i, f := range j.frames {
			c, err := decodeFrame(f, s.cfg.Frames)
			if err != nil {
				return nil, badRequest("frame %d: %v", i, err)
			}
			crops[i] = c
		}
		v, err := videmo.Preprocess(crops, m.Preprocess)
		if err != nil {
			return nil, badRequest("video: %v", err)
		}
		prompt, err := tmpl.Build(s.r.Tokenizer().Encode, v.Tokens(m.Preprocess), j.question)
		if err != nil {
			return nil, err
		}
		p, err := s.r.Prefill(v, prompt)
		if err != nil {
			return nil, fmt.Errorf("prefill: %w", err)
		}
		s.stats.vision.Add(1)
		e = &cacheEntry{key: key, prefix: p, videoTokens: v.Tokens(m.Preprocess)}
		s.cache.put(e)
	}
	prompt, err := tmpl.Build(s.r.Tokenizer().Encode, e.videoTokens, j.question)
	if err != nil {
		return nil, err
	}
	var rng *mrand.Rand
	if !j.gen.Greedy() {
		var seed [16]byte
		rand.Read(seed[:])
		s1, s2 := uint64FromBytes(seed[:8]), uint64FromBytes(seed[8:])
		if j.seed != nil {
			s1, s2 = uint64(*j.seed), uint64(*j.seed)^0x9e3779b97f4a7c15
		}
		rng = mrand.New(mrand.NewPCG(s1, s2))
	}
	a, err := s.r.Generate(e.prefix, prompt.Suffixes[0], j.maxTokens, rng, videmo.GenerateOptions{
		Gen: j.gen, Logprobs: j.logprobs, TopLogprobs: j.topLogprobs, OnToken: onToken,
	})
	if err != nil {
		return nil, fmt.Errorf("generate: %w", err)
	}
	var id [12]byte
	rand.Read(id[:])
	res = &result{
		id: "chatcmpl-" + hex.EncodeToString(id[:]), ans: a, held: time.Since(t0),
		text:   s.r.Tokenizer().Decode(a.Tokens, true),
		finish: finishReason(a.Stopped), prompt: len(e.prefix.IDs) + len(prompt.Suffixes[0]), cache: cached,
	}
	return res, nil
}

func uint64FromBytes(b []byte) uint64 {
	var x uint64
	for _, c := range b {
		x = x<<8 | uint64(c)
	}
	return x
}

// cacheEntry is one prefilled video.
type cacheEntry struct {
	key         [32]byte
	prefix      *videmo.Prefix
	videoTokens int
}

// prefixCache keeps the n most recently used prefixes (their KV caches).
type prefixCache struct {
	n       int
	entries []*cacheEntry // most recent last
}

func newPrefixCache(n int) *prefixCache { return &prefixCache{n: n} }

func (c *prefixCache) get(k [32]byte) *cacheEntry {
	for i, e := range c.entries {
		if e.key == k {
			c.entries = append(append(c.entries[:i:i], c.entries[i+1:]...), e)
			return e
		}
	}
	return nil
}

func (c *prefixCache) put(e *cacheEntry) {
	c.entries = append(c.entries, e)
	for len(c.entries) > c.n {
		c.entries[0].prefix.Close()
		c.entries = c.entries[1:]
	}
}

func (c *prefixCache) clear() error {
	var err error
	for _, e := range c.entries {
		if e2 := e.prefix.Close(); e2 != nil {
			err = e2
		}
	}
	c.entries = nil
	return err
}

// tokenTable holds each token's text and bytes, as logprobs report them.
type tokenTable struct {
	tok   *tokenizer.Tokenizer
	texts []string
	raw   [][]int
	enc   []string // `{"token":…,"bytes":[…],` (appendTop's prefix)
}

func (t *tokenTable) init(tok *tokenizer.Tokenizer, vocab int) {
	t.tok = tok
	t.texts = make([]string, vocab)
	t.raw = make([][]int, vocab)
	t.enc = make([]string, vocab)
	for id := range vocab {
		b := tok.Decode([]int{id}, false)
		t.texts[id] = strings.ToValidUTF8(b, "\uFFFD")
		t.raw[id] = make([]int, len(b))
		for i := range len(b) {
			t.raw[id][i] = int(b[i])
		}
		e := appendTop(nil, t.texts[id], t.raw[id], 0)
		t.enc[id] = string(e[:len(e)-len(`"logprob":0}`)])
	}
}

// top is id's entry of a top list with logprob lp (pre-encoded).
func (t *tokenTable) top(id int, lp float64) TopLogprob {
	if id < 0 || id >= len(t.enc) {
		return TopLogprob{Token: "", Bytes: []int{}, Logprob: lp}
	}
	return TopLogprob{Token: t.enc[id], Logprob: lp}
}

func (t *tokenTable) str(id int) string {
	if id < 0 || id >= len(t.texts) {
		return ""
	}
	return t.texts[id]
}

func (t *tokenTable) bytes(id int) []int {
	if id < 0 || id >= len(t.raw) {
		return []int{}
	}
	return t.raw[id]
}
