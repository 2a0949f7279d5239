// Package progress draws a one-line progress bar (done/total, rate, ETA) on a
// terminal stream, redrawn at most a few times a second.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Bar is safe for concurrent Set calls.
type Bar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	done  int64
	start time.Time
	last  time.Time
	every time.Duration
	now   func() time.Time
}

// New draws to w; total <= 0 means unknown (no percentage, no ETA).
func New(w io.Writer, label string, total int64) *Bar {
	return &Bar{w: w, label: label, total: total, start: time.Now(), every: 200 * time.Millisecond, now: time.Now}
}

// Set records progress and redraws if enough time has passed.
func (b *Bar) Set(done int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = done
	if t := b.now(); t.Sub(b.last) >= b.every {
		b.last = t
		fmt.Fprint(b.w, "\r"+b.line(t))
	}
}

// Finish draws the final state and ends the line.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprint(b.w, "\r"+b.line(b.now())+"\n")
}

func (b *Bar) line(t time.Time) string {
	el := t.Sub(b.start).Seconds()
	rate := 0.0
	if el > 0 {
		rate = float64(b.done) / el
	}
	if b.total <= 0 {
		return fmt.Sprintf("%s %d frames  %.1f fps  %s", b.label, b.done, rate, fmtDur(el))
	}
	frac := min(float64(b.done)/float64(b.total), 1)
	const width = 24
	fill := int(frac * width)
	bar := strings.Repeat("█", fill) + strings.Repeat("░", width-fill)
	eta := "--:--"
	if rate > 0 {
		eta = fmtDur(float64(b.total-b.done) / rate)
	}
	return fmt.Sprintf("%s %s %3.0f%% %d/%d frames  %.1f fps  ETA %s ", b.label, bar, frac*100, b.done, b.total, rate, eta)
}

func fmtDur(s float64) string {
	if s < 0 {
		s = 0
	}
	d := int(s + 0.5)
	if d >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", d/3600, d/60%60, d%60)
	}
	return fmt.Sprintf("%02d:%02d", d/60, d%60)
}
