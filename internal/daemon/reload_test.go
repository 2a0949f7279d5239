package daemon

// Reloads as transactions, SIGHUP, unique tree ids across restarts, and the
// hardened HTTP listeners.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func getStatus(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// writeConfig replaces the config file by rename, as editors do.
func writeConfig(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// treeCount counts the trees a subscriber has received.
func treeCount(sub *mqtttest.Subscriber) int {
	n := 0
	for _, m := range sub.Messages("") {
		if strings.HasSuffix(m.Topic, "/tree") {
			n++
		}
	}
	return n
}

// A reload naming a broken emotion model is refused as a whole: the camera
// keeps its pipeline and trees keep arriving, while /readyz, the stats topic
// and the metrics report reload_failed; restoring the file clears it.
func TestReloadWithBadModelKeepsTreesFlowing(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	good := daemonConfig(t, "  broker: "+mq.URL(), astronaut)
	r, path := start(t, good)
	d := r.d
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree", "edgemo/stats")
	sub.Wait(20*time.Second, "a first tree", func([]mqtttest.Message) bool { return treeCount(sub) >= 1 })
	d.mu.Lock()
	cam0 := d.cams["astro"]
	d.mu.Unlock()
	base := "http://" + d.MetricsAddr()
	waitFor(t, 15*time.Second, "/readyz 200 before the edit", func() bool { c, _ := getStatus(t, base+"/readyz"); return c == 200 })

	broken := filepath.Join(t.TempDir(), "broken.manifest.json")
	if err := os.WriteFile(broken, []byte("{ not a manifest"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeConfig(t, path, "models:\n  emotion: "+broken+"\n"+good)
	waitFor(t, 15*time.Second, "the bad reload to be reported", func() bool { return d.ReloadError() != "" })
	t.Logf("reload error: %s", d.ReloadError())

	before := treeCount(sub)
	sub.Wait(20*time.Second, "2 more trees after the bad edit", func([]mqtttest.Message) bool { return treeCount(sub) >= before+2 })
	d.mu.Lock()
	cam1 := d.cams["astro"]
	d.mu.Unlock()
	if cam1 != cam0 {
		t.Fatal("the camera was restarted by a reload that failed")
	}
	code, body := getStatus(t, base+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "reload_failed: ") {
		t.Fatalf("/readyz after a bad reload: %d %q; want 503 reload_failed", code, body)
	}
	_, metrics := getStatus(t, base+"/metrics")
	for _, want := range []string{"edgemo_config_reload_failed 1", `edgemo_config_reloads_total{result="failed"} 1`, `edgemo_camera_up{camera="astro"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	sub.WaitTopic(5*time.Second, "edgemo/stats", func(m mqtttest.Message) bool {
		var s Snapshot
		return json.Unmarshal([]byte(m.Payload), &s) == nil && s.Reload.State == "reload_failed" && s.Reload.Error != ""
	})

	// The file fixed: the next reload succeeds and clears the state.
	writeConfig(t, path, good)
	waitFor(t, 15*time.Second, "the good reload to clear reload_failed", func() bool { return d.ReloadError() == "" })
	waitFor(t, 15*time.Second, "/readyz 200 after the fix", func() bool { c, _ := getStatus(t, base+"/readyz"); return c == 200 })
	_, metrics = getStatus(t, base+"/metrics")
	if !strings.Contains(metrics, "edgemo_config_reload_failed 0") || !strings.Contains(metrics, `edgemo_config_reloads_total{result="ok"} 1`) {
		t.Fatalf("metrics after the fix lack reload_failed 0 / one ok reload")
	}
}

// The transaction itself, below the config loader (which may refuse a bad
// model by itself): apply with a model that cannot load changes nothing.
func TestApplyWithBadModelChangesNothing(t *testing.T) {
	r, _ := start(t, daemonConfig(t, "  embedded: {listen: "+freeAddr(t)+"}", astronaut))
	d := r.d
	cfg, err := d.LoadConfig()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Models.Emotion = filepath.Join(t.TempDir(), "missing.manifest.json")
	d.mu.Lock()
	cam0, models0, http0 := d.cams["astro"], d.models, d.httpSrv
	d.mu.Unlock()
	if err := d.apply(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "models") {
		t.Fatalf("apply with a missing model: %v", err)
	}
	d.mu.Lock()
	cam1, models1, http1 := d.cams["astro"], d.models, d.httpSrv
	d.mu.Unlock()
	if cam1 != cam0 || models1 != models0 || http1 != http0 {
		t.Fatal("a failed apply replaced running parts")
	}
	trees := d.Snapshot().Cameras[0].Trees
	waitFor(t, 20*time.Second, "trees after the failed apply", func() bool { return d.Snapshot().Cameras[0].Trees > trees })
}

// A reload that moves a listener onto a busy port keeps the old listener
// serving and reports reload_failed naming the key.
func TestReloadOntoBusyPortKeepsOldListener(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	good := daemonConfig(t, "  embedded: {listen: "+freeAddr(t)+"}", astronaut)
	r, path := start(t, good)
	d := r.d
	httpAddr, metAddr := d.HTTPAddr(), d.MetricsAddr()
	waitFor(t, 15*time.Second, "/readyz 200", func() bool { c, _ := getStatus(t, "http://"+metAddr+"/readyz"); return c == 200 })

	for _, key := range []string{"metrics", "http"} {
		failed := d.Snapshot().Reload.Failed
		// daemonConfig's listeners are configured as port 0 (the kernel's pick)
		writeConfig(t, path, strings.Replace(good, key+": {listen: 127.0.0.1:0}", key+": {listen: "+busy.Addr().String()+"}", 1))
		waitFor(t, 15*time.Second, key+".listen reload to fail", func() bool { return d.Snapshot().Reload.Failed > failed })
		if e := d.ReloadError(); !strings.Contains(e, key+".listen") || !strings.Contains(e, busy.Addr().String()) {
			t.Fatalf("reload error %q does not name %s.listen and the busy address", e, key)
		}
		if d.HTTPAddr() != httpAddr || d.MetricsAddr() != metAddr {
			t.Fatalf("listeners moved: http %s metrics %s", d.HTTPAddr(), d.MetricsAddr())
		}
		if code, body := getStatus(t, "http://"+httpAddr+"/"); code != 200 || !strings.Contains(strings.ToLower(body), "<html") {
			t.Fatalf("old dashboard listener after the failed %s reload: %d", key, code)
		}
		code, body := getStatus(t, "http://"+metAddr+"/readyz")
		if code != http.StatusServiceUnavailable || !strings.Contains(body, "reload_failed: "+key+".listen") {
			t.Fatalf("/readyz on the old metrics listener: %d %q", code, body)
		}
	}
	writeConfig(t, path, good)
	waitFor(t, 15*time.Second, "/readyz 200 after the fix", func() bool { c, _ := getStatus(t, "http://"+metAddr+"/readyz"); return c == 200 })

	// A move onto a free port: the new listener serves, the old one is gone.
	moved := freeAddr(t)
	writeConfig(t, path, strings.Replace(good, "http: {listen: 127.0.0.1:0}", "http: {listen: "+moved+"}", 1))
	waitFor(t, 15*time.Second, "http.listen to move", func() bool { return d.HTTPAddr() == moved })
	if code, _ := getStatus(t, "http://"+moved+"/"); code != 200 {
		t.Fatalf("dashboard on the new address: %d", code)
	}
	if _, err := http.Get("http://" + httpAddr + "/"); err == nil {
		t.Fatal("the old http listener still answers after the move")
	}
	if e := d.ReloadError(); e != "" {
		t.Fatalf("a good move reported %q", e)
	}
}

// SIGHUP reloads the config (and does not kill the process, which is what
// the default disposition would do to this test binary).
func TestSIGHUPReloads(t *testing.T) {
	r, _ := start(t, daemonConfig(t, "  embedded: {listen: "+freeAddr(t)+"}", astronaut))
	n := r.d.Reloads()
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a reload after SIGHUP", func() bool { return r.d.Reloads() == n+1 })
}

// A camera restarted by a reload goes on numbering its tracks where it
// stopped: no tree id repeats (before, the restarted camera's first tree
// was astro-1-000000 again).
func TestTreeIDsUniqueAcrossCameraRestart(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	cfg := daemonConfig(t, "  broker: "+mq.URL(), astronaut)
	r, path := start(t, cfg)
	d := r.d
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree")
	sub.Wait(20*time.Second, "a first tree", func([]mqtttest.Message) bool { return treeCount(sub) >= 1 })
	d.mu.Lock()
	cam0 := d.cams["astro"]
	d.mu.Unlock()

	writeConfig(t, path, strings.Replace(cfg, "stride: 2", "stride: 1", 1))
	waitFor(t, 15*time.Second, "camera astro restarted", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.cams["astro"] != cam0 && d.cams["astro"] != nil
	})
	// The replaced camera has no pipeline any more: it is not up.
	if s := cam0.Status(); s == "online" {
		t.Fatalf("a stopped camera still reports %s", s)
	}
	restartedAt := treeCount(sub)
	sub.Wait(20*time.Second, "2 trees from the restarted camera", func([]mqtttest.Message) bool { return treeCount(sub) >= restartedAt+2 })

	seen := map[string]bool{}
	for _, m := range sub.Messages("") {
		var tr tree.Tree
		if err := json.Unmarshal([]byte(m.Payload), &tr); err != nil {
			t.Fatal(err)
		}
		if seen[tr.ID] {
			t.Fatalf("tree id %s repeated", tr.ID)
		}
		seen[tr.ID] = true
	}
	t.Logf("%d distinct tree ids across the restart", len(seen))
}

// Slow clients are cut off: a POST whose body dribbles in is closed within
// ReadTimeout, and a request under a foreign Host name is refused while no
// webrtc.token is set.
func TestHTTPReadTimeoutAndHostCheck(t *testing.T) {
	oldRead, oldHeader := readTimeout, readHeaderTimeout
	readTimeout, readHeaderTimeout = time.Second, 500*time.Millisecond
	t.Cleanup(func() { readTimeout, readHeaderTimeout = oldRead, oldHeader })
	r, _ := start(t, daemonConfig(t, "  embedded: {listen: "+freeAddr(t)+"}", astronaut))
	addr := r.d.HTTPAddr()

	const n = 5
	var wg sync.WaitGroup
	took := make([]time.Duration, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			took[i] = slowPost(t, addr, 10*time.Second)
		}()
	}
	wg.Wait()
	for i, d := range took {
		if d > readTimeout+2*time.Second {
			t.Errorf("slow POST %d stayed open %v (ReadTimeout %v)", i, d, readTimeout)
		}
	}

	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("Host: evil.example got %d, want 403", resp.StatusCode)
	}
	if code, _ := getStatus(t, "http://"+addr+"/"); code != 200 {
		t.Fatalf("Host %s got %d", addr, code)
	}
}

// slowPost sends a WebRTC offer's headers and then one byte of body every
// 100 ms; it returns how long the server kept the connection open (giving up
// at most).
func slowPost(t *testing.T, addr string, most time.Duration) time.Duration {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer c.Close()
	begin := time.Now()
	fmt.Fprintf(c, "POST /api/webrtc HTTP/1.1\r\nHost: %s\r\nContent-Type: application/sdp\r\nContent-Length: 60000\r\n\r\n", addr)
	closed := make(chan struct{})
	go func() { io.Copy(io.Discard, c); close(closed) }() // ends when the server closes
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for time.Since(begin) < most {
		select {
		case <-closed:
			return time.Since(begin)
		case <-tick.C:
			c.Write([]byte("v"))
		}
	}
	return time.Since(begin)
}

func TestHostGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	host, _ := os.Hostname()
	for _, c := range []struct {
		listen, token, host string
		want                int
	}{
		{"127.0.0.1:8080", "", "127.0.0.1:8080", 200},
		{"127.0.0.1:8080", "", "localhost:8080", 200},
		{"127.0.0.1:8080", "", "app.localhost", 200},
		{"127.0.0.1:8080", "", "[::1]:8080", 200},
		{"0.0.0.0:8080", "", "192.168.1.20:8080", 200}, // by IP: rebinding always comes under a name
		{"kiosk.lan:8080", "", "kiosk.lan:8080", 200},
		{"0.0.0.0:8080", "", strings.ToUpper(host) + ":8080", 200},
		{"127.0.0.1:8080", "", "evil.example", 403},
		{"127.0.0.1:8080", "", "evil.example:8080", 403},
		{"0.0.0.0:8080", "", "localhost.evil.example", 403},
		{"0.0.0.0:8080", "secret", "evil.example", 200}, // the token guards signalling
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.Host = c.host
		w := httptest.NewRecorder()
		hostGuard(c.listen, c.token, ok).ServeHTTP(w, req)
		if w.Code != c.want {
			t.Errorf("listen %s token %q Host %s: %d, want %d (%s)", c.listen, c.token, c.host, w.Code, c.want, w.Body)
		}
	}
}

// recorder keeps warnings.
type recorder struct {
	mu  sync.Mutex
	msg []string
}

func (r *recorder) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	line := rec.Message
	rec.Attrs(func(a slog.Attr) bool { line += " " + a.String(); return true })
	r.msg = append(r.msg, line)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) find(sub string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range r.msg {
		if strings.Contains(m, sub) {
			return true
		}
	}
	return false
}

// A daemon whose listeners face the network warns at start-up: the
// dashboard without a token, pprof on the metrics listener. On loopback
// it does not.
func TestExposureWarnings(t *testing.T) {
	port := func() string { return fmt.Sprint(mqtttest.FreePort(t)) }
	rec := &recorder{}
	cfg := fmt.Sprintf("mqtt: {embedded: {listen: %s}}\nhttp: {listen: '0.0.0.0:%s'}\nmetrics: {listen: '0.0.0.0:%s', pprof: true}\ncameras:\n%s",
		freeAddr(t), port(), port(), astronaut)
	r, _ := startLogged(t, cfg, rec)
	r.stop(t)
	if !rec.find("without a token") || !rec.find("key=http.listen") {
		t.Errorf("no warning for a network-facing dashboard without a token: %q", rec.msg)
	}
	if !rec.find("pprof is on") || !rec.find("key=metrics.listen") {
		t.Errorf("no warning for pprof on a network-facing listener: %q", rec.msg)
	}

	quiet := &recorder{}
	warnExposure(slog.New(quiet), "http.listen", "127.0.0.1:8080", "", false)
	warnExposure(slog.New(quiet), "http.listen", "0.0.0.0:8080", "secret", false)
	warnExposure(slog.New(quiet), "metrics.listen", "[::1]:9108", "", true)
	warnExposure(slog.New(quiet), "metrics.listen", "0.0.0.0:9108", "", false)
	if len(quiet.msg) > 0 {
		t.Errorf("warnings for safe listeners: %q", quiet.msg)
	}
}
