package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// The Qwen2 pre-tokenizer splits text with this pattern (behaviour
// "Isolated": every match is a piece, and since every position matches some
// alternative, the pieces tile the text):
//
//	(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Go's regexp has no lookahead, so nextPiece implements the alternation by
// hand with the semantics of a backtracking engine (leftmost-first: the first
// alternative that matches wins, not the longest; each quantifier is greedy
// and gives back one character at a time).
const qwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

type class uint8

const (
	clsOther class = iota // [^\s\p{L}\p{N}], also any byte that is not valid UTF-8
	clsLetter
	clsNumber
	clsSpace
)

var asciiClass [utf8.RuneSelf]class

func init() {
	for c := 0; c < utf8.RuneSelf; c++ {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			asciiClass[c] = clsLetter
		case c >= '0' && c <= '9':
			asciiClass[c] = clsNumber
		case c == ' ' || (c >= '\t' && c <= '\r'):
			asciiClass[c] = clsSpace
		}
	}
}

// isSpace is \s as the reference (JavaScript, /\s/u) defines it: WhiteSpace
// plus LineTerminator. It differs from Unicode White_Space (Rust's regex,
// Oniguruma, Go's unicode.IsSpace) in two code points: U+FEFF is \s here,
// U+0085 (NEL) is not.
func isSpace(r rune) bool {
	switch r {
	case '\t', '\n', '\v', '\f', '\r', ' ', 0xA0, 0x1680, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF:
		return true
	}
	return r >= 0x2000 && r <= 0x200A
}

func classOf(r rune) class {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	switch {
	case unicode.IsLetter(r): // \p{L}
		return clsLetter
	case unicode.IsNumber(r): // \p{N}: Nd, Nl, No
		return clsNumber
	case isSpace(r):
		return clsSpace
	}
	return clsOther
}

// at decodes the character at s[i]. An invalid byte is one character of
// width 1 in class other (the reference only sees valid text: this keeps
// Encode total and lossless on arbitrary bytes).
func at(s string, i int) (rune, int, class) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1, asciiClass[c]
	}
	r, w := utf8.DecodeRuneInString(s[i:])
	if r == utf8.RuneError && w == 1 {
		return r, 1, clsOther
	}
	return r, w, classOf(r)
}

// runEnd returns the end of the run of characters of class c starting at i.
func runEnd(s string, i int, c class) int {
	for i < len(s) {
		_, w, k := at(s, i)
		if k != c {
			break
		}
		i += w
	}
	return i
}

func isLower(b byte, want byte) bool { return b == want || b == want-'a'+'A' }

// nextPiece returns the end of the match that starts at i (i < len(s)).
func nextPiece(s string, i int) int {
	r0, w0, c0 := at(s, i)
	n := len(s)

	// 1. (?i:'s|'t|'re|'ve|'m|'ll|'d), as the reference rewrites it for
	// JavaScript: '([sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD]) (ASCII
	// case only; Rust's (?i) would also let U+017F ſ match s).
	if r0 == '\'' && i+1 < n {
		b := s[i+1]
		switch {
		case isLower(b, 's'), isLower(b, 't'), isLower(b, 'm'), isLower(b, 'd'):
			return i + 2
		case i+2 < n && (isLower(b, 'r') || isLower(b, 'v')) && isLower(s[i+2], 'e'),
			i+2 < n && isLower(b, 'l') && isLower(s[i+2], 'l'):
			return i + 3
		}
	}

	// 2. [^\r\n\p{L}\p{N}]?\p{L}+
	if c0 == clsLetter {
		return runEnd(s, i, clsLetter)
	}
	if c0 != clsNumber && r0 != '\r' && r0 != '\n' && i+w0 < n {
		if _, _, c1 := at(s, i+w0); c1 == clsLetter {
			return runEnd(s, i+w0, clsLetter)
		}
	}

	// 3. \p{N}
	if c0 == clsNumber {
		return i + w0
	}

	// 4. ' ?[^\s\p{L}\p{N}]+[\r\n]*'
	start := -1
	if c0 == clsOther {
		start = i
	} else if r0 == ' ' && i+1 < n {
		if _, _, c1 := at(s, i+1); c1 == clsOther {
			start = i + 1
		}
	}
	if start >= 0 {
		j := runEnd(s, start, clsOther)
		for j < n && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j
	}

	// Only whitespace is left: c0 == clsSpace.
	// Scan the whitespace run [i, j), noting the last \r or \n and where the
	// last character of the run starts.
	j, lastNL, last := i, -1, i
	for j < n {
		r, w, c := at(s, j)
		if c != clsSpace {
			break
		}
		if r == '\r' || r == '\n' {
			lastNL = j
		}
		last = j
		j += w
	}

	// 5. \s*[\r\n]+: \s* backtracks to the last line break in the run; the
	// greedy [\r\n]+ then takes just it (a later one would have been last).
	if lastNL >= 0 {
		return lastNL + 1
	}
	// 6. \s+(?!\S): the whole run at the end of the text; otherwise the run
	// but its last character, which must leave at least one.
	if j == n {
		return j
	}
	if last > i {
		return last
	}
	// 7. \s+
	return j
}

// splitPieces calls f with each pre-token of s in order.
func splitPieces(s string, f func(piece string)) {
	for i := 0; i < len(s); {
		j := nextPiece(s, i)
		f(s[i:j])
		i = j
	}
}
