package main

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/publish"
)

var lostRE = regexp.MustCompile(`edgemo: (\d+) of (\d+) trees could not be written to /dev/full: no space left on device`)

// Issue 10, defect 5: analyze --out /dev/full exited 0 after losing every
// tree. Now it exits 1 and says how many of how many were lost, and why.
func TestAnalyzeToFullDiskFails(t *testing.T) {
	code, _, stderr := edgemo(t, "analyze", testenv.Media(t, "astronaut.png"), "--out", "/dev/full", "--progress", "off", "--providers", "cpu")
	if code != 1 {
		t.Fatalf("analyze --out /dev/full: exit %d, want 1\n%s", code, stderr)
	}
	m := lostRE.FindStringSubmatch(stderr)
	if m == nil {
		t.Fatalf("no count of lost trees in:\n%s", stderr)
	}
	lost, _ := strconv.Atoi(m[1])
	produced, _ := strconv.Atoi(m[2])
	if lost == 0 || lost != produced {
		t.Errorf("%d of %d trees lost; /dev/full takes none, so all of them (and at least one)", lost, produced)
	}
	t.Log(lastLine(stderr))
	// A device that takes the trees is fine, though it cannot be fsynced.
	if code, _, stderr := edgemo(t, "analyze", testenv.Media(t, "astronaut.png"), "--out", "/dev/null", "--progress", "off", "--providers", "cpu"); code != 0 {
		t.Fatalf("analyze --out /dev/null: exit %d\n%s", code, stderr)
	}
}

// failAfter takes n writes, then fails like a full disk.
type failAfter struct{ n int }

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n == 0 {
		return 0, syscall.ENOSPC
	}
	f.n--
	return len(p), nil
}

// Some trees lost, not all: the count is the lost ones, of all produced.
func TestLossCounterCountsPartialLoss(t *testing.T) {
	l := &lossCounter{JSONL: publish.NewJSONL(&failAfter{n: 2}, "out.jsonl")}
	for i := range 5 {
		err := l.Publish(context.Background(), &tree.Tree{ID: fmt.Sprintf("cam-1-%06d", i)})
		if (i >= 2) != (err != nil) {
			t.Fatalf("tree %d: err %v", i, err)
		}
	}
	err := l.finish(5)
	if err == nil || !strings.Contains(err.Error(), "3 of 5 trees could not be written to out.jsonl") || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("finish: %v", err)
	}
	if err := (&lossCounter{JSONL: publish.NewJSONL(&failAfter{n: 9}, "ok.jsonl")}).finish(3); err != nil {
		t.Fatalf("no tree lost, yet %v", err)
	}
}
