package mqtt

// item is one queued message: a tree or a track event.
type item struct {
	topic   string
	payload []byte
}

// deque is a growable ring buffer of items, oldest at the front.
type deque struct {
	buf  []item
	head int
	n    int
}

func (d *deque) len() int { return d.n }

func (d *deque) grow() {
	nb := make([]item, max(16, 2*len(d.buf)))
	for i := 0; i < d.n; i++ {
		nb[i] = d.buf[(d.head+i)%len(d.buf)]
	}
	d.buf, d.head = nb, 0
}

func (d *deque) pushBack(it item) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.buf[(d.head+d.n)%len(d.buf)] = it
	d.n++
}

func (d *deque) pushFront(it item) {
	if d.n == len(d.buf) {
		d.grow()
	}
	d.head = (d.head - 1 + len(d.buf)) % len(d.buf)
	d.buf[d.head] = it
	d.n++
}

func (d *deque) popFront() item {
	it := d.buf[d.head]
	d.buf[d.head] = item{}
	d.head = (d.head + 1) % len(d.buf)
	d.n--
	return it
}

// clear empties the deque and returns how many items it held.
func (d *deque) clear() int {
	n := d.n
	*d = deque{}
	return n
}
