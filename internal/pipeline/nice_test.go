package pipeline

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// threadNice reads a thread's nice value from /proc (field 19 of stat).
func threadNice(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	n, err := strconv.Atoi(f[16]) // fields 3.. start at f[0]; nice is field 19
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The engine loop's thread runs engineNice below the process and keeps that thread to
// itself: the lowered priority stays with it and does not reach the
// goroutines that run on the process's other threads, the frame loop's.
func TestLowerThisThread(t *testing.T) {
	before := threadNice(t, unix.Gettid())
	got := make(chan [2]int)
	go func() {
		err := lowerThisThread(engineNice)
		if err != nil {
			t.Error(err)
		}
		tid := unix.Gettid()
		got <- [2]int{tid, threadNice(t, tid)}
		<-got // stay locked until the main goroutine has looked
	}()
	r := <-got
	if want := min(19, before+engineNice); r[1] != want {
		t.Errorf("engine thread at nice %d, want %d (the caller's %d + %d)", r[1], want, before, engineNice)
	}
	if mine := threadNice(t, unix.Gettid()); mine != before {
		t.Errorf("the caller's thread moved from nice %d to %d", before, mine)
	}
	if r[0] == unix.Gettid() {
		t.Error("the lowered goroutine shared the caller's thread")
	}
	got <- [2]int{}
}
