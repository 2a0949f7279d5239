package tokenizer

import (
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Added tokens are cut out of the text before anything else, as HF's
// AddedVocabulary does: leftmost match, the longest at that position,
// non-overlapping. Tokens with normalized: false are matched in the raw text;
// those with normalized: true in each remaining section after NFC.
//
// Flags (HF semantics; the reference ignores single_word, and every Qwen
// token has all four false):
//   - single_word: a match with a letter or digit right before or after it is
//     not a token (the text stays text).
//   - lstrip / rstrip: whitespace before / after the match is absorbed into
//     the token (never reaching back into a previous token).
type addedToken struct {
	id                         int32
	content                    string
	singleWord, lstrip, rstrip bool
}

type matcher struct {
	byFirst map[byte][]addedToken // by first byte, longest first
}

type addedVocab struct {
	raw, normalized matcher
}

func newAddedVocab(list []addedTokenJSON) addedVocab {
	var v addedVocab
	for _, a := range list {
		m := &v.raw
		if a.Normalized {
			m = &v.normalized
		}
		if m.byFirst == nil {
			m.byFirst = map[byte][]addedToken{}
		}
		c := a.Content
		m.byFirst[c[0]] = append(m.byFirst[c[0]], addedToken{id: a.ID, content: c, singleWord: a.SingleWord, lstrip: a.LStrip, rstrip: a.RStrip})
	}
	for _, m := range []*matcher{&v.raw, &v.normalized} {
		for _, l := range m.byFirst {
			sort.SliceStable(l, func(i, j int) bool { return len(l[i].content) > len(l[j].content) })
		}
	}
	return v
}

// split calls f for each piece of s in order: text with id -1, or an added
// token with its id. Empty text is not reported.
func (m *matcher) split(s string, f func(text string, id int32)) {
	if len(m.byFirst) == 0 {
		if s != "" {
			f(s, -1)
		}
		return
	}
	done := 0 // s[:done] is reported
	for i := 0; i < len(s); {
		tok, ok := m.longestAt(s, i)
		if !ok {
			i++
			continue
		}
		start, stop := i, i+len(tok.content)
		i = stop
		if tok.singleWord && (isWordBefore(s[:start]) || isWordAfter(s[stop:])) {
			continue
		}
		if tok.lstrip {
			start = max(done, len(strings.TrimRightFunc(s[:start], unicode.IsSpace)))
		}
		if tok.rstrip {
			stop = len(s) - len(strings.TrimLeftFunc(s[stop:], unicode.IsSpace))
			i = stop
		}
		if start > done {
			f(s[done:start], -1)
		}
		f(s[start:stop], tok.id)
		done = stop
	}
	if done < len(s) {
		f(s[done:], -1)
	}
}

func (m *matcher) longestAt(s string, i int) (addedToken, bool) {
	for _, t := range m.byFirst[s[i]] {
		if strings.HasPrefix(s[i:], t.content) {
			return t, true
		}
	}
	return addedToken{}, false
}

// isWord is Rust's char::is_alphanumeric, which HF's single_word check uses.
func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Other_Alphabetic, r)
}

func isWordBefore(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWord(r)
}

func isWordAfter(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWord(r)
}
