package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// AnalyzeBatch gives exactly the trees that one Analyze per window gives,
// with each head run once for the whole batch: every new sample once, even
// when two windows of one track in the batch overlap.
func TestAnalyzeBatchEqualsOneByOne(t *testing.T) {
	checkGoroutines(t)
	happy, _ := faceCrops(t, "astronaut.png", 0.1, 8)
	other, _ := faceCrops(t, "messi5.jpg", 0.1, 8)
	box := facetrack.Rect{X: 1, Y: 2, W: 30, H: 30}
	overlap := append(append([]facetrack.Crop(nil), happy[4:]...), other[:4]...)
	ws := []window.Window{
		makeWindow("cam1", 1, 0, 0, happy, box),
		makeWindow("cam1", 2, 0, 100, other, box),
		makeWindow("cam1", 1, 1, 4, overlap, box), // frames 4..11 of track 1: 4 already in this batch
	}
	ctx := context.Background()

	one := NewFastAnalyzer(newTestHead(t), FastConfig{})
	defer one.Close()
	var want []string
	for _, w := range ws {
		tr, err := one.Analyze(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		tr.Source.LatencyMS = 0
		b, _ := json.Marshal(tr)
		want = append(want, string(b))
	}

	batch := NewFastAnalyzer(newTestHead(t), FastConfig{})
	defer batch.Close()
	var runs, crops int
	batch.head.onPredict = func(k int) { runs++; crops += k }
	trees, err := batch.AnalyzeBatch(ctx, ws)
	if err != nil {
		t.Fatal(err)
	}
	if runs != 1 || crops != 8+8+4 {
		t.Fatalf("head ran %d times on %d crops; want once on 20 (8 + 8 + the 4 new of the overlapping window)", runs, crops)
	}
	for i, tr := range trees {
		if err := tr.Validate(); err != nil {
			t.Fatal(err)
		}
		tr.Source.LatencyMS = 0
		b, _ := json.Marshal(tr)
		if string(b) != want[i] {
			t.Fatalf("window %d differs in a batch:\n%s\nalone:\n%s", i, b, want[i])
		}
	}
}
