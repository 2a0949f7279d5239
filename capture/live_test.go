package capture

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gocv.io/x/gocv"
)

// testJPEG encodes a small BGR picture with gocv.IMEncode.
func testJPEG(t *testing.T) []byte {
	t.Helper()
	img := gocv.NewMatWithSizeFromScalar(gocv.NewScalar(40, 120, 200, 0), 96, 128, gocv.MatTypeCV8UC3)
	defer img.Close()
	buf, err := gocv.IMEncode(gocv.JPEGFileExt, img)
	if err != nil {
		t.Fatal(err)
	}
	defer buf.Close()
	return slices.Clone(buf.GetBytes())
}

// startMJPEG serves an endless multipart/x-mixed-replace MJPEG stream (the
// format of most IP cameras' /video.mjpg) on addr, at ~50 fps. OpenCV's
// FFmpeg backend reads it directly from the http:// URL (FFmpeg picks its
// mpjpeg demuxer from the Content-Type), so no file needs serving.
func startMJPEG(t *testing.T, addr string, jpg []byte) *httptest.Server {
	t.Helper()
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; { // the port may linger for a moment after a stop
		if ln, err = net.Listen("tcp", addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	// Built once: appending to jpg in the handler would race between
	// connections (the probe's and OpenCV's overlap) when jpg has spare capacity.
	part := append(slices.Clip(jpg), '\r', '\n')
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(jpg)); err != nil {
				return
			}
			if _, err := w.Write(part); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	return srv
}

func stopServer(srv *httptest.Server) {
	srv.CloseClientConnections() // streaming handlers never finish by themselves
	srv.Close()
}

type stateLog struct {
	mu     sync.Mutex
	states []State
}

func (l *stateLog) add(s State) { l.mu.Lock(); l.states = append(l.states, s); l.mu.Unlock() }
func (l *stateLog) get() []State {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.states)
}

// An HTTP MJPEG camera that goes away and comes back on the same port:
// the source goes offline, reconnects with backoff, comes back online and
// keeps numbering frames where it left off.
func TestLiveHTTPReconnect(t *testing.T) {
	jpg := testJPEG(t)
	check := leakCheck(t)
	srv := startMJPEG(t, "127.0.0.1:0", jpg)
	addr := srv.Listener.Addr().String()
	var states stateLog
	src, err := Open(context.Background(), Config{
		Source:       "http://" + addr + "/video.mjpg",
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond,
		OnState: states.add,
	}, quietLog())
	if err != nil {
		stopServer(srv)
		t.Fatal(err)
	}
	if info := src.Info(); info.Kind != KindHTTP || info.Width != 128 || info.Height != 96 {
		t.Errorf("Info = %+v, want http 128x96", info)
	}

	var seqs []uint64
	var pts []time.Duration
	recv := func(n int, within time.Duration) {
		t.Helper()
		timeout := time.After(within)
		for got := 0; got < n; {
			select {
			case f, ok := <-src.Frames():
				if !ok {
					t.Fatalf("Frames closed; Err %v", src.Err())
				}
				if f.Mat.Cols() != 128 || f.Mat.Rows() != 96 || f.Mat.Channels() != 3 {
					t.Errorf("frame %d is %dx%d×%d", f.Seq, f.Mat.Cols(), f.Mat.Rows(), f.Mat.Channels())
				}
				seqs, pts = append(seqs, f.Seq), append(pts, f.PTS)
				f.Close()
				got++
			case <-timeout:
				t.Fatalf("only %d of %d frames within %v; states %v, stats %+v", got, n, within, states.get(), src.Stats())
			}
		}
	}
	recv(10, 5*time.Second)

	stopServer(srv)
	deadline := time.Now().Add(5 * time.Second)
	for src.State() == StateOnline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := src.State(); st == StateOnline {
		t.Fatalf("still online 5s after the server stopped")
	}
	time.Sleep(300 * time.Millisecond) // a few failed attempts (connection refused)
	srv = startMJPEG(t, addr, jpg)
	defer stopServer(srv)

	deadline = time.Now().Add(5 * time.Second)
	for src.Stats().Reconnects == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	before := len(seqs)
	recv(10, 5*time.Second)
	st := src.Stats()
	t.Logf("states %v, stats %+v", states.get(), st)
	if st.Reconnects < 1 {
		t.Errorf("Reconnects = %d, want ≥ 1", st.Reconnects)
	}
	if st.ConnectFailures < 1 {
		t.Errorf("ConnectFailures = %d, want ≥ 1 while the server was down", st.ConnectFailures)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] || pts[i] <= pts[i-1] {
			t.Fatalf("frame %d: Seq %d PTS %v after Seq %d PTS %v: want both increasing across the reconnect", i, seqs[i], pts[i], seqs[i-1], pts[i-1])
		}
	}
	if seqs[before] <= seqs[before-1] {
		t.Errorf("Seq restarted after the reconnect")
	}
	// The state history must show the loss and the recovery in order.
	want := []State{StateOnline, StateOffline, StateReconnecting, StateOnline}
	if !subsequence(states.get(), want) {
		t.Errorf("states %v do not contain %v in order", states.get(), want)
	}
	src.Close()
	if got := states.get(); got[len(got)-1] != StateClosed {
		t.Errorf("last state %v, want closed", got[len(got)-1])
	}
	stopServer(srv)
	check()
}

