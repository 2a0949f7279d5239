package webrtc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/ice/v4"
	pion "github.com/pion/webrtc/v4"

	"github.com/edgemo/edgemo/engine/tree"
)

// --- trees ---------------------------------------------------------------

var (
	expressions = []string{"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}
	emotionOf   = map[string]string{"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness",
		"sad": "sadness", "surprise": "surprise", "neutral": "neutral"}
	trends = []string{"rising", "steady", "falling"}
)

// makeTree builds a complete, schema-valid tree for (camera, track, seq);
// the expression is label (one of expressions) or cycles with seq when "".
func makeTree(camera string, track int, seq uint64, label string) *tree.Tree {
	if label == "" {
		label = expressions[(int(seq)/5+track)%len(expressions)]
	}
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * time.Second)
	scores := map[string]float64{}
	rest := 0.3 / float64(len(expressions)-1)
	for _, e := range expressions {
		scores[e] = math.Round(rest*1000) / 1000
	}
	scores[label] = 0.7
	v, a := 0.6-0.1*float64(track%5), 0.4
	onset := tree.Time(t0.Add(500 * time.Millisecond))
	return &tree.Tree{
		Schema: tree.Schema, ID: tree.MakeID(camera, track, seq), Camera: camera, TrackID: track,
		Window: tree.Window{Start: tree.Time(t0), End: tree.Time(t0.Add(4 * time.Second)), Frames: 16, FPS: 4},
		Face:   &tree.Face{Box: [4]float64{100 + float64(40*track), 80, 160, 160}, Score: 0.95, FramesSeen: 16},
		Attributes: &tree.Attributes{
			Age:      &tree.NumberValue{Value: float64(25 + 7*track), Confidence: 0.6},
			Gender:   &tree.LabelValue{Value: []string{"female", "male"}[track%2], Confidence: 0.88},
			HeadPose: &tree.HeadPose{Yaw: -12, Pitch: 4.5, Roll: 1},
			Liveness: &tree.LabelValue{Value: "live", Confidence: 0.95},
			Other:    []tree.NamedValue{{Name: "glasses", Value: "yes", Confidence: 0.8}},
		},
		Expression: &tree.Expression{
			Label: label, Confidence: 0.7, Scores: scores,
			Cues: []tree.Cue{
				{Name: "lip_corner_puller", AU: "AU12", Intensity: 0.7, Onset: &onset, Evidence: tree.EvidenceLandmarks},
				{Name: "cheek_raiser", AU: "AU6", Intensity: 0.4, Evidence: tree.EvidenceVidEmo},
				{Name: "brow_lowerer", AU: "AU4", Intensity: 0.15, Evidence: tree.EvidenceClassifier},
			},
			Valence: &v, Arousal: &a,
		},
		Emotion: &tree.Emotion{
			Label: emotionOf[label], Fine: "amusement", Confidence: 0.66,
			Trend:     trends[int(seq)%3],
			Rationale: fmt.Sprintf("Window %d: %s face held for most of the window.", seq, label),
		},
		Source: tree.Source{Engine: "fast-head", Model: "emotion@0123abcd", Provider: "CPUExecutionProvider", LatencyMS: 3.5},
	}
}

func TestMakeTreeValidates(t *testing.T) {
	for i := range 12 {
		if err := makeTree("cam1", i, uint64(i), "").Validate(); err != nil {
			t.Fatal(err)
		}
	}
}

// --- server --------------------------------------------------------------

func testLogger(t *testing.T) *slog.Logger {
	level := slog.LevelWarn
	if os.Getenv("EDGEMO_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newServer starts a loopback sink behind an httptest server on 127.0.0.1.
func newServer(t *testing.T, cfg Config) (*Sink, *httptest.Server) {
	t.Helper()
	cfg.Loopback = true
	s, err := New(cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s.Handler())
	mux.Handle(Path+"/", s.Handler())
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv.Listener = l
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		_ = s.Close()
	})
	return s, srv
}

// httpClient keeps no idle connections, so no transport goroutines outlive a test.
var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// --- pion client -----------------------------------------------------------

type clientOpts struct {
	query    string // e.g. "?camera=cam1"
	token    string
	recvBuf  uint32        // SCTP receive buffer (0: default)
	block    chan struct{} // OnMessage waits on it after the first message
	noAnswer bool          // post the offer but never apply the answer
	events   bool          // also open "events"; its messages go to client.events
}

