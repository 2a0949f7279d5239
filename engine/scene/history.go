package scene

import (
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
)

// HistoryLen is how many sampled frames a History keeps: at 4 samples a
// second, the last 64 s, longer than any window (window.length 64 at 1 fps).
const HistoryLen = 256

// History keeps a camera's recent frame sums by capture time, so a window
// gets the scene of the frames in its own span. Safe for concurrent use
// (the frame loop adds, the stats reader reads).
type History struct {
	mu   sync.Mutex
	at   [HistoryLen]time.Time
	acc  [HistoryLen]Acc
	next int // slot of the next Add
	n    int // slots filled
}

// Add records frame sums a taken at t (times never going back).
func (h *History) Add(t time.Time, a Acc) {
	h.mu.Lock()
	h.at[h.next], h.acc[h.next] = t, a
	h.next = (h.next + 1) % HistoryLen
	h.n = min(h.n+1, HistoryLen)
	h.mu.Unlock()
}

// Last is the time of the latest sample (zero when none).
func (h *History) Last() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return time.Time{}
	}
	return h.at[(h.next+HistoryLen-1)%HistoryLen]
}

// Window is the scene of the samples taken in [start, end]; when none was
// (a window shorter than the sampling interval), of the latest one before
// end, which was the picture at the time. False when there is neither.
func (h *History) Window(start, end time.Time) (tree.Scene, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var sum Acc
	before := -1
	for k := range h.n {
		i := (h.next - 1 - k + 2*HistoryLen) % HistoryLen // newest first
		t := h.at[i]
		if t.After(end) {
			continue
		}
		if t.Before(start) {
			if sum.Frames == 0 && before < 0 {
				before = i
			}
			break
		}
		sum.Add(&h.acc[i])
	}
	if sum.Frames == 0 {
		if before < 0 {
			return tree.Scene{}, false
		}
		sum = h.acc[before]
	}
	return sum.Scene(), true
}