func subsequence(have, want []State) bool {
	i := 0
	for _, s := range have {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

// A camera that is not there: with RequireOnline Open says so; without it
// the source keeps retrying, reports offline/reconnecting, and still stops
// promptly and cleanly on Close.
func TestLiveDeviceAbsent(t *testing.T) {
	check := leakCheck(t)
	_, err := Open(context.Background(), Config{Source: "/dev/video97", RequireOnline: true}, quietLog())
	if err == nil || !strings.Contains(err.Error(), "/dev/video97") || !strings.Contains(err.Error(), "video group") {
		t.Errorf("Open(/dev/video97, RequireOnline) = %v, want an error naming the device and the fix", err)
	}
	_, err = Open(context.Background(), Config{Source: "edgemonosuchsrc ! appsink", RequireOnline: true}, quietLog())
	if err == nil || !strings.Contains(err.Error(), "gst-launch-1.0") {
		t.Errorf("Open(bad GStreamer pipeline) = %v, want an error with the fix", err)
	}

	var states stateLog
	src, err := Open(context.Background(), Config{Source: "97", ReconnectMin: 10 * time.Millisecond, ReconnectMax: 40 * time.Millisecond, OnState: states.add}, quietLog())
	if err != nil {
		t.Fatalf("Open without RequireOnline = %v, want a source that retries", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for src.Stats().ConnectFailures < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := src.Stats().ConnectFailures; n < 3 {
		t.Errorf("ConnectFailures = %d after waiting, want retries", n)
	}
	t0 := time.Now()
	src.Close()
	if d := time.Since(t0); d > time.Second {
		t.Errorf("Close took %v", d)
	}
	if !subsequence(states.get(), []State{StateOffline, StateReconnecting, StateOffline, StateReconnecting, StateClosed}) {
		t.Errorf("states %v, want offline/reconnecting cycles then closed", states.get())
	}
	if slices.Contains(states.get(), StateOnline) {
		t.Errorf("states %v include online for an absent camera", states.get())
	}
	check()
}

// Cancelling ctx stops a live source the same way Close does.
func TestLiveCancel(t *testing.T) {
	jpg := testJPEG(t)
	check := leakCheck(t)
	srv := startMJPEG(t, "127.0.0.1:0", jpg)
	ctx, cancel := context.WithCancel(context.Background())
	src, err := Open(ctx, Config{Source: "http://" + srv.Listener.Addr().String() + "/v", Buffer: 3}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond) // nobody reads: the queue is full and rolling
	if st := src.Stats(); st.DroppedSlow == 0 {
		t.Errorf("no reader for 200ms but DroppedSlow = 0 (stats %+v)", st)
	}
	cancel()
	select {
	case <-src.done:
	case <-time.After(2 * time.Second):
		t.Fatal("source goroutine still running 2s after cancel")
	}
	if len(src.frames) != 0 {
		t.Errorf("%d frames left queued after cancel", len(src.frames))
	}
	src.Close()
	stopServer(srv)
	check()
}

// startSilentMJPEG serves an MJPEG stream that sends frames jpegs and then
// goes silent while keeping the connection open, like a camera whose
// encoder hangs. Each connection sends the time it went silent on silent
// (if there is room) and then holds until the server stops.
func startSilentMJPEG(t *testing.T, jpg []byte, frames int, silent chan<- time.Time) *httptest.Server {
	t.Helper()
	part := append(slices.Clip(jpg), '\r', '\n') // once: see startMJPEG
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		for i := 0; i < frames; i++ {
			if _, err := fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n", len(jpg)); err != nil {
				return
			}
			if _, err := w.Write(part); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(20 * time.Millisecond)
		}
		select {
		case silent <- time.Now():
		default:
		}
		<-r.Context().Done() // connection open, nothing sent
	}))
	return srv
}

