package pipeline

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// threadNice reads a thread's nice value from /proc (field 19 of stat).
func threadNice(tid int) (int, error) {
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return strconv.Atoi(f[16]) // fields 3.. start at f[0]; nice is field 19
}

// The engine loop's thread runs engineNice below the process and keeps that thread to
// itself: the lowered priority stays with it and does not reach the
// goroutines that run on the process's other threads, the frame loop's.
func TestLowerThisThread(t *testing.T) {
	before, err := threadNice(unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	type seen struct {
		tid, nice int
		err       error
	}
	got, done := make(chan seen), make(chan struct{})
	go func() {
		if err := lowerThisThread(engineNice); err != nil {
			got <- seen{err: err}
			return
		}
		tid := unix.Gettid()
		n, err := threadNice(tid)
		got <- seen{tid, n, err}
		<-done // stay locked until the test goroutine has looked
	}()
	r := <-got
	defer close(done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if want := min(19, before+engineNice); r.nice != want {
		t.Errorf("engine thread at nice %d, want %d (the caller's %d + %d)", r.nice, want, before, engineNice)
	}
	mine, err := threadNice(unix.Gettid())
	if err != nil {
		t.Fatal(err)
	}
	if mine != before {
		t.Errorf("the caller's thread moved from nice %d to %d", before, mine)
	}
	if r.tid == unix.Gettid() {
		t.Error("the lowered goroutine shared the caller's thread")
	}
}
