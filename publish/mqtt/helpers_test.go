package mqtt_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// sampleTree is a schema-valid tree; seq goes into the id so receivers can
// check order.
func sampleTree(cam string, track int, seq uint64) *tree.Tree {
	t0 := time.Date(2026, 11, 23, 10, 0, 1, 200e6, time.UTC).Add(time.Duration(seq) * time.Second)
	v, a := 0.65, 0.4
	return &tree.Tree{
		Schema: tree.Schema, ID: tree.MakeID(cam, track, seq), Camera: cam, TrackID: track,
		Window: tree.Window{Start: tree.Time(t0), End: tree.Time(t0.Add(4 * time.Second)), Frames: 16, FPS: 4},
		Face:   &tree.Face{Box: [4]float64{412, 96, 180, 180}, Score: 0.97, FramesSeen: 16},
		Expression: &tree.Expression{
			Label: "happy", Confidence: 0.82,
			Scores:  map[string]float64{"happy": 0.82, "neutral": 0.18},
			Valence: &v, Arousal: &a,
		},
		Emotion: &tree.Emotion{Label: "happiness", Confidence: 0.78, Trend: "rising", Rationale: "Sustained smile."},
		Source:  tree.Source{Engine: "fast-head", Model: "emotion@0123abcd", Provider: "CPUExecutionProvider", LatencyMS: 3.5},
	}
}

// treeSeq reads the window sequence number back from a tree payload's id
// ("<camera>-<track>-<seq>"); it looks at the id only, as it runs often.
func treeSeq(t testing.TB, payload string) uint64 {
	t.Helper()
	const key = `"id":"`
	i := strings.Index(payload, key)
	if i < 0 {
		t.Fatalf("tree payload without id: %.80s", payload)
	}
	id := payload[i+len(key):]
	id = id[:strings.IndexByte(id, '"')]
	seq, err := strconv.ParseUint(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
	if err != nil {
		t.Fatalf("tree id %q: %v", id, err)
	}
	return seq
}

type logBuf = testenv.SyncBuffer

// newSink creates and starts a sink; it is closed when the test ends.
func newSink(t *testing.T, cfg mqtt.Config) (*mqtt.Sink, *logBuf) {
	t.Helper()
	lb := &logBuf{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if cfg.MaxReconnectInterval == 0 {
		cfg.MaxReconnectInterval = 200 * time.Millisecond
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 2 * time.Second
	}
	s, err := mqtt.New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		cancel()
		if t.Failed() {
			t.Logf("sink log:\n%s", lb.String())
		}
	})
	return s, lb
}

func waitConnected(t *testing.T, s *mqtt.Sink) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond every 10 ms until timeout.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// treeSeqs returns the seqs of tree messages in arrival order.
func treeSeqs(t testing.TB, ms []mqtttest.Message) []uint64 {
	var out []uint64
	for _, m := range ms {
		if strings.HasSuffix(m.Topic, "/tree") {
			out = append(out, treeSeq(t, m.Payload))
		}
	}
	return out
}

// firstSeen dedups seqs keeping first appearances, and counts duplicates.
func firstSeen(seqs []uint64) (uniq []uint64, dups int) {
	seen := map[uint64]bool{}
	for _, s := range seqs {
		if seen[s] {
			dups++
			continue
		}
		seen[s] = true
		uniq = append(uniq, s)
	}
	return uniq, dups
}

func payloads(ms []mqtttest.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Payload
	}
	return out
}

func intp(v int) *int { return &v }
