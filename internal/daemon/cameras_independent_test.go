package daemon

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture/capturetest"
)

// mjpegServer serves an endless MJPEG stream (multipart/x-mixed-replace,
// ~25 fps) on addr, the format of most IP cameras' /video.mjpg.
type mjpegServer struct {
	srv *http.Server
	ln  net.Listener
	wg  sync.WaitGroup
}

func startMJPEGServer(t *testing.T, addr string) *mjpegServer {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 160, 120))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 7)
	}
	img.Set(0, 0, color.White)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		t.Fatal(err)
	}
	jpg := buf.Bytes()
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
	m := &mjpegServer{ln: ln, srv: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		tick := time.NewTicker(40 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := fmt.Fprintf(w, "--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n", len(jpg), jpg); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-tick.C:
			}
		}
	})}}
	m.wg.Add(1)
	go func() { defer m.wg.Done(); m.srv.Serve(ln) }()
	t.Cleanup(m.stop)
	return m
}

// stop closes the listener and every connection, as a camera that reboots.
func (m *mjpegServer) stop() {
	m.srv.Close()
	m.wg.Wait()
}

func cameraStatus(r *running, name string) string {
	for _, c := range r.d.Snapshot().Cameras {
		if c.Name == name {
			return c.Status
		}
	}
	return ""
}

func awaitStatus(t *testing.T, r *running, name string, within time.Duration, ok func(string) bool, what string) time.Duration {
	t.Helper()
	t0 := time.Now()
	for !ok(cameraStatus(r, name)) {
		if time.Since(t0) > within {
			t.Fatalf("camera %s: %s not reached within %v (status %q)", name, what, within, cameraStatus(r, name))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(t0)
}

// A daemon with two silent cameras (HTTP and RTSP, default read_timeout
// 5 s) and one good HTTP MJPEG camera: the good camera's reconnect after
// its server restarts is not held up by the silent ones (online within
// 5 s), and cancel stops the daemon within its 5 s shutdown budget.
func TestCamerasAreIndependent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a daemon for ~15 s")
	}
	good := startMJPEGServer(t, "127.0.0.1:0")
	goodAddr := good.ln.Addr().String()
	cameras := fmt.Sprintf(`  good:
    source: http://%s/video.mjpg
  silenthttp:
    source: http://%s/video.mjpg
  silentrtsp:
    source: rtsp://%s/stream
`, goodAddr, silentAddr(t), silentAddr(t))
	r, _ := start(t, daemonConfig(t, "  embedded: {listen: "+freeAddr(t)+"}", cameras))
	online := func(s string) bool { return s == "online" }
	awaitStatus(t, r, "good", 15*time.Second, online, "online")
	time.Sleep(time.Second) // the silent cameras' attempts are under way
	for _, name := range []string{"silenthttp", "silentrtsp"} {
		if s := cameraStatus(r, name); s == "online" {
			t.Errorf("camera %s is online", name)
		}
	}

	good.stop()
	awaitStatus(t, r, "good", 10*time.Second, func(s string) bool { return s != "online" }, "offline")
	time.Sleep(4 * time.Second)   // the outage: long enough for retries to pile up behind silent cameras
	startMJPEGServer(t, goodAddr) // its cleanup stops it
	back := awaitStatus(t, r, "good", 15*time.Second, online, "online again")
	t.Logf("good camera online %v after its server came back, beside two silent cameras", back)
	if back > 5*time.Second {
		t.Errorf("good camera online %v after its server came back, want within 5 s", back)
	}

	t0 := time.Now()
	r.stop(t) // fails the test on an unclean stop or one over ShutdownTimeout + 1 s
	took := time.Since(t0)
	t.Logf("shutdown took %v with two silent cameras", took)
	if took > ShutdownTimeout {
		t.Errorf("shutdown took %v, want within %v", took, ShutdownTimeout)
	}
}

// silentAddr is a camera that accepts and never sends.
func silentAddr(t *testing.T) string {
	addr, _ := capturetest.SilentServer(t)
	return addr
}
