package tokenizer

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func pieces(s string) []string {
	var p []string
	splitPieces(s, func(x string) { p = append(p, x) })
	return p
}

// TestPieces pins the alternation's leftmost-first, backtracking behaviour
// on the cases that distinguish it from a longest-match or no-lookahead
// reading.
func TestPieces(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"Hello world", []string{"Hello", " world"}},
		{"I'm", []string{"I", "'m"}},
		{"YOU'RE", []string{"YOU", "'RE"}},
		{"She'Ll", []string{"She", "'Ll"}},
		{"'sx", []string{"'s", "x"}},             // the contraction wins over [^...]?\p{L}+
		{"'ſ", []string{"'ſ"}},                   // ASCII case only, as the reference: ſ is not s
		{"'x", []string{"'x"}},                   // punctuation + letters
		{"a  b", []string{"a", " ", " b"}},       // \s+(?!\S) gives back the last space
		{"a   b", []string{"a", "  ", " b"}},     //
		{"a \tb", []string{"a", " ", "\tb"}},     // any non-newline space can prefix letters
		{"a\t\tb", []string{"a", "\t", "\tb"}},   //
		{"x \n b", []string{"x", " \n", " b"}},   // \s*[\r\n]+ stops after the last line break
		{"x\n\n  ", []string{"x", "\n\n", "  "}}, // trailing whitespace stays whole
		{"  \n  x", []string{"  \n", " ", " x"}},
		{"a\r\n\r\nb", []string{"a", "\r\n\r\n", "b"}},
		{" 1", []string{" ", "1"}},             // \s+ alone: space before a digit
		{"\t!", []string{"\t", "!"}},           // ' ?' is U+0020 only
		{" !!\n\nx", []string{" !!\n\n", "x"}}, // punctuation takes following line breaks
		{"1234", []string{"1", "2", "3", "4"}},
		{"a\u3000b", []string{"a", "\u3000b"}},
		{"a\u0085b", []string{"a", "\u0085b"}},
		{"x\u0085!", []string{"x", "\u0085!"}},     // NEL is not \s in the reference
		{"x\ufeff!", []string{"x", "\ufeff", "!"}}, // BOM is
		{"a\ufeff b", []string{"a", "\ufeff", " b"}},
		{"中文 text", []string{"中文", " text"}},
		{"😀😀 x", []string{"😀😀", " x"}},
		{"a\xffb", []string{"a", "\xffb"}}, // an invalid byte is "other"
		{"", nil},
	} {
		if got := pieces(c.in); !slices.Equal(got, c.want) {
			t.Errorf("pieces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// tiny writes a byte-level tokenizer.json with no merges and the given
// added tokens (ids from 256).
func tiny(t *testing.T, added []addedTokenJSON, edit func(map[string]any)) string {
	t.Helper()
	vocab := map[string]int{}
	for b, r := range byteToRune {
		vocab[string(r)] = b
	}
	var at []map[string]any
	for i, a := range added {
		at = append(at, map[string]any{"id": 256 + i, "content": a.Content, "single_word": a.SingleWord,
			"lstrip": a.LStrip, "rstrip": a.RStrip, "normalized": a.Normalized, "special": a.Special})
	}
	m := map[string]any{
		"added_tokens": at,
		"normalizer":   map[string]any{"type": "NFC"},
		"pre_tokenizer": map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]any{"Regex": qwenPattern}, "behavior": "Isolated", "invert": false},
			map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false},
		}},
		"decoder": map[string]any{"type": "ByteLevel"},
		"model":   map[string]any{"type": "BPE", "vocab": vocab, "merges": []any{}},
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "tokenizer.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAddedTokenFlags: HF AddedVocabulary semantics for the flags Qwen does
// not use (so the golden test cannot cover them).
func TestAddedTokenFlags(t *testing.T) {
	tok, err := Load(tiny(t, []addedTokenJSON{
		{Content: "<l>", LStrip: true},
		{Content: "<r>", RStrip: true},
		{Content: "<w>", SingleWord: true},
		{Content: "é", Normalized: true}, // matched after NFC
		{Content: "<s>", Special: true},
		{Content: "<s>>"}, // longest match wins
	}, nil))
	if err != nil {
		t.Fatal(err)
	}
	const l, r, w, e, s, ss = 256, 257, 258, 259, 260, 261
	bytesOf := func(x string) []int {
		var ids []int
		for i := 0; i < len(x); i++ {
			ids = append(ids, int(x[i]))
		}
		return ids
	}
	cat := func(parts ...any) []int {
		var ids []int
		for _, p := range parts {
			switch p := p.(type) {
			case int:
				ids = append(ids, p)
			case string:
				ids = append(ids, bytesOf(p)...)
			}
		}
		return ids
	}
	for _, c := range []struct {
		in   string
		want []int
	}{
		{"a  <l>b", cat("a", l, "b")},
		{"a<r> \n b", cat("a", r, "b")},
		{"<l> <r>", cat(l, " ", r)}, // neither strips toward the other
		{"<r> <l>", cat(r, l)},
		{"a <w> b", cat("a ", w, " b")},
		{"a<w> b", cat("a<w> b")}, // glued to a letter: not a token
		{"<w>1", cat("<w>1")},
		{"<w>", cat(w)},
		{"cafe\u0301", cat("caf", e)},
		{"<s>><s>", cat(ss, s)},
	} {
		if got := tok.Encode(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Encode(%q) = %v, want %v", c.in, got, c.want)
		}
	}
	if got := tok.Decode(cat("x", s, l), true); got != "x<l>" {
		t.Errorf("Decode skipping special = %q", got)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		path func() string
		want string
	}{
		{"missing", func() string { return filepath.Join(t.TempDir(), "nope.json") }, "nope.json"},
		{"not json", func() string {
			p := filepath.Join(t.TempDir(), "tokenizer.json")
			os.WriteFile(p, []byte("{"), 0o644)
			return p
		}, "not a tokenizer.json"},
		{"other regex", func() string {
			return tiny(t, nil, func(m map[string]any) {
				m["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[0].(map[string]any)["pattern"] = map[string]any{"Regex": `\s+`}
			})
		}, "Qwen2 pattern"},
		{"wordpiece", func() string {
			return tiny(t, nil, func(m map[string]any) { m["model"].(map[string]any)["type"] = "WordPiece" })
		}, `"WordPiece"`},
		{"bad merge", func() string {
			return tiny(t, nil, func(m map[string]any) { m["model"].(map[string]any)["merges"] = []any{[]string{"a", "zz"}} })
		}, "model.merges[0]"},
		{"no byte token", func() string {
			return tiny(t, nil, func(m map[string]any) { delete(m["model"].(map[string]any)["vocab"].(map[string]int), "a") })
		}, "byte 0x61"},
	} {
		p := c.path()
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: Load error %v; want it to name %s and say %q", c.name, err, p, c.want)
		}
	}
}

// TestStreamIllFormed: one U+FFFD per maximal ill-formed subsequence.
func TestStreamIllFormed(t *testing.T) {
	tok, err := Load(tiny(t, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ in, want string }{
		{"\x80", "\uFFFD"},
		{"\xF0\x9F", "\uFFFD"},
		{"\xF0\x9F\x98", "\uFFFD"},
		{"\xF0\x9Fx", "\uFFFDx"},
		{"\xE0\x80", "\uFFFD\uFFFD"}, // E0 80 is no prefix of a character
		{"\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"\xC0\xAF", "\uFFFD\uFFFD"},
		{"\xF4\x90", "\uFFFD\uFFFD"},
		{"a\xE4\xB8\xADb", "a中b"},
	} {
		d := tok.NewStreamDecoder()
		var got strings.Builder
		for i := 0; i < len(c.in); i++ {
			got.WriteString(d.Push(int(c.in[i])))
		}
		got.WriteString(d.Flush())
		if got.String() != c.want {
			t.Errorf("stream of %q = %q, want %q", c.in, got.String(), c.want)
		}
	}
}
