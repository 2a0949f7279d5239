package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBarShowsCountsRateAndETA(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "x", 200)
	t0 := b.start
	now := t0
	b.now = func() time.Time { return now }
	now = t0.Add(2 * time.Second)
	b.Set(50) // 25 fps, 150 left → 6 s
	out := buf.String()
	for _, want := range []string{"25%", "50/200 frames", "25.0 fps", "ETA 00:06"} {
		if !strings.Contains(out, want) {
			t.Fatalf("missing %q in %q", want, out)
		}
	}
	now = now.Add(50 * time.Millisecond)
	b.Set(51) // throttled: no redraw
	if buf.String() != out {
		t.Fatal("redrew faster than the refresh interval")
	}
	b.Finish()
	if !strings.HasSuffix(buf.String(), "\n") || !strings.Contains(buf.String(), "51/200") {
		t.Fatalf("finish: %q", buf.String())
	}
}

func TestBarUnknownTotal(t *testing.T) {
	var buf bytes.Buffer
	b := New(&buf, "cam", 0)
	b.Finish()
	if strings.Contains(buf.String(), "ETA") {
		t.Fatalf("ETA without a total: %q", buf.String())
	}
}
