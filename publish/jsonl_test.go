package publish

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
)

func testTree(i int) *tree.Tree {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	return &tree.Tree{
		Schema: tree.Schema, ID: tree.MakeID("cam", i, uint64(i)), Camera: "cam", TrackID: i,
		Window: tree.Window{Start: tree.Time(t0), End: tree.Time(t0.Add(time.Second)), Frames: 4, FPS: 4},
		Source: tree.Source{Engine: "fast-head", Model: "emotion@abcdef012345"},
	}
}

func TestJSONLConcurrentWritesAreWholeLinesAndValid(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trees.jsonl")
	s, err := OpenJSONL(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if err := s.Publish(context.Background(), testTree(g*100+i)); err != nil {
					t.Error(err)
				}
			}
		}(g)
	}
	wg.Wait()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		if err := tree.ValidateJSON(sc.Bytes()); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
	}
	if n != 400 || s.Count() != 400 {
		t.Fatalf("lines %d, count %d, want 400", n, s.Count())
	}
}

func TestJSONLBadPathNamesIt(t *testing.T) {
	_, err := OpenJSONL("/nonexistent-dir/trees.jsonl")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent-dir/trees.jsonl") {
		t.Fatalf("err = %v", err)
	}
}
