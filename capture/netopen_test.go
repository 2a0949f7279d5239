package capture

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture/capturetest"
)

// rtspServer answers every request line it reads with reply (nothing when
// reply is empty) and records the request lines.
func rtspServer(t *testing.T, reply string) (addr string, lines func() []string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu   sync.Mutex
		got  []string
		wg   sync.WaitGroup
		open []net.Conn
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open = append(open, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				line, _ := bufio.NewReader(c).ReadString('\n')
				mu.Lock()
				got = append(got, strings.TrimSpace(line))
				mu.Unlock()
				if reply != "" {
					c.Write([]byte(reply))
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String(), func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), got...) }
}

func TestProbe(t *testing.T) {
	t.Cleanup(leakCheck(t)) // runs last, after the servers' own cleanups
	var auth sync.Map
	httpSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			auth.Store(h, true)
		}
		switch r.URL.Path {
		case "/missing":
			http.NotFound(w, r)
		case "/headers-only": // a stream whose encoder hung after the headers
			w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			w.Write([]byte("--frame\r\n"))
		}
	}))
	defer httpSrv.Close()
	rtspOK, rtspLines := rtspServer(t, "RTSP/1.0 401 Unauthorized\r\nCSeq: 1\r\n\r\n")
	rtspHTTP, _ := rtspServer(t, "HTTP/1.1 400 Bad Request\r\n\r\n")
	silent, stopSilent := capturetest.SilentServer(t)
	refused := func() string { // a port nobody listens on
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		defer ln.Close()
		return ln.Addr().String()
	}()
	host := strings.TrimPrefix(httpSrv.URL, "http://")

	const timeout = 500 * time.Millisecond
	for _, c := range []struct {
		kind    Kind
		url     string
		wantErr string // "" = answers
		slow    bool   // the error comes after the timeout
	}{
		{KindHTTP, "http://user:secret@" + host + "/video", "", false},
		{KindHTTP, httpSrv.URL + "/missing", "", false}, // an error status is an answer
		{KindHTTP, httpSrv.URL + "/headers-only", "headers but no data", true},
		{KindHTTP, "http://" + silent + "/video", "no answer within 500ms", true},
		{KindHTTP, "http://" + refused + "/video", "refused", false},
		{KindRTSP, "rtsp://admin:secret@" + rtspOK + "/stream", "", false},
		{KindRTSP, "rtsp://" + rtspHTTP + "/stream", "not RTSP/", false},
		{KindRTSP, "rtsp://" + silent + "/stream", "no answer within 500ms", true},
		{KindRTSP, "rtsp://" + refused + "/stream", "refused", false},
	} {
		t0 := time.Now()
		err := probe(context.Background(), c.kind, c.url, timeout)
		took := time.Since(t0)
		switch {
		case c.wantErr == "" && err != nil:
			t.Errorf("probe(%s) = %v, want it to answer", c.url, err)
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("probe(%s) = %v, want an error with %q", c.url, err, c.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("probe(%s) error %q shows the password", c.url, err)
		}
		if c.slow && (took < timeout || took > timeout+time.Second) {
			t.Errorf("probe(%s) gave up after %v, want about %v", c.url, took, timeout)
		}
		if !c.slow && took > timeout/2 {
			t.Errorf("probe(%s) took %v, want an immediate answer", c.url, took)
		}
	}
	// Credentials never leave with the probe.
	auth.Range(func(k, _ any) bool { t.Errorf("the HTTP probe sent Authorization %q", k); return true })
	for _, l := range rtspLines() {
		if strings.Contains(l, "secret") || !strings.HasPrefix(l, "OPTIONS rtsp://127.0.0.1:") {
			t.Errorf("RTSP probe sent %q, want OPTIONS without credentials", l)
		}
	}

	// Cancelling ctx (Close, shutdown) ends a probe of a silent camera at once.
	for _, k := range []Kind{KindHTTP, KindRTSP} {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		t0 := time.Now()
		err := probe(ctx, k, strings.ToLower(k.String())+"://"+silent+"/x", 10*time.Second)
		if took := time.Since(t0); err == nil || took > time.Second {
			t.Errorf("%v probe cancelled after 100ms returned %v after %v, want an error at once", k, err, took)
		}
		cancel()
	}
	stopSilent()
	httpSrv.CloseClientConnections()
	httpSrv.Close()
}