// A camera that stops sending but keeps the TCP connection open: with a 1s
// ReadTimeout the source must notice (read error, offline, reconnect
// attempt) within a small multiple of it, not after OpenCV's 30s; and Close
// during such a stuck read must return as quickly.
func TestLiveHTTPSilentCamera(t *testing.T) {
	jpg := testJPEG(t)
	check := leakCheck(t)
	silent := make(chan time.Time, 1)
	srv := startSilentMJPEG(t, jpg, 15, silent)
	defer stopServer(srv)

	type event struct {
		st State
		at time.Time
	}
	events := make(chan event, 64)
	src, err := Open(context.Background(), Config{
		Source:       "http://" + srv.Listener.Addr().String() + "/video.mjpg",
		ReadTimeout:  time.Second,
		ReconnectMin: 50 * time.Millisecond, ReconnectMax: 100 * time.Millisecond,
		OnState: func(s State) {
			select {
			case events <- event{s, time.Now()}:
			default:
			}
		},
	}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	go func() { // consume, so the frames the camera did send are delivered
		for f := range src.Frames() {
			f.Close()
		}
	}()

	var wentSilent time.Time
	select {
	case wentSilent = <-silent:
	case <-time.After(10 * time.Second):
		src.Close()
		t.Fatalf("the server never went silent; stats %+v", src.Stats())
	}
	// Detection: the first offline state after the camera went silent.
	var detected time.Time
	timeout := time.After(20 * time.Second)
	for detected.IsZero() {
		select {
		case ev := <-events:
			if ev.st == StateOffline && ev.at.After(wentSilent) {
				detected = ev.at
			}
		case <-timeout:
			src.Close()
			t.Fatalf("no read error 20s after the camera went silent (ReadTimeout 1s); stats %+v", src.Stats())
		}
	}
	took := detected.Sub(wentSilent)
	t.Logf("silent camera detected after %v (ReadTimeout 1s); stats %+v", took, src.Stats())
	if took > 10*time.Second {
		t.Errorf("silent camera detected after %v, want well under OpenCV's 30s (ReadTimeout 1s)", took)
	}
	if src.Stats().Read == 0 {
		t.Errorf("no frame read before the camera went silent")
	}
	// The source reconnects (the server accepts, sends frames, goes silent
	// again); close it while its read is stuck.
	deadline := time.Now().Add(10 * time.Second)
	for src.Stats().Reconnects == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if src.Stats().Reconnects == 0 {
		t.Errorf("no reconnect after the silent camera was detected; stats %+v", src.Stats())
	}
	select {
	case <-silent: // the second connection is silent now
	case <-time.After(10 * time.Second):
	}
	t0 := time.Now()
	src.Close()
	closeTook := time.Since(t0)
	t.Logf("Close during a stuck read took %v", closeTook)
	if closeTook > 10*time.Second {
		t.Errorf("Close during a stuck read took %v, want about ReadTimeout (1s)", closeTook)
	}
	if err := src.Err(); err != nil {
		t.Errorf("Err = %v after Close, want nil", err)
	}
	stopServer(srv)
	check()
}
