package cpuclock

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// spin burns CPU on the calling thread for at least d of wall time.
func spin(d time.Duration) {
	x := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range 1000 {
			x += i
		}
	}
	runtime.KeepAlive(x)
}

// The thread clock counts this thread's spinning, and not a sleep.
func TestThreadCountsItsOwnWork(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	t0 := Thread()
	if t0 <= 0 {
		t.Fatalf("Thread() = %v: no thread CPU clock", t0)
	}
	spin(50 * time.Millisecond)
	t1 := Thread()
	// A loaded machine may take the core away for part of the spin.
	if d := t1 - t0; d < 5*time.Millisecond || d > time.Second {
		t.Fatalf("Thread grew %v over a 50 ms spin, want 5 ms–1 s", d)
	}
	time.Sleep(50 * time.Millisecond)
	if d := Thread() - t1; d > 10*time.Millisecond {
		t.Fatalf("Thread grew %v over a 50 ms sleep: it counts more than this thread's work", d)
	}
}

// The process clock counts every thread, so it is never below one thread's
// and grows by what other threads spin.
func TestProcessCountsEveryThread(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	th, p0 := Thread(), Process()
	if p0 < th {
		t.Fatalf("Process() %v below this thread's %v", p0, th)
	}
	var wg sync.WaitGroup
	var others [2]time.Duration
	for i := range others {
		wg.Go(func() {
			runtime.LockOSThread() // a thread of its own: exits with the goroutine
			t0 := Thread()
			spin(50 * time.Millisecond)
			others[i] = Thread() - t0
		})
	}
	wg.Wait()
	p1 := Process()
	if d := p1 - p0; d < others[0]+others[1] {
		t.Fatalf("Process grew %v while two other threads spun %v and %v", d, others[0], others[1])
	}
}
