package mqtt

// kind says what a queued item is, for the queue's shares: trees are never
// pushed out by track events, and track updates go before lifecycle events.
type kind uint8

const (
	kindTree   kind = iota
	kindTrack       // new, lost, end
	kindUpdate      // update (rate-limited, the least valuable)
	nKinds
)

// item is one queued message: a tree or a track event.
type item struct {
	topic   string
	payload []byte
	kind    kind
}

// deque is a growable ring buffer of items, oldest at the front, with a
// count per kind.
type deque struct {
	buf  []item
	head int
	n    int
	per  [nKinds]int
}

func (d *deque) len() int { return d.n }

// count is the number of queued items of kind k.
func (d *deque) count(k kind) int { return d.per[k] }

func (d *deque) at(i int) *item { return &d.buf[(d.head+i)%len(d.buf)] }

func (d *deque) grow() {
	nb := make([]item, max(16, 2*len(d.buf)))
	for i := 0; i < d.n; i++ {
		nb[i] = *d.at(i)
	}
	d.buf, d.head = nb, 0
}

func (d *deque) pushBack(it item) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)%len(d.buf)] = it
	d.n++
	d.per[it.kind]++
}

func (d *deque) pushFront(it item) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = it
	d.n++
	d.per[it.kind]++
}

func (d *deque) popFront() item {
	it := d.buf[d.head]
	d.buf[d.head] = item{}
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	d.per[it.kind]--
	return it
}

// removeOldest removes the oldest item of kind k and reports whether there
// was one. O(n), but it runs only on overflow, for at most a few items.
func (d *deque) removeOldest(k kind) bool {
	if d.per[k] == 0 {
		return false
	}
	i := 0
	for d.at(i).kind != k {
		i++
	}
	for ; i > 0; i-- { // shift the older items one slot towards the back
		*d.at(i) = *d.at(i - 1)
	}
	d.buf[d.head] = item{}
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	d.per[k]--
	return true
}

// clear empties the deque and returns how many items it held.
func (d *deque) clear() int {
	n := d.n
	*d = deque{}
	return n
}
