package videmo

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// MapText maps a model's free answer to a closed-set question onto its
// options; -1 when it names none, or more than one.
//
//  1. A letter answer: after leading spaces, quotes, "(", "[" and "*"
//     (markdown bold), an option's letter (any case) followed by the end,
//     a line break, ".", ")", ":", "]", "*" or a quote ("A", "A.", "(B)",
//     "b) sad", "**C**"). Followed by a space it counts only in the
//     manifest's case and, for the letters that are English words ("A",
//     "I"), only when the option's own label follows: "A happy" is option
//     A, "A person who smiles" is an article.
//  2. Else a label answer: exactly one option label occurs in the
//     lower-cased text as a whole word (letters and digits on neither
//     side, so "sad" is not read in "sadly" or "sadness": an inflection is
//     not the label, and a wrong reading is worse than an uncertain one).
//     Labels may have spaces or hyphens ("young adult"); an occurrence
//     inside a longer label's occurrence counts only for the longer one.
//     Negation is not understood ("not happy" names happy), which is why
//     a text naming two labels maps to none.
func MapText(text string, opts []Option) int {
	s := strings.TrimLeftFunc(text, func(c rune) bool {
		return unicode.IsSpace(c) || strings.ContainsRune("(*[\"'`\u201c\u2018", c)
	})
	if i := letterAnswer(s, opts); i >= 0 {
		return i
	}
	return labelAnswer(strings.ToLower(text), opts)
}

func letterAnswer(s string, opts []Option) int {
	for i, o := range opts {
		l := o.Letter
		if len(s) < len(l) || !strings.EqualFold(s[:len(l)], l) {
			continue
		}
		rest := s[len(l):]
		if rest == "" {
			return i
		}
		c, _ := utf8.DecodeRuneInString(rest)
		switch {
		case c == '\n' || c == '\r' || strings.ContainsRune(".):]*\"'`\u201d\u2019", c):
			return i
		case c == ' ' || c == '\t':
			if s[:len(l)] != l {
				continue
			}
			if l != "A" && l != "I" {
				return i
			}
			if j := wordAt(strings.ToLower(strings.TrimLeft(rest, " \t")), strings.ToLower(o.Label)); j == 0 {
				return i
			}
		}
	}
	return -1
}

// labelAnswer is the one option whose label occurs in lower-cased s as a
// whole word (not only inside a longer label's occurrence), or -1.
func labelAnswer(s string, opts []Option) int {
	type span struct{ i, from, to int }
	var spans []span
	for i, o := range opts {
		l := strings.ToLower(o.Label)
		for off := 0; off < len(s); {
			j := wordAt(s[off:], l)
			if j < 0 {
				break
			}
			spans = append(spans, span{i, off + j, off + j + len(l)})
			off += j + len(l)
		}
	}
	found := -1
	for _, a := range spans {
		inside := false
		for _, b := range spans {
			inside = inside || b.to-b.from > a.to-a.from && b.from <= a.from && a.to <= b.to
		}
		switch {
		case inside:
		case found < 0 || found == a.i:
			found = a.i
		default:
			return -1 // two labels
		}
	}
	return found
}

// wordAt is the index of the first occurrence of w in s with no letter or
// digit right before or after it, or -1.
func wordAt(s, w string) int {
	if w == "" {
		return -1
	}
	for off := 0; off <= len(s)-len(w); {
		j := strings.Index(s[off:], w)
		if j < 0 {
			return -1
		}
		j += off
		before, _ := utf8.DecodeLastRuneInString(s[:j])
		after, _ := utf8.DecodeRuneInString(s[j+len(w):])
		if (j == 0 || !isWordRune(before)) && (j+len(w) == len(s) || !isWordRune(after)) {
			return j
		}
		_, n := utf8.DecodeRuneInString(s[j:])
		off = j + n
	}
	return -1
}

func isWordRune(c rune) bool { return unicode.IsLetter(c) || unicode.IsDigit(c) }
