package tokenizer

import "container/heap"

// byteToRune is GPT-2's bytes_to_unicode: printable bytes map to themselves,
// the rest to U+0100 upwards in byte order, so every byte sequence is a
// string of visible characters.
var byteToRune [256]rune

func init() {
	n := 0
	for b := 0; b < 256; b++ {
		if (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF) {
			byteToRune[b] = rune(b)
		} else {
			byteToRune[b] = rune(256 + n)
			n++
		}
	}
}

// merge is the outcome of merging a pair of tokens: its rank (lower merges
// first) and the id of the merged token.
type merge struct {
	rank int32
	id   int32
}

func pairKey(a, b int32) uint64 { return uint64(uint32(a))<<32 | uint64(uint32(b)) }

type symbol struct {
	id         int32
	prev, next int32 // indices into the word, -1 at the ends
}

type candidate struct {
	rank        int32
	pos         int32 // index of the left symbol
	left, right int32 // ids it was computed for (a stale entry no longer matches)
}

type candidates []candidate

func (h candidates) Len() int { return len(h) }
func (h candidates) Less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos // ties: leftmost first, as HF and the reference do
}
func (h candidates) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *candidates) Push(x any)   { *h = append(*h, x.(candidate)) }
func (h *candidates) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// bpe encodes one pre-token (raw bytes) by applying merges lowest rank
// first, leftmost on ties, until none applies; it appends the ids to out.
func (t *Tokenizer) bpe(word string, out []int32) []int32 {
	if len(word) == 1 {
		return append(out, t.byteID[word[0]])
	}
	syms := make([]symbol, len(word))
	for i := range len(word) {
		syms[i] = symbol{id: t.byteID[word[i]], prev: int32(i - 1), next: int32(i + 1)}
	}
	syms[len(syms)-1].next = -1

	h := make(candidates, 0, len(word))
	pair := func(pos int32) (candidate, bool) {
		a := syms[pos]
		if a.next < 0 {
			return candidate{}, false
		}
		b := syms[a.next].id
		m, ok := t.merges[pairKey(a.id, b)]
		return candidate{rank: m.rank, pos: pos, left: a.id, right: b}, ok
	}
	for i := range int32(len(syms) - 1) {
		if c, ok := pair(i); ok {
			h = append(h, c)
		}
	}
	heap.Init(&h)
	for h.Len() > 0 {
		c := heap.Pop(&h).(candidate)
		a := &syms[c.pos]
		if a.id != c.left || a.next < 0 || syms[a.next].id != c.right {
			continue // stale: one side has merged since
		}
		// Merge the right symbol into the left one and unlink it; id -1
		// keeps any candidate still queued at its position from validating.
		bi := a.next
		b := &syms[bi]
		a.id = t.merges[pairKey(c.left, c.right)].id
		a.next = b.next
		if b.next >= 0 {
			syms[b.next].prev = c.pos
		}
		b.id = -1
		if a.prev >= 0 {
			if c, ok := pair(a.prev); ok {
				heap.Push(&h, c)
			}
		}
		if c, ok := pair(c.pos); ok {
			heap.Push(&h, c)
		}
	}
	for i := int32(0); i >= 0; i = syms[i].next {
		out = append(out, syms[i].id)
	}
	return out
}
