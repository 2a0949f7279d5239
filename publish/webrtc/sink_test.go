package webrtc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
)

func TestQueueDropsOldest(t *testing.T) {
	q := newQueue(3)
	drops := 0
	for i := range 5 {
		if q.push(message{text: fmt.Sprint(i)}) {
			drops++
		}
	}
	if drops != 2 || q.len() != 3 {
		t.Fatalf("drops %d len %d, want 2 and 3", drops, q.len())
	}
	for _, want := range []string{"2", "3", "4"} {
		m, ok := q.pop()
		if !ok || m.text != want {
			t.Fatalf("pop = %q %v, want %q", m.text, ok, want)
		}
	}
	if _, ok := q.pop(); ok {
		t.Fatal("queue should be empty")
	}
}

func TestLoopbackOnlyStripsOtherCandidates(t *testing.T) {
	in := strings.Join([]string{
		"v=0", "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
		"a=candidate:1 1 udp 2113937151 192.168.1.20 50000 typ host generation 0",
		"a=candidate:2 1 udp 2113937151 127.0.0.1 50001 typ host",
		"a=candidate:3 1 udp 2113937151 3f2a.local 50002 typ host",
		"a=candidate:4 1 udp 2113937151 ::1 50003 typ host",
		"a=candidate:broken", "a=end-of-candidates", "",
	}, "\r\n")
	out := loopbackOnly(in)
	for _, gone := range []string{"192.168.1.20", "3f2a.local", "broken"} {
		if strings.Contains(out, gone) {
			t.Errorf("%s kept:\n%s", gone, out)
		}
	}
	for _, kept := range []string{"127.0.0.1 50001", "::1 50003", "a=end-of-candidates", "m=application"} {
		if !strings.Contains(out, kept) {
			t.Errorf("%s lost:\n%s", kept, out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for name, cfg := range map[string]Config{
		"bad ICE URL":       {ICEServers: []string{"stun.example.org"}},
		"bad network":       {Networks: []string{"192.168.1.0"}},
		"loopback and STUN": {Loopback: true, ICEServers: []string{"stun:127.0.0.1:3478"}},
	} {
		if _, err := New(cfg, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s, err := New(Config{Interfaces: []string{"eth0"}, Networks: []string{"10.0.0.0/8"}, PortMin: 50000, PortMax: 50100}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}

func TestTwoViewersReceiveEveryTreeInOrder(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{})
	a := dial(t, ctx, srv, clientOpts{})
	b := dial(t, ctx, srv, clientOpts{})
	if s.Viewers() != 2 {
		t.Fatalf("Viewers = %d", s.Viewers())
	}
	const n = 200
	for i := range n {
		if err := s.Publish(ctx, makeTree("cam1", 1+i%3, uint64(i), "")); err != nil {
			t.Fatal(err)
		}
	}
	for name, c := range map[string]*client{"a": a, "b": b} {
		waitFor(t, ctx, name+" receives every tree", func() bool { return c.count() >= n })
		for i, m := range c.messages() {
			if err := tree.ValidateJSON([]byte(m)); err != nil {
				t.Fatalf("%s message %d: %v", name, i, err)
			}
			if id, _ := treeID(t, m); id != tree.MakeID("cam1", 1+i%3, uint64(i)) {
				t.Fatalf("%s message %d is %s: out of order", name, i, id)
			}
		}
	}
	if s.Sent() != 2*n || s.Dropped() != 0 {
		t.Fatalf("Sent %d Dropped %d, want %d and 0", s.Sent(), s.Dropped(), 2*n)
	}
}

func TestCameraFilter(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{})
	one := dial(t, ctx, srv, clientOpts{query: "?camera=cam1"})
	two := dial(t, ctx, srv, clientOpts{query: "?camera=cam2,cam3"})
	all := dial(t, ctx, srv, clientOpts{})
	cams := []string{"cam1", "cam2", "cam3"}
	for i := range 30 {
		if err := s.Publish(ctx, makeTree(cams[i%3], 7, uint64(i), "")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "all trees", func() bool { return all.count() == 30 && one.count() == 10 && two.count() == 20 })
	for _, m := range one.messages() {
		if _, tr := treeID(t, m); tr.Camera != "cam1" {
			t.Fatalf("cam1 viewer got %s", tr.ID)
		}
	}
	for _, m := range two.messages() {
		if _, tr := treeID(t, m); tr.Camera == "cam1" {
			t.Fatalf("cam2,cam3 viewer got %s", tr.ID)
		}
	}
	time.Sleep(100 * time.Millisecond) // nothing more arrives
	if one.count() != 10 || two.count() != 20 || all.count() != 30 {
		t.Fatalf("counts %d %d %d", one.count(), two.count(), all.count())
	}
}

// A viewer that stops reading: its SCTP receive window closes, the server's
// send buffer reaches the high-water mark, its queue fills and drops its
// oldest; the fast viewer still gets every tree in order.
func TestSlowViewerDropsOldestOthersUnaffected(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{ViewerBuffer: 32, MaxBufferedBytes: 32 << 10})
	release := make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	slow := dial(t, ctx, srv, clientOpts{block: release, recvBuf: 64 << 10})
	fast := dial(t, ctx, srv, clientOpts{})
	const n = 600 // ~2.4 KB each: ~1.4 MB, far more than slow's buffers hold
	start := time.Now()
	for i := range n {
		// Pace by the fast viewer only, so it never has more than 16 trees
		// queued (its queue holds 32): any drop would be a bug.
		waitFor(t, ctx, "fast viewer keeps up", func() bool { return fast.count() >= i-16 })
		if err := s.Publish(ctx, makeTree("cam1", 1, uint64(i), "")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, "fast viewer gets all", func() bool { return fast.count() == n })
	t.Logf("published %d trees in %v", n, time.Since(start).Round(time.Millisecond))
	for i, m := range fast.messages() {
		if id, _ := treeID(t, m); id != tree.MakeID("cam1", 1, uint64(i)) {
			t.Fatalf("fast message %d is %s", i, id)
		}
	}
	slowStats, ok := s.ViewerStats(strings.TrimPrefix(slow.location, Path+"/"))
	if !ok {
		t.Fatal("slow viewer gone")
	}
	fastStats, _ := s.ViewerStats(strings.TrimPrefix(fast.location, Path+"/"))
	t.Logf("slow: %+v", slowStats)
	if slowStats.Dropped == 0 || fastStats.Dropped != 0 || s.Dropped() != slowStats.Dropped {
		t.Fatalf("dropped: slow %d fast %d total %d", slowStats.Dropped, fastStats.Dropped, s.Dropped())
	}
	if slowStats.Buffered > 32<<10+8<<10 {
		t.Fatalf("slow send buffer %d bytes: high-water mark not applied", slowStats.Buffered)
	}

	// Released, the slow viewer gets every tree that was not dropped, in
	// order, ending with the newest (drop-oldest keeps the latest).
	close(release)
	released = true
	waitFor(t, ctx, "slow viewer drains", func() bool { return uint64(slow.count())+slowStats.Dropped >= n })
	msgs := slow.messages()
	if uint64(len(msgs))+slowStats.Dropped != n {
		t.Fatalf("slow got %d + dropped %d != %d", len(msgs), slowStats.Dropped, n)
	}
	last := -1
	for _, m := range msgs {
		_, tr := treeID(t, m)
		var seq int
		fmt.Sscanf(tr.ID[strings.LastIndexByte(tr.ID, '-')+1:], "%d", &seq)
		if seq <= last {
			t.Fatalf("slow viewer: %s after seq %d", tr.ID, last)
		}
		last = seq
	}
	if last != n-1 {
		t.Fatalf("slow viewer's last tree is seq %d, want %d", last, n-1)
	}
	t.Logf("slow viewer: %d received, %d dropped; total sent %d", len(msgs), slowStats.Dropped, s.Sent())
}

func TestBearerToken(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{Token: "s3cret"})
	pc, _ := offerSDP(t, ctx, loopbackAPI(0), true)
	defer pc.Close()
	for _, tok := range []string{"", "wrong"} {
		resp, body := post(t, ctx, srv.URL+Path, tok, "application/sdp", pc.LocalDescription().SDP)
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "bearer token") ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("token %q: %d %q %q", tok, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if s.Viewers() != 0 {
		t.Fatal("unauthorised offer made a viewer")
	}
	c := dial(t, ctx, srv, clientOpts{token: "s3cret"})
	if got := del(t, ctx, srv.URL+c.location, ""); got != http.StatusUnauthorized {
		t.Fatalf("DELETE without token: %d", got)
	}
	if got := del(t, ctx, srv.URL+c.location, "s3cret"); got != http.StatusNoContent {
		t.Fatalf("DELETE with token: %d", got)
	}
	waitFor(t, ctx, "viewer gone", func() bool { return s.Viewers() == 0 })
}

func TestMalformedOffers(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{})
	audioOnly, _ := offerSDP(t, ctx, loopbackAPI(0), false)
	defer audioOnly.Close()
	for _, c := range []struct {
		name, ctype, body string
		code              int
		msg               string
	}{
		{"empty", "application/sdp", "", 400, "empty body"},
		{"not SDP", "application/sdp", "hello", 400, `must start with "v=0"`},
		{"garbage SDP", "application/sdp", "v=0\r\nthis is not sdp\r\n", 400, "cannot parse SDP"},
		{"no data channel", "application/sdp", audioOnly.LocalDescription().SDP, 400, "no data channel (m=application)"},
		{"JSON", "application/json", `{"type":"offer"}`, 415, "application/sdp"},
		{"too large", "application/sdp", "v=0\r\n" + strings.Repeat("a=x\r\n", 20000), 413, "larger than"},
	} {
		resp, body := post(t, ctx, srv.URL+Path, "", c.ctype, c.body)
		if resp.StatusCode != c.code || !strings.Contains(body, c.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, resp.StatusCode, body, c.code, c.msg)
		}
	}
	if s.Viewers() != 0 {
		t.Fatalf("Viewers = %d after bad offers", s.Viewers())
	}
}

func TestHangUpAndPeerCloseRemoveViewers(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{})

	a := dial(t, ctx, srv, clientOpts{})
	b := dial(t, ctx, srv, clientOpts{})
	waitFor(t, ctx, "2 viewers", func() bool { return s.Viewers() == 2 })

	if got := del(t, ctx, srv.URL+a.location, ""); got != http.StatusNoContent {
		t.Fatalf("DELETE: %d", got)
	}
	waitFor(t, ctx, "1 viewer after DELETE", func() bool { return s.Viewers() == 1 })
	select {
	case <-a.closed:
	case <-ctx.Done():
		t.Fatal("hung-up viewer's channel did not close")
	}
	if got := del(t, ctx, srv.URL+a.location, ""); got != http.StatusNotFound {
		t.Fatalf("second DELETE: %d", got)
	}

	start := time.Now()
	_ = b.pc.Close()
	waitFor(t, ctx, "0 viewers after peer close", func() bool { return s.Viewers() == 0 })
	t.Logf("peer close noticed in %v", time.Since(start).Round(time.Millisecond))
	// Publishing to nobody is fine and sends nothing.
	if err := s.Publish(ctx, makeTree("cam1", 1, 1, "")); err != nil {
		t.Fatal(err)
	}
}

func TestViewerThatNeverConnectsIsRemoved(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{ConnectTimeout: 700 * time.Millisecond})
	dial(t, ctx, srv, clientOpts{noAnswer: true})
	if s.Viewers() != 1 {
		t.Fatalf("Viewers = %d", s.Viewers())
	}
	waitFor(t, ctx, "connect timeout", func() bool { return s.Viewers() == 0 })
}

func TestMaxViewersAndClose(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{MaxViewers: 1})
	c := dial(t, ctx, srv, clientOpts{})
	pc, _ := offerSDP(t, ctx, loopbackAPI(0), true)
	defer pc.Close()
	resp, body := post(t, ctx, srv.URL+Path, "", "application/sdp", pc.LocalDescription().SDP)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "too many viewers") {
		t.Fatalf("second viewer: %d %q", resp.StatusCode, body)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Viewers() != 0 {
		t.Fatalf("Viewers = %d after Close", s.Viewers())
	}
	select {
	case <-c.closed:
	case <-ctx.Done():
		t.Fatal("viewer's channel did not close on sink Close")
	}
	if err := s.Publish(ctx, makeTree("cam1", 1, 1, "")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
}

func TestEventsChannel(t *testing.T) {
	checkGoroutines(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, srv := newServer(t, Config{})
	s.CameraStatus("cam1", publish.StatusReconnecting) // before the viewer: replayed to it
	s.CameraStatus("cam2", publish.StatusOnline)       // filtered out
	c := dial(t, ctx, srv, clientOpts{query: "?camera=cam1", events: true})
	select {
	case m := <-c.events:
		if !strings.Contains(m, `"type":"status","camera":"cam1","status":"reconnecting"`) {
			t.Fatalf("first event %s, want cam1's replayed status", m)
		}
	case <-ctx.Done():
		t.Fatal("no replayed status")
	}
	// The server adopts "events" once it opens on its side too: probe.
	waitFor(t, ctx, "server sends on events", func() bool {
		s.CameraStatus("cam1", publish.StatusOnline)
		select {
		case m := <-c.events:
			return strings.Contains(m, `"type":"status","camera":"cam1","status":"online"`)
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	s.Track(publish.TrackEvent{Type: "update", Camera: "cam1", TrackID: 3})
	s.Track(publish.TrackEvent{Type: "end", Camera: "cam2", TrackID: 4})
	s.Track(publish.TrackEvent{Type: "end", Camera: "cam1", TrackID: 3, Time: time.Now()})
	if err := s.Publish(ctx, makeTree("cam1", 3, 9, "")); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case m := <-c.events:
			if strings.Contains(m, `"type":"status"`) {
				continue // more probes from the wait above
			}
			want := `{"type":"track","event":{"type":"end","camera":"cam1","track_id":3,`
			if !strings.HasPrefix(m, want) {
				t.Fatalf("event %s, want prefix %s (updates and other cameras are not sent)", m, want)
			}
			waitFor(t, ctx, "the tree on trees", func() bool { return c.count() == 1 })
			if id, _ := treeID(t, c.messages()[0]); id != "cam1-3-000009" {
				t.Fatalf("trees got %s", id)
			}
			return
		case <-ctx.Done():
			t.Fatal("no end event")
		}
	}
}
