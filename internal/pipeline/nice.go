package pipeline

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// Why the engine runs below the frames.
//
// A camera drops frames when its frame loop (detection, tracking, crops)
// falls more than the capture queue behind the clock; its engine loop
// (the emotion head, the face heads, VidEmo) has a queue of whole windows
// and trees a second or more apart, so it can wait. On a machine whose
// cores are shared by several cameras the OS splits them evenly among
// every busy thread, and a clip's cut (new faces: full detections on
// every frame, first looks at every head) then stalls the frame loops
// behind the heads of every camera. engineNice lowers the engine loop's
// thread by 10 nice levels (weight 110 against 1024: a tenth of a core when
// frame loops want the rest), so heads take what the frame loops leave and
// catch up between cuts, which they can as long as the whole process fits
// the cores.
const engineNice = 10

// lowerThisThread pins the calling goroutine to its OS thread for the rest
// of its life and lowers that thread's priority by by nice levels (to at
// most 19), relative to the process's, so a daemon started under nice
// keeps the same order. The thread is never handed back: Go ends a thread
// whose goroutine exits locked, so the lowered priority never leaks into
// other goroutines. An unprivileged process may always lower a thread's
// priority; a failure is returned and costs nothing but the ordering.
func lowerThisThread(by int) error {
	runtime.LockOSThread()
	tid := unix.Gettid()
	raw, err := unix.Getpriority(unix.PRIO_PROCESS, tid)
	if err != nil {
		return err
	}
	cur := 20 - raw // the system call's answer, not nice(2)'s: 20 − nice
	return unix.Setpriority(unix.PRIO_PROCESS, tid, min(19, cur+by))
}
