// Package cpuclock reads the kernel's CPU-time clocks: the calling OS
// thread's and the whole process's.
package cpuclock

import (
	"syscall"
	"time"
	"unsafe"
)

// Linux's clock ids (<linux/time.h>); package syscall does not name them.
const (
	processCPUTime = 2 // CLOCK_PROCESS_CPUTIME_ID
	threadCPUTime  = 3 // CLOCK_THREAD_CPUTIME_ID
)

// Thread is the calling OS thread's CPU time, 0 where the OS does not say.
// Around a cgo call on a goroutine locked to its thread
// (runtime.LockOSThread) the difference is the call's own CPU time, which a
// loaded machine does not inflate the way it inflates wall time; unlocked,
// the goroutine may move threads between two readings.
func Thread() time.Duration { return clock(threadCPUTime) }

// Process is this process's CPU time, user and system, over every thread,
// exited ones included; 0 where the OS does not say. Its own clock rather
// than getrusage: nanoseconds, not microseconds, so a reading after Thread
// is never below it.
func Process() time.Duration { return clock(processCPUTime) }

func clock(id uintptr) time.Duration {
	var ts syscall.Timespec
	if _, _, e := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, id, uintptr(unsafe.Pointer(&ts)), 0); e != 0 {
		return 0
	}
	return time.Duration(ts.Nano())
}
