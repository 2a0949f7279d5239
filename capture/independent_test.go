package capture

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture/capturetest"
)

// Two silent cameras (one HTTP, one RTSP) and one good HTTP MJPEG camera,
// all with the default ReadTimeout (5 s) and backoff. The good camera's
// server goes away for 8 s, long enough for an uncapped exponential
// backoff to grow past 5 s, and comes back: the good camera must be
// online again within 5 s, whatever the silent ones are doing, and all
// three must close promptly.
func TestCamerasIndependent(t *testing.T) {
	if testing.Short() {
		t.Skip("takes ~15 s")
	}
	jpg := testJPEG(t)
	check := leakCheck(t)
	srv := startMJPEG(t, "127.0.0.1:0", jpg)
	addr := srv.Listener.Addr().String()
	defer func() { stopServer(srv) }()

	good, err := Open(context.Background(), Config{Source: "http://" + addr + "/video.mjpg"}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	var lastFrame atomic.Int64 // unix nanoseconds of the latest frame received
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for f := range good.Frames() {
			lastFrame.Store(f.Time.UnixNano())
			f.Close()
		}
	}()
	waitFor(t, 5*time.Second, "the good camera's first frame", func() bool { return lastFrame.Load() != 0 })

	// The silent cameras open (and keep reopening) in the background: Open
	// itself waits for the first attempt, which is what a daemon does per
	// camera goroutine.
	silentHTTP, stopHTTP := capturetest.SilentServer(t)
	silentRTSP, stopRTSP := capturetest.SilentServer(t)
	silent := make([]*Source, 2)
	var opened sync.WaitGroup
	for i, url := range []string{"http://" + silentHTTP + "/video.mjpg", "rtsp://" + silentRTSP + "/stream"} {
		opened.Add(1)
		go func() {
			defer opened.Done()
			src, err := Open(context.Background(), Config{Source: url}, quietLog())
			if err != nil {
				t.Errorf("Open(%s) = %v, want a source that retries", url, err)
				return
			}
			silent[i] = src
		}()
	}
	time.Sleep(500 * time.Millisecond) // the silent cameras' first opens are under way

	stopServer(srv)
	waitFor(t, 10*time.Second, "the good camera going offline", func() bool { return good.State() != StateOnline })
	failuresBefore := good.Stats().ConnectFailures
	const down = 8 * time.Second
	time.Sleep(down) // the outage itself: nothing to await
	attempts := good.Stats().ConnectFailures - failuresBefore
	srv = startMJPEG(t, addr, jpg)
	back := time.Now()
	waitFor(t, 15*time.Second, "a frame after the server came back", func() bool { return lastFrame.Load() > back.UnixNano() })
	delay := time.Duration(lastFrame.Load() - back.UnixNano())
	t.Logf("good camera: %d failed attempts during the %v outage; first frame %v after its server came back (two silent cameras)", attempts, down, delay)
	if delay > 5*time.Second {
		t.Errorf("good camera online %v after its server came back, want within 5 s", delay)
	}
	// Not hammering: with the backoff capped at 2 s (waits of 1–2 s once
	// capped) an 8 s outage allows about 6 attempts; refused connections
	// fail at once, so more would mean a tight loop.
	if attempts < 2 || attempts > 10 {
		t.Errorf("%d connection attempts during an %v outage, want 2–10 (capped backoff, no tight loop)", attempts, down)
	}

	opened.Wait()
	for i, src := range silent {
		if src == nil {
			continue
		}
		if st := src.State(); st == StateOnline {
			t.Errorf("silent camera %d is %v", i, st)
		}
		// Each attempt waits ReadTimeout (5 s) for an answer that never comes.
		if n := src.Stats().ConnectFailures; n < 1 {
			t.Errorf("silent camera %d: %d failed attempts after 10 s, want its attempts to time out", i, n)
		}
	}
	// Close all three at once, as a daemon shutting down does.
	var wg sync.WaitGroup
	took := make([]time.Duration, 3)
	for i, src := range append([]*Source{good}, silent...) {
		if src == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			src.Close()
			took[i] = time.Since(t0)
		}()
	}
	wg.Wait()
	<-consumed
	t.Logf("Close took good %v, silent http %v, silent rtsp %v", took[0], took[1], took[2])
	for i, d := range took {
		if d > time.Second {
			t.Errorf("Close of camera %d took %v, want under 1 s (a silent camera's probe is cancelled at once)", i, d)
		}
	}
	stopServer(srv)
	stopHTTP()
	stopRTSP()
	check()
}

// waitFor polls cond every 10 ms until it holds, failing t after within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