// A camera that answers the probe and then stalls inside FFmpeg's open
// (here: HTTP 200 and a first byte, then nothing) gives up after its
// ReadTimeout, through its stream's interrupt callback, not OpenCV's 30 s.
// A good camera's open that starts meanwhile does not wait for it: no lock
// is shared (OpenCV 4.6's FFmpeg backend holds one around every open, and
// a good camera's open took the rest of the stalled one's timeout there).
func TestStalledOpenIsBoundedByReadTimeout(t *testing.T) {
	check := leakCheck(t)
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "multipart/x-mixed-replace; boundary=frame")
		w.Write([]byte("-"))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	good := startMJPEG(t, "127.0.0.1:0", testJPEG(t))

	const timeout = 2 * time.Second
	stalled := make(chan time.Duration, 1)
	go func() {
		src := &Source{cfg: Config{ReadTimeout: timeout}, kind: KindHTTP, name: stall.URL + "/video", log: quietLog()}
		t0 := time.Now()
		if vc, _ := src.openNetwork(context.Background()); vc != nil {
			vc.Close()
		}
		stalled <- time.Since(t0)
	}()
	time.Sleep(300 * time.Millisecond) // the stalled open is inside FFmpeg's
	src := &Source{cfg: Config{ReadTimeout: timeout}, kind: KindHTTP, name: good.URL + "/video", log: quietLog()}
	t0 := time.Now()
	vc, err := src.openNetwork(context.Background())
	took := time.Since(t0)
	if err != nil || vc == nil || !vc.IsOpened() {
		t.Fatalf("the good camera did not open: %v", err)
	}
	vc.Close()
	h := <-stalled
	t.Logf("stalled open gave up after %v (ReadTimeout %v); a good camera's open started 0.3 s later took %v", h, timeout, took)
	if h < timeout-100*time.Millisecond || h > timeout+2*time.Second {
		t.Errorf("the stalled open returned after %v: want about its ReadTimeout %v (OpenCV alone waits 30 s)", h, timeout)
	}
	if took > timeout/2 {
		t.Errorf("the good camera took %v to open beside a stalled one: it waited for it (a local camera opens in tens of ms)", took)
	}
	stall.CloseClientConnections()
	stall.Close()
	stopServer(good)
	check()
}

func TestScrubPassword(t *testing.T) {
	if got := scrubPassword("cannot open rtsp://admin:s3cr3t@cam/x", "rtsp://admin:s3cr3t@cam/x"); strings.Contains(got, "s3cr3t") {
		t.Errorf("scrubPassword left the password in %q", got)
	}
	if got := scrubPassword("plain", "rtsp://cam/x"); got != "plain" {
		t.Errorf("scrubPassword changed %q without a password", got)
	}
}

func TestReadTimeoutAndBackoffDefaults(t *testing.T) {
	c, err := Config{Source: "http://x/"}.withDefaults()
	if err != nil || c.ReadTimeout != 5*time.Second || c.ReconnectMin != 500*time.Millisecond || c.ReconnectMax != 2*time.Second {
		t.Errorf("defaults ReadTimeout %v, backoff %v–%v, err %v; want 5s, 500ms–2s", c.ReadTimeout, c.ReconnectMin, c.ReconnectMax, err)
	}
	if _, err := (Config{Source: "http://x/", ReadTimeout: -time.Second}).withDefaults(); err == nil || !strings.Contains(err.Error(), "ReadTimeout") {
		t.Errorf("negative ReadTimeout: err = %v, want one naming ReadTimeout", err)
	}
	// A ReconnectMin above the default cap raises the cap instead of failing.
	if c, err := (Config{Source: "http://x/", ReconnectMin: 3 * time.Second}).withDefaults(); err != nil || c.ReconnectMax != 3*time.Second {
		t.Errorf("ReconnectMin 3s: ReconnectMax %v, err %v; want 3s", c.ReconnectMax, err)
	}
	// The default schedule: 0.25–0.5 s, 0.5–1 s, then 1–2 s for ever, so
	// a returning camera waits at most 2 s for its next attempt.
	b := backoff{min: c.ReconnectMin, max: c.ReconnectMax}
	for i := 0; i < 20; i++ {
		if d := b.next(); d > DefaultReconnectMax || (i >= 2 && d < DefaultReconnectMax/2) {
			t.Errorf("wait %d = %v, want within the 2 s cap (and ≥ 1 s once capped)", i, d)
		}
	}
}
