package daemon

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tokenizer"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/engine/videmo/openai"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// remoteServer is `edgemo serve`'s handler on the tiny model, on a fixed
// loopback address so it can be killed and started again there.
type remoteServer struct {
	t    *testing.T
	addr string
	srv  *openai.Server
	hs   *http.Server
	reqs atomic.Int64
}

func startRemote(t *testing.T) *remoteServer {
	t.Helper()
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: testenv.ORTLib(t), Providers: []string{"cpu"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	tok, err := tokenizer.Load(testenv.Path(t, "models/videmo-tiny/tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := videmo.NewRunner(rt, testenv.Path(t, "models/videmo-tiny/videmo.manifest.json"), tok, videmo.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	s := &remoteServer{t: t, srv: openai.NewServer(r, openai.ServerConfig{})}
	t.Cleanup(func() { s.kill(); s.srv.Close(); r.Close() })
	s.serve("127.0.0.1:0")
	return s
}

func (s *remoteServer) serve(addr string) {
	s.t.Helper()
	var ln net.Listener
	var err error
	for range 50 { // the port was ours a moment ago
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.addr = ln.Addr().String()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.reqs.Add(1); s.srv.ServeHTTP(w, r) })
	s.hs = &http.Server{Handler: h}
	go s.hs.Serve(ln)
}

// kill closes the listener and every connection, requests in flight too.
func (s *remoteServer) kill() {
	if s.hs != nil {
		s.hs.Close()
		s.hs = nil
	}
}

// The daemon's VidEmo tier on a remote server that is killed mid-run: the
// fast tier keeps publishing trees for the track the whole time, the
// remote failures are counted (stats, /metrics: circuit open, errors by
// kind, the scheduler's errors), and once the server is back VidEmo's
// levels are in the trees again within 5 s.
func TestRemoteVidEmoOutage(t *testing.T) {
	rs := startRemote(t)
	mq := mqtttest.StartMosquitto(t)
	cfg := "engine: {ort_lib: " + testenv.ORTLib(t) + "}\n" +
		"models:\n  videmo: models/videmo-tiny/videmo.manifest.json\n  videmo_remote: {url: http://" + rs.addr + "/v1, timeout: 2s}\n" +
		"privacy: {remote_inference: true}\n" + daemonConfig(t, "  broker: "+mq.URL(), astronaut)
	r, _ := start(t, cfg)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree")
	merged := func(m mqtttest.Message) bool {
		var tr tree.Tree
		return json.Unmarshal([]byte(m.Payload), &tr) == nil && strings.Contains(tr.Source.Engine, "+videmo") && len(tr.Source.Answers) > 0
	}
	sub.Wait(60*time.Second, "a tree with the remote VidEmo's levels", func(ms []mqtttest.Message) bool {
		for _, m := range ms {
			if merged(m) {
				return true
			}
		}
		return false
	})
	if rs.reqs.Load() == 0 {
		t.Fatal("merged trees, but the remote server got no request")
	}

	rs.kill()
	killed := time.Now()
	before := len(sub.Messages(""))
	// Past the merge's age limit and then some: a slow tree is merged only
	// into fast windows that end within MergeMaxAge (5 s, media time) of
	// its own, and the last slow tree's window ended before the kill.
	time.Sleep(9 * time.Second)
	during := sub.Messages("")[before:]
	if len(during) < 5 {
		t.Fatalf("%d trees in 9 s with the server down: the fast tier must keep the track live", len(during))
	}
	snap := r.d.Snapshot().VLM
	if snap == nil || snap.Remote == nil {
		t.Fatalf("no remote stats: %+v", snap)
	}
	rem := snap.Remote
	if rem.Up || rem.Failures+rem.Rejected == 0 || snap.Errors == 0 || len(rem.Errors) == 0 {
		t.Fatalf("outage not counted: scheduler errors %d, remote %+v", snap.Errors, rem)
	}
	metrics := httpGet(t, "http://"+r.d.MetricsAddr()+"/metrics")
	for _, want := range []string{`edgemo_vlm_remote_up{url="http://` + rs.addr + `/v1/chat/completions"} 0`, `edgemo_vlm_remote_requests_total{outcome="failed"}`, `edgemo_vlm_remote_errors_total{kind=`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Judged by each tree's window end, not by when it arrived: under load
	// the fast tier lags the clock, and a window that ended 4 s into the
	// outage may rightly still carry the levels of a slow tree from before it.
	limit := killed.Add(5*time.Second + 200*time.Millisecond)
	stale, late := 0, 0
	for _, m := range during {
		var tr tree.Tree
		if json.Unmarshal([]byte(m.Payload), &tr) != nil || !time.Time(tr.Window.End).After(limit) {
			continue
		}
		late++
		if merged(m) {
			stale++
		}
	}
	if late == 0 {
		t.Fatalf("no tree of the %d during the outage has a window ending more than 5.2 s into it: the fast tier lags by seconds", len(during))
	}
	if stale > 0 {
		t.Errorf("%d of %d trees whose windows end more than 5.2 s into the outage carried VidEmo levels", stale, late)
	}
	rs.serve(rs.addr)
	back := time.Now()
	n := len(sub.Messages(""))
	sub.Wait(10*time.Second, "VidEmo levels after the server's return", func(ms []mqtttest.Message) bool {
		for _, m := range ms[n:] {
			if merged(m) {
				return true
			}
		}
		return false
	})
	resumed := time.Since(back)
	t.Logf("outage %v: %d fast trees during it, %d of them ending past the merge limit; VidEmo levels back %v after the server (remote %+v)", back.Sub(killed).Round(time.Millisecond), len(during), late, resumed.Round(time.Millisecond), rem)
	if resumed > 5*time.Second {
		t.Errorf("VidEmo levels resumed %v after the server returned; want within 5 s", resumed)
	}
	if r.d.Snapshot().VLM.Remote.Up != true {
		t.Error("remote not up again after the server's return")
	}
}
