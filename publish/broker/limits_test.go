package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/edgemo/edgemo/publish/broker"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

func start(t *testing.T, o broker.Options) (*broker.Broker, *syncBuf) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuf{}
	o.Listen = "127.0.0.1:0"
	b, err := broker.StartWith(ctx, o, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = b.Close() })
	return b, logs
}

// dial connects a plain client (no reconnect: a refused or cut connection
// stays so).
func dial(t *testing.T, url, id, user, pass string) (paho.Client, error) {
	t.Helper()
	o := paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false).
		SetConnectRetry(false).SetConnectTimeout(3 * time.Second)
	if user != "" {
		o.SetUsername(user).SetPassword(pass)
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(5 * time.Second) {
		return nil, fmt.Errorf("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(50) })
	return c, nil
}

// publishOK reports whether the broker acknowledged a QoS 1 publish.
func publishOK(c paho.Client, topic, payload string, retained bool) bool {
	tok := c.Publish(topic, 1, retained, payload)
	return tok.WaitTimeout(2*time.Second) && tok.Error() == nil && c.IsConnectionOpen()
}

// The default packet limit refuses a 1 MB publish before reading it (the
// client is disconnected, nothing is retained); 100 KB passes.
func TestMaxPacketSize(t *testing.T) {
	b, _ := start(t, broker.Options{})
	c, err := dial(t, b.URL(), "big", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !publishOK(c, "big/small", strings.Repeat("x", 100<<10), true) {
		t.Fatal("a 100 KB retained publish was refused under the 256 KB default")
	}
	c.Publish("big/huge", 1, true, bytes.Repeat([]byte("x"), 1<<20)).WaitTimeout(2 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for c.IsConnectionOpen() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if c.IsConnectionOpen() {
		t.Error("a client sending a 1 MB packet stays connected")
	}
	got := mqtttest.Retained(t, b.URL(), "big/#")
	if _, ok := got["big/huge"]; ok || len(got["big/small"]) != 100<<10 {
		t.Fatalf("retained: huge %v, small %d bytes; want no huge, a 100 KB small", ok, len(got["big/small"]))
	}
	if n := b.Retained(); n != 1 {
		t.Errorf("Retained() = %d, want 1", n)
	}
}

// Past MaxRetained, a retained publish on a new topic is delivered but not
// retained; nothing held is dropped, updates and deletions still work, and
// edgemo's own topics are always retained.
func TestMaxRetained(t *testing.T) {
	const limit = 16
	b, logs := start(t, broker.Options{MaxRetained: limit, Owned: mqtt.OwnedTopics("", "", "")})
	live := mqtttest.Subscribe(t, b.URL(), mqtttest.SubOptions{}, "flood/#")
	c, err := dial(t, b.URL(), "flooder", "", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range limit + 4 {
		if !publishOK(c, fmt.Sprintf("flood/%d", i), "v", true) {
			t.Fatalf("publish %d not acknowledged", i)
		}
	}
	live.WaitTopic(5*time.Second, fmt.Sprintf("flood/%d", limit+3), nil) // delivered live though not retained
	if n := b.Retained(); n != limit {
		t.Fatalf("Retained() = %d, want %d", n, limit)
	}
	got := mqtttest.Retained(t, b.URL(), "flood/#")
	if got["flood/0"] != "v" || got[fmt.Sprintf("flood/%d", limit-1)] != "v" {
		t.Errorf("the first %d retained messages must stay: %v", limit, got)
	}
	if _, ok := got[fmt.Sprintf("flood/%d", limit)]; ok {
		t.Errorf("flood/%d retained beyond the limit", limit)
	}
	if !strings.Contains(logs.String(), "max_retained") {
		t.Errorf("the refusal is not logged:\n%s", logs.String())
	}
	// An update of a held topic, and a deletion that makes room.
	publishOK(c, "flood/0", "v2", true)
	publishOK(c, "flood/1", "", true)
	publishOK(c, "flood/new", "n", true)
	got = mqtttest.Retained(t, b.URL(), "flood/#")
	if got["flood/0"] != "v2" || got["flood/new"] != "n" || got["flood/1"] != "" {
		t.Errorf("update/delete/new after the limit: %v", got)
	}
	// edgemo's own state is never refused for lack of room.
	user, pass := b.Owner()
	own, err := dial(t, b.URL(), "edgemo", user, pass)
	if err != nil {
		t.Fatal(err)
	}
	if !publishOK(own, "edgemo/door/status", "online", true) {
		t.Fatal("owner publish refused")
	}
	if got := mqtttest.Retained(t, b.URL(), "flood/#", "edgemo/#")["edgemo/door/status"]; got != "online" {
		t.Errorf("edgemo's status not retained with the store full: %q", got)
	}
}

// With a login configured, anonymous clients and wrong credentials are
// refused; the daemon's sink connects with them (Owner).
func TestLoginRequired(t *testing.T) {
	b, logs := start(t, broker.Options{Username: "ha", Password: "s3cret", Owned: mqtt.OwnedTopics("", "", "")})
	if _, err := dial(t, b.URL(), "anon", "", ""); err == nil {
		t.Error("anonymous client accepted")
	}
	if _, err := dial(t, b.URL(), "wrong", "ha", "nope"); err == nil {
		t.Error("wrong password accepted")
	}
	if _, err := dial(t, b.URL(), "owner-claim", broker.OwnerUsername, ""); err == nil {
		t.Error("the built-in owner name accepted without the configured login")
	}
	if u, p := b.Owner(); u != "ha" || p != "s3cret" {
		t.Errorf("Owner() = %q %q, want the configured login", u, p)
	}
	if !strings.Contains(logs.String(), "refused a login") {
		t.Errorf("refused logins are not logged:\n%s", logs.String())
	}
	u, p := b.Owner()
	s, err := mqtt.New(mqtt.Config{Broker: b.URL(), Username: u, Password: p}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	sub := mqtttest.Subscribe(t, b.URL(), mqtttest.SubOptions{Username: "ha", Password: "s3cret"}, "edgemo/available")
	sub.WaitTopic(5*time.Second, "edgemo/available", func(m mqtttest.Message) bool { return m.Payload == mqtt.AvailableOnline })
}

// Without a login, only edgemo's own client (Owner) may write edgemo's
// topics: a foreign client cannot overwrite the retained <prefix>/available
// or the discovery configs, nor claim edgemo's user name; it can still read
// them and write elsewhere.
func TestForeignClientCannotWriteEdgemoTopics(t *testing.T) {
	b, logs := start(t, broker.Options{Owned: mqtt.OwnedTopics("", "", "")})
	user, pass := b.Owner()
	if user != broker.OwnerUsername || len(pass) < 16 {
		t.Fatalf("Owner() = %q, %d-char password", user, len(pass))
	}
	s, err := mqtt.New(mqtt.Config{Broker: b.URL(), Username: user, Password: pass, Cameras: []string{"door"}, HADiscovery: true}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.CameraStatus("door", "online")
	if err := s.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	disco := "homeassistant/sensor/edgemo/door_status/config"
	before := mqtttest.Retained(t, b.URL(), "homeassistant/#", "edgemo/#")
	if before["edgemo/available"] != "online" || before[disco] == "" {
		t.Fatalf("retained before: %v", before)
	}

	if _, err := dial(t, b.URL(), "impostor", broker.OwnerUsername, "guess"); err == nil {
		t.Error("edgemo's user name accepted with a wrong password")
	}
	wo := paho.NewClientOptions().AddBroker(b.URL()).SetClientID("will").SetAutoReconnect(false).
		SetWill("edgemo/available", "offline", 1, true)
	if tok := paho.NewClient(wo).Connect(); tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
		t.Error("a foreign client with its last will on edgemo/available was let in")
	}
	for _, topic := range []string{"edgemo/available", "edgemo/door/status", disco} {
		c, err := dial(t, b.URL(), "foreign", "", "")
		if err != nil {
			t.Fatal(err)
		}
		c.Publish(topic, 0, true, "offline").WaitTimeout(time.Second) // QoS 0: dropped silently
		if publishOK(c, topic, "offline", true) {                     // QoS 1: refused, disconnected (MQTT 3)
			t.Errorf("foreign QoS 1 publish on %s acknowledged", topic)
		}
	}
	c, err := dial(t, b.URL(), "foreign2", "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !publishOK(c, "other/topic", "ok", true) {
		t.Error("a foreign client cannot write outside edgemo's topics")
	}
	after := mqtttest.Retained(t, b.URL(), "homeassistant/#", "edgemo/#")
	for topic, p := range before {
		if after[topic] != p {
			t.Errorf("%s = %q after foreign writes, want %q", topic, after[topic], p)
		}
	}
	if s.Reasserted() != 0 {
		t.Errorf("Reasserted() = %d: the broker let a foreign write through", s.Reasserted())
	}
	if !strings.Contains(logs.String(), "refused a publish on an edgemo topic") {
		t.Errorf("refused publish not logged:\n%s", logs.String())
	}
}

// The memory probe: four 60 MB retained publishes. The broker reads
// the packet's length and disconnects before it allocates the body, so the
// process allocates nowhere near 240 MB. (Raw bytes over TCP, so the test
// itself allocates nothing big either.)
func TestHugePublishesAllocateNothing(t *testing.T) {
	b, _ := start(t, broker.Options{})
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range 4 {
		c, err := net.DialTimeout("tcp", b.Addr(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		connect := []byte{0x10, 15, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 3, 'r', 'a', 'w'}
		if _, err := c.Write(connect); err != nil {
			t.Fatal(err)
		}
		ack := make([]byte, 4)
		if _, err := io.ReadFull(c, ack); err != nil || ack[0] != 0x20 || ack[3] != 0 {
			t.Fatalf("CONNACK %x: %v", ack, err)
		}
		pub := append([]byte{0x31}, varint(60<<20)...) // PUBLISH, retained, QoS 0
		pub = append(pub, 0, 5, 'b', 'i', 'g', '/', byte('0'+i))
		pub = append(pub, make([]byte, 64<<10)...)
		_, _ = c.Write(pub) // may fail half-way: the broker hangs up
		if _, err := io.Copy(io.Discard, c); err != nil && !isClosed(err) {
			t.Fatalf("connection %d not closed by the broker: %v", i, err)
		}
		c.Close()
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 32<<20 {
		t.Errorf("four 60 MB publishes made the process allocate %d MB", d>>20)
	}
	if n := b.Retained(); n != 0 {
		t.Errorf("Retained() = %d, want 0", n)
	}
}

func varint(n int) []byte {
	var out []byte
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		out = append(out, d)
		if n == 0 {
			return out
		}
	}
}

// isClosed: a reset is how the broker may hang up on unread data.
func isClosed(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF)
}