type client struct {
	pc       *pion.PeerConnection
	dc       *pion.DataChannel
	location string
	closed   chan struct{}
	events   chan string

	mu   sync.Mutex
	got  []string
	more chan struct{}
}

func (c *client) messages() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.got...)
}

func (c *client) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got)
}

func loopbackAPI(recvBuf uint32) *pion.API {
	var s pion.SettingEngine
	s.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	s.SetIncludeLoopbackCandidate(true)
	s.SetInterfaceFilter(func(n string) bool { return n == "lo" })
	s.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() && ip.To4() != nil })
	s.SetNetworkTypes([]pion.NetworkType{pion.NetworkTypeUDP4})
	if recvBuf > 0 {
		s.SetSCTPMaxReceiveBufferSize(recvBuf)
	}
	return pion.NewAPI(pion.WithSettingEngine(s))
}

// offerSDP makes a pion peer's offer (after gathering).
func offerSDP(t *testing.T, ctx context.Context, api *pion.API, withChannel bool) (*pion.PeerConnection, *pion.DataChannel) {
	t.Helper()
	pc, err := api.NewPeerConnection(pion.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	var dc *pion.DataChannel
	if withChannel {
		ordered := true
		if dc, err = pc.CreateDataChannel(TreesLabel, &pion.DataChannelInit{Ordered: &ordered}); err != nil {
			t.Fatal(err)
		}
	} else if _, err := pc.AddTransceiverFromKind(pion.RTPCodecTypeAudio); err != nil {
		t.Fatal(err)
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := pion.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		t.Fatal("client ICE gathering timed out")
	}
	return pc, dc
}

func post(t *testing.T, ctx context.Context, url, token, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func del(t *testing.T, ctx context.Context, url, token string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// dial connects a pion viewer and waits for its "trees" channel to open.
func dial(t *testing.T, ctx context.Context, srv *httptest.Server, o clientOpts) *client {
	t.Helper()
	pc, dc := offerSDP(t, ctx, loopbackAPI(o.recvBuf), true)
	c := &client{pc: pc, dc: dc, closed: make(chan struct{}), more: make(chan struct{}, 1)}
	t.Cleanup(func() { _ = pc.Close() })
	opened := make(chan struct{})
	dc.OnOpen(func() { close(opened) })
	evOpened := make(chan struct{})
	if o.events {
		c.events = make(chan string, 64)
		ev, err := pc.CreateDataChannel(EventsLabel, nil)
		if err != nil {
			t.Fatal(err)
		}
		ev.OnOpen(func() { close(evOpened) })
		ev.OnMessage(func(m pion.DataChannelMessage) { c.events <- string(m.Data) })
	} else {
		close(evOpened)
	}
	dc.OnClose(func() { close(c.closed) })
	first := true
	dc.OnMessage(func(m pion.DataChannelMessage) {
		c.mu.Lock()
		c.got = append(c.got, string(m.Data))
		c.mu.Unlock()
		select {
		case c.more <- struct{}{}:
		default:
		}
		if first && o.block != nil {
			first = false
			<-o.block // a viewer that stops reading: SCTP's window closes behind it
		}
	})
	resp, body := post(t, ctx, srv.URL+Path+o.query, o.token, "application/sdp", pc.LocalDescription().SDP)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST offer: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		t.Fatalf("answer Content-Type %q", ct)
	}
	c.location = resp.Header.Get("Location")
	if !strings.HasPrefix(c.location, Path+"/") {
		t.Fatalf("Location %q", c.location)
	}
	if !strings.Contains(body, "a=candidate:") || !strings.Contains(body, " 127.0.0.1 ") {
		t.Fatalf("answer has no loopback candidate:\n%s", body)
	}
	if o.noAnswer {
		return c
	}
	if err := pc.SetRemoteDescription(pion.SessionDescription{Type: pion.SDPTypeAnswer, SDP: body}); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []chan struct{}{opened, evOpened} {
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("data channel did not open (pc %s)", pc.ConnectionState())
		}
	}
	return c
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// checkGoroutines registers a cleanup (run last) that fails the test if
// goroutines started during it are still running.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("%d goroutines left (had %d before):\n%s", n, before, buf)
		}
	})
}

func treeID(t *testing.T, msg string) (string, *tree.Tree) {
	t.Helper()
	var tr tree.Tree
	if err := json.NewDecoder(bytes.NewReader([]byte(msg))).Decode(&tr); err != nil {
		t.Fatalf("message is not a tree: %v: %q", err, msg)
	}
	return tr.ID, &tr
}
