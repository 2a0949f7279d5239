package capture

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFFmpegOptionsMerge(t *testing.T) {
	for _, c := range []struct {
		name    string
		user    string
		userSet bool
		kind    Kind
		d       time.Duration
		want    string
	}{
		{"http, unset", "", false, KindHTTP, 5 * time.Second, "rw_timeout;5000000"},
		// OpenCV adds rtsp_flags;prefer_tcp only while the variable is unset: keep that.
		{"rtsp, unset", "", false, KindRTSP, time.Second, "rtsp_flags;prefer_tcp|rw_timeout;1000000|timeout;1000000"},
		{"rtsp, set empty", "", true, KindRTSP, time.Second, "rw_timeout;1000000|timeout;1000000"},
		{"user keys kept", "rtsp_transport;udp|buffer_size;8388608", true, KindRTSP, 2 * time.Second,
			"rw_timeout;2000000|timeout;2000000|rtsp_transport;udp|buffer_size;8388608"},
		{"user timeout wins", "rtsp_transport;tcp| timeout ;9000000", true, KindRTSP, time.Second,
			"rw_timeout;1000000|rtsp_transport;tcp| timeout ;9000000"},
		{"user rw_timeout wins", "rw_timeout;0", true, KindHTTP, time.Second, "rw_timeout;0"},
		{"sub-second", "", false, KindHTTP, 250 * time.Millisecond, "rw_timeout;250000"},
	} {
		got := ffmpegOptions(c.user, c.userSet, c.kind, c.d)
		if got != c.want {
			t.Errorf("%s: ffmpegOptions(%q, %v, %v, %v) = %q, want %q", c.name, c.user, c.userSet, c.kind, c.d, got, c.want)
		}
		// Whatever we add, the user's string survives verbatim at the end,
		// where av_dict_parse_string lets its keys replace ours.
		if c.user != "" && !strings.HasSuffix(got, c.user) {
			t.Errorf("%s: %q dropped or reordered the user's %q", c.name, got, c.user)
		}
	}
}

// Opening a network source sets the variable only for the open and then
// restores the user's value (or its absence), also when cameras open
// concurrently.
func TestFFmpegOptionsEnvRestored(t *testing.T) {
	check := leakCheck(t)
	for _, user := range []*string{nil, strptr("buffer_size;1048576")} {
		if user == nil {
			t.Setenv(ffmpegOptionsEnv, "") // registers the restore at the end of the test
			os.Unsetenv(ffmpegOptionsEnv)
		} else {
			t.Setenv(ffmpegOptionsEnv, *user)
		}
		var wg sync.WaitGroup
		for i, d := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Nothing listens on port 1: the open fails at once.
				src := &Source{cfg: Config{ReadTimeout: d}, kind: []Kind{KindHTTP, KindRTSP, KindHTTP}[i], name: "http://127.0.0.1:1/x", log: quietLog()}
				if vc, _ := src.openNetwork(); vc != nil {
					vc.Close()
				}
			}()
		}
		wg.Wait()
		got, set := os.LookupEnv(ffmpegOptionsEnv)
		if user == nil && set {
			t.Errorf("%s = %q after the opens, want it unset again", ffmpegOptionsEnv, got)
		}
		if user != nil && got != *user {
			t.Errorf("%s = %q after the opens, want the user's %q", ffmpegOptionsEnv, got, *user)
		}
	}
	check()
}

func strptr(s string) *string { return &s }

func TestReadTimeoutDefault(t *testing.T) {
	c, err := Config{Source: "http://x/"}.withDefaults()
	if err != nil || c.ReadTimeout != 5*time.Second {
		t.Errorf("default ReadTimeout = %v, %v; want 5s", c.ReadTimeout, err)
	}
	if _, err := (Config{Source: "http://x/", ReadTimeout: -time.Second}).withDefaults(); err == nil || !strings.Contains(err.Error(), "ReadTimeout") {
		t.Errorf("negative ReadTimeout: err = %v, want one naming ReadTimeout", err)
	}
}

// A camera whose open hangs (a server that accepts and never answers) gives
// up after its ReadTimeout, not OpenCV's 30 s open timeout. That bound
// matters beyond the one camera: OpenCV's FFmpeg backend serialises opens
// process-wide (one lock around avformat_open_input), so every other
// camera's (re)connect waits for the hanging one, as measured here.
func TestHangingOpenIsBoundedByReadTimeout(t *testing.T) {
	check := leakCheck(t)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	good := startMJPEG(t, "127.0.0.1:0", testJPEG(t))

	const timeout = 2 * time.Second
	hung := make(chan time.Duration, 1)
	go func() {
		src := &Source{cfg: Config{ReadTimeout: timeout}, kind: KindHTTP, name: hang.URL + "/video", log: quietLog()}
		t0 := time.Now()
		if vc, _ := src.openNetwork(); vc != nil {
			vc.Close()
		}
		hung <- time.Since(t0)
	}()
	time.Sleep(300 * time.Millisecond) // the hanging open is under way
	src := &Source{cfg: Config{ReadTimeout: timeout}, kind: KindHTTP, name: good.URL + "/video", log: quietLog()}
	t0 := time.Now()
	vc, err := src.openNetwork()
	took := time.Since(t0)
	if err != nil || vc == nil || !vc.IsOpened() {
		t.Fatalf("the good camera did not open: %v", err)
	}
	vc.Close()
	h := <-hung
	t.Logf("hanging open gave up after %v (ReadTimeout %v); the other camera, started 0.3 s later, opened in %v", h, timeout, took)
	if h < timeout/2 || h > 4*timeout {
		t.Errorf("the hanging open returned after %v: want about its ReadTimeout %v (OpenCV alone waits 30 s)", h, timeout)
	}
	if took > 4*timeout {
		t.Errorf("the good camera took %v to open behind a hanging one", took)
	}
	hang.Close()
	stopServer(good)
	check()
}
