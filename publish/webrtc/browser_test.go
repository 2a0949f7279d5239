package webrtc

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/web"
)

// browserDeps finds Chromium and playwright-core (scripts/setup.sh --test);
// without them the test skips, or fails under CI.
func browserDeps(t *testing.T) (nodeModules string) {
	nodeModules = os.Getenv("EDGEMO_NODE_MODULES")
	if nodeModules == "" {
		nodeModules, _ = filepath.Abs("../../deps/node/node_modules")
	}
	var missing []string
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		missing = append(missing, "/usr/bin/chromium")
	}
	if _, err := os.Stat(filepath.Join(nodeModules, "playwright-core", "package.json")); err != nil {
		missing = append(missing, filepath.Join(nodeModules, "playwright-core"))
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if len(missing) > 0 {
		// Never a skip: make test installs these, and a skipped browser test
		// would hide a dashboard nobody checked.
		t.Fatalf("browser test needs %s: run scripts/setup.sh --test", strings.Join(missing, ", "))
	}
	return nodeModules
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("EDGEMO_ARTIFACTS"); d != "" {
		d = filepath.Join(d, "webrtc-dashboard")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

type browserMsg struct {
	Type     string   `json:"type"`
	Args     []string `json:"args"`
	OpenMS   int      `json:"open_ms"`
	AfterMS  int      `json:"after_ms"`
	MS       int      `json:"ms"`
	Error    string   `json:"error"`
	Status   string   `json:"status"`
	Badges   []string `json:"badges"`
	Requests []string `json:"requests"`
	Cards    []struct {
		Camera     string `json:"camera"`
		Track      int    `json:"track"`
		Emotion    string `json:"emotion"`
		Scores     int    `json:"scores"`
		Cues       int    `json:"cues"`
		Attributes int    `json:"attributes"`
		Trend      string `json:"trend"`
		Rationale  string `json:"rationale"`
		Timeline   int    `json:"timeline"`
	} `json:"cards"`
	Net struct {
		Processes int      `json:"processes"`
		Sockets   int      `json:"sockets"`
		Bad       []string `json:"bad"`
	} `json:"net"`
}

// TestDashboardInChromium serves the dashboard and the signalling API on
// 127.0.0.1, publishes real trees for 4 faces on 2 cameras while headless
// Chromium shows them, ends one track, and checks the DOM.
func TestDashboardInChromium(t *testing.T) {
	nodeModules := browserDeps(t)
	out := artifactDir(t)
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	s, err := New(Config{Loopback: true}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s.Handler())
	mux.Handle(Path+"/", s.Handler())
	mux.Handle("/", web.Handler())
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	defer func() {
		_ = srv.Close()
		_ = s.Close()
	}()
	base := "http://" + l.Addr().String()

	// Publisher: every 100 ms one tree per active face.
	type face struct {
		camera string
		track  int
	}
	var (
		mu     sync.Mutex
		active = []face{{"cam1", 1}, {"cam1", 2}, {"cam1", 3}, {"cam2", 5}}
		last   = map[string]string{} // "cam/track" -> emotion label of its last tree
		seq    uint64
		pubErr error
	)
	s.CameraStatus("cam1", publish.StatusOnline)
	s.CameraStatus("cam2", publish.StatusReconnecting)
	pubCtx, stopPub := context.WithCancel(ctx)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-pubCtx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			seq++
			for _, f := range active {
				tr := makeTree(f.camera, f.track, seq, "")
				if err := tr.Validate(); err != nil && pubErr == nil {
					pubErr = err
				}
				if err := s.Publish(pubCtx, tr); err != nil && pubErr == nil {
					pubErr = err
				}
				last[fmt.Sprintf("%s/%d", f.camera, f.track)] = tr.Emotion.Label
			}
			mu.Unlock()
		}
	}()
	defer func() { stopPub(); <-pubDone }()

	script, _ := filepath.Abs("testdata/dashboard.cjs")
	cmd := exec.CommandContext(ctx, "node", script, base+"/", out)
	cmd.Env = append(os.Environ(), "EDGEMO_NODE_MODULES="+nodeModules)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // Chromium goes with node
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // whatever is left of the group
	}()

	var done *browserMsg
	reconnected := false
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m browserMsg
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Logf("node: %s", sc.Text())
			continue
		}
		switch m.Type {
		case "cmdline":
			checkChromiumFlags(t, m.Args)
		case "live":
			t.Logf("data channel open %d ms after navigation (%d ms after node start)", m.OpenMS, m.MS)
		case "ready":
			if len(m.Cards) != 4 {
				t.Errorf("ready with %d cards, want 4", len(m.Cards))
			}
			mu.Lock()
			active = slices.DeleteFunc(active, func(f face) bool { return f.camera == "cam1" && f.track == 2 })
			delete(last, "cam1/2")
			mu.Unlock()
			s.Track(publish.TrackEvent{Type: "end", Camera: "cam1", TrackID: 2, Time: time.Now()})
			time.Sleep(1500 * time.Millisecond)
			stopPub()
			<-pubDone
			mu.Lock()
			b, _ := json.Marshal(map[string]any{"gone": "cam1/2", "expect": last})
			mu.Unlock()
			if _, err := fmt.Fprintf(stdin, "%s\n", b); err != nil {
				t.Fatal(err)
			}
		case "done":
			done = &m
			// Hang up on the page from the server side; it must reconnect.
			for _, v := range s.Stats() {
				s.hangUp(v.ID)
			}
			if _, err := fmt.Fprintln(stdin, "reconnect"); err != nil {
				t.Fatal(err)
			}
		case "reconnected":
			reconnected = true
			t.Logf("page reconnected %d ms after the server hung up", m.AfterMS)
		case "error":
			t.Errorf("browser: %s", m.Error)
			t.Logf("requests: %q", m.Requests)
		}
	}
	err = cmd.Wait()
	t.Logf("node + Chromium ran %v", time.Since(start).Round(time.Millisecond))
	if stderr.Len() > 0 {
		t.Logf("node stderr:\n%s", stderr.String())
	}
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	if pubErr != nil {
		t.Fatalf("publisher: %v", pubErr)
	}
	if done == nil || !reconnected {
		t.Fatalf("browser did not finish (done %v, reconnected %v)", done != nil, reconnected)
	}
	closed := time.Now()
	waitFor(t, ctx, "no viewers after the page closed", func() bool { return s.Viewers() == 0 })
	t.Logf("viewer gone %v after the page closed", time.Since(closed).Round(time.Millisecond))

	// The DOM: 3 faces left, each with the label of its last tree and every level drawn.
	mu.Lock()
	defer mu.Unlock()
	if len(done.Cards) != len(last) {
		t.Fatalf("%d cards, want %d: %+v", len(done.Cards), len(last), done.Cards)
	}
	for _, c := range done.Cards {
		key := fmt.Sprintf("%s/%d", c.Camera, c.Track)
		if want, ok := last[key]; !ok || c.Emotion != want {
			t.Errorf("card %s shows %q, want %q", key, c.Emotion, want)
		}
		if c.Scores != 7 || c.Cues != 3 || c.Attributes < 4 || c.Trend == "" || !strings.HasPrefix(c.Rationale, "Window ") || c.Timeline == 0 {
			t.Errorf("card %s incomplete: %+v", key, c)
		}
	}
	if done.Status != "live" {
		t.Errorf("status %q, want live", done.Status)
	}
	if !slices.Contains(done.Badges, "online") || !slices.Contains(done.Badges, "reconnecting") {
		t.Errorf("camera badges %q, want online and reconnecting", done.Badges)
	}
	for _, r := range done.Requests {
		if !strings.Contains(r, " "+base+"/") {
			t.Errorf("page request off the test server: %s", r)
		}
	}
	if len(done.Net.Bad) > 0 {
		t.Errorf("Chromium sockets to non-loopback addresses: %q", done.Net.Bad)
	}
	t.Logf("page requests: %q", done.Requests)
	t.Logf("Chromium: %d processes, %d sockets, none to a non-loopback address", done.Net.Processes, done.Net.Sockets)
	t.Logf("screenshots: %s and %s", filepath.Join(out, "dashboard-4faces.png"), filepath.Join(out, "dashboard.png"))
	if s.Dropped() != 0 {
		t.Errorf("dropped %d trees for one fast browser", s.Dropped())
	}
}

// checkChromiumFlags checks the running Chromium got every flag that
// docs/browser-tests.md requires and exactly one --disable-features.
func checkChromiumFlags(t *testing.T, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("could not read Chromium's command line")
	}
	for _, want := range []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"} {
		if !slices.Contains(args, want) {
			t.Errorf("Chromium runs without %q", want)
		}
	}
	var df []string
	for _, a := range args {
		if strings.HasPrefix(a, "--disable-features=") {
			df = append(df, a)
		}
	}
	if len(df) != 1 {
		t.Fatalf("Chromium got %d --disable-features flags (it keeps only the last): %q", len(df), df)
	}
	features := strings.Split(strings.TrimPrefix(df[0], "--disable-features="), ",")
	for _, f := range []string{"WebRtcHideLocalIpsWithMdns", "NetworkTimeServiceQuerying", "OptimizationHints"} {
		if !slices.Contains(features, f) {
			t.Errorf("--disable-features lacks %s: %s", f, df[0])
		}
	}
}
