// Package mqtttest runs real brokers and clients for edgemo's MQTT tests: a
// mosquitto process on a free loopback port (killable and restartable on the
// same port), a TCP proxy whose connections a test can cut abruptly, and a
// paho subscriber that records what arrives. Nothing here is a mock.
package mqtttest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MosquittoBin is the broker the tests run (Debian's mosquitto package).
const MosquittoBin = "/usr/sbin/mosquitto"

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Mosquitto is one mosquitto process with a temp config (no persistence).
type Mosquitto struct {
	t     testing.TB
	Port  int
	Dir   string
	conf  string
	mu    sync.Mutex
	cmd   *exec.Cmd
	exit  chan struct{}
	logs  lockedBuffer
	extra []string
}

// StartMosquitto starts mosquitto on a free loopback port, with anonymous
// access unless extra sets allow_anonymous; extra lines follow the listener
// line (so listener options such as certfile apply to it). The process is
// killed when the test ends.
func StartMosquitto(t testing.TB, extra ...string) *Mosquitto {
	t.Helper()
	if _, err := os.Stat(MosquittoBin); err != nil {
		t.Fatalf("mosquitto is needed for the MQTT tests: %v (install it: apt-get install mosquitto, or run scripts/setup.sh --test)", err)
	}
	m := &Mosquitto{t: t, Port: FreePort(t), Dir: t.TempDir(), extra: extra}
	m.conf = filepath.Join(m.Dir, "mosquitto.conf")
	lines := []string{
		"persistence false",
		"log_dest stderr",
		"log_type error",
		"log_type warning",
		"log_type notice",
		"max_queued_messages 1000000", // a slow test subscriber must not lose messages in the broker (0, "unlimited", stalls delivery in 2.0.11)
	}
	if !strings.Contains(strings.Join(extra, "\n"), "allow_anonymous") {
		lines = append(lines, "allow_anonymous true")
	}
	if os.Geteuid() == 0 {
		lines = append(lines, "user root") // else it drops to user mosquitto and cannot read the temp dir
	}
	lines = append(lines, fmt.Sprintf("listener %d 127.0.0.1", m.Port))
	lines = append(lines, extra...)
	if err := os.WriteFile(m.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Kill()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", m.logs.String())
		}
	})
	m.Start()
	return m
}

// Addr is 127.0.0.1:<port>.
func (m *Mosquitto) Addr() string { return "127.0.0.1:" + strconv.Itoa(m.Port) }

// URL is tcp://127.0.0.1:<port>.
func (m *Mosquitto) URL() string { return "tcp://" + m.Addr() }

// Start (re)starts mosquitto on its port and waits until it accepts
// connections.
func (m *Mosquitto) Start() {
	m.t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd != nil {
		m.t.Fatal("mosquitto already running")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cmd := exec.Command(MosquittoBin, "-c", m.conf)
		cmd.Stdout, cmd.Stderr = &m.logs, &m.logs
		if err := cmd.Start(); err != nil {
			m.t.Fatalf("start mosquitto: %v", err)
		}
		exit := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exit) }()
		for time.Now().Before(deadline) {
			select {
			case <-exit: // e.g. the port is still held by the previous process: try again
			default:
				if c, err := net.DialTimeout("tcp", m.Addr(), 200*time.Millisecond); err == nil {
					c.Close()
					m.cmd, m.exit = cmd, exit
					return
				}
				time.Sleep(20 * time.Millisecond)
				continue
			}
			break
		}
		select {
		case <-exit:
		default:
			_ = cmd.Process.Kill()
			<-exit
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("mosquitto did not start on %s:\n%s", m.Addr(), m.logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Kill sends SIGKILL (no clean shutdown: clients see their connection die)
// and waits for the process to go.
func (m *Mosquitto) Kill() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cmd == nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.exit
	m.cmd = nil
}

// Logs is what mosquitto printed so far.
func (m *Mosquitto) Logs() string { return m.logs.String() }

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Proxy relays TCP connections to an upstream address. Cut resets every
// open connection at once (as if the network died or a proxy process was
// killed); while down, new connections are reset on accept.
type Proxy struct {
	t        testing.TB
	l        net.Listener
	upstream string
	mu       sync.Mutex
	down     bool
	conns    map[net.Conn]struct{}
	accepted int
}

// StartProxy listens on a free loopback port and relays to upstream.
func StartProxy(t testing.TB, upstream string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, l: l, upstream: upstream, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { l.Close(); p.Cut() })
	return p
}

// Addr is the proxy's listen address.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// URL is tcp://Addr().
func (p *Proxy) URL() string { return "tcp://" + p.Addr() }

// Accepted counts the connections relayed so far.
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

func (p *Proxy) serve() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			reset(c)
			continue
		}
		u, err := net.DialTimeout("tcp", p.upstream, 2*time.Second)
		if err != nil {
			reset(c)
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.accepted++
		p.mu.Unlock()
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	reset(dst)
	reset(src)
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut resets every relayed connection on both sides.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		reset(c)
	}
}

// SetDown makes new connections fail (true) or relay again (false).
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	p.down = down
	p.mu.Unlock()
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // RST, not FIN: the peer sees the connection die
	}
	_ = c.Close()
}

// Message is one message a Subscriber received.
type Message struct {
	Topic    string
	Payload  string
	Retained bool
	At       time.Time
}

// SubOptions tune a Subscriber.
type SubOptions struct {
	ClientID     string
	CleanSession *bool // default true
	Username     string
	Password     string
	TLS          *tls.Config
	QoS          byte // default 1
}

// Subscriber is a paho client that records every message on its topics. It
// reconnects by itself and subscribes again on every connect (a restarted
// broker without persistence forgets subscriptions).
type Subscriber struct {
	t      testing.TB
	client paho.Client
	mu     sync.Mutex
	msgs   []Message
	subs   int // successful (re)subscriptions
	cond   chan struct{}
}

// Subscribe connects to url and subscribes to topics (QoS 1 unless set); it
// returns once the first subscription is acknowledged.
func Subscribe(t testing.TB, url string, o SubOptions, topics ...string) *Subscriber {
	t.Helper()
	s := &Subscriber{t: t, cond: make(chan struct{})}
	if o.ClientID == "" {
		o.ClientID = fmt.Sprintf("sub-%d", time.Now().UnixNano())
	}
	qos := o.QoS
	if qos == 0 {
		qos = 1
	}
	clean := true
	if o.CleanSession != nil {
		clean = *o.CleanSession
	}
	filters := map[string]byte{}
	for _, tp := range topics {
		filters[tp] = qos
	}
	opts := paho.NewClientOptions().AddBroker(url).SetClientID(o.ClientID).
		SetCleanSession(clean).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(50 * time.Millisecond).SetMaxReconnectInterval(100 * time.Millisecond).
		SetConnectTimeout(2 * time.Second).SetOrderMatters(true).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { s.add(m) }).
		SetOnConnectHandler(func(c paho.Client) {
			go func() {
				tok := c.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) { s.add(m) })
				if tok.WaitTimeout(5*time.Second) && tok.Error() == nil {
					s.mu.Lock()
					s.subs++
					s.signalLocked()
					s.mu.Unlock()
				}
			}()
		})
	if o.Username != "" {
		opts.SetUsername(o.Username).SetPassword(o.Password)
	}
	if o.TLS != nil {
		opts.SetTLSConfig(o.TLS)
	}
	s.client = paho.NewClient(opts)
	s.client.Connect()
	t.Cleanup(func() { s.client.Disconnect(50) })
	s.WaitSubscribed(1, 10*time.Second)
	return s
}

func (s *Subscriber) add(m paho.Message) {
	s.mu.Lock()
	s.msgs = append(s.msgs, Message{Topic: m.Topic(), Payload: string(m.Payload()), Retained: m.Retained(), At: time.Now()})
	s.signalLocked()
	s.mu.Unlock()
}

func (s *Subscriber) signalLocked() {
	close(s.cond)
	s.cond = make(chan struct{})
}

// Client is the underlying paho client.
func (s *Subscriber) Client() paho.Client { return s.client }

// WaitSubscribed waits until the subscriber has subscribed n times (once
// per connection).
func (s *Subscriber) WaitSubscribed(n int, timeout time.Duration) {
	s.t.Helper()
	if !s.waitFor(timeout, func() bool { return s.subs >= n }) {
		s.t.Fatalf("subscriber did not subscribe %d times within %v", n, timeout)
	}
}

// Messages returns the messages received on topic so far ("" for all).
func (s *Subscriber) Messages(topic string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.msgs {
		if topic == "" || m.Topic == topic {
			out = append(out, m)
		}
	}
	return out
}

// Wait waits until ok holds for the messages so far (all topics) and
// returns them; it fails the test after timeout. ok runs without the
// subscriber's lock, at most every few milliseconds.
func (s *Subscriber) Wait(timeout time.Duration, what string, ok func([]Message) bool) []Message {
	s.t.Helper()
	var got []Message
	if !s.poll(timeout, func() bool { got = s.snapshot(); return ok(got) }) {
		s.t.Fatalf("timed out after %v waiting for %s; got %d messages:\n%s", timeout, what, len(got), summary(got))
	}
	return got
}

func (s *Subscriber) snapshot() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msgs[:len(s.msgs):len(s.msgs)] // append-only: the prefix never changes
}

func (s *Subscriber) poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		s.mu.Lock()
		ch := s.cond
		s.mu.Unlock()
		select {
		case <-ch: // a message came
		case <-time.After(20 * time.Millisecond): // ok may also depend on other state
		}
		time.Sleep(3 * time.Millisecond) // let a burst land before looking again
	}
	return true
}

// WaitTopic waits until topic has a message satisfying ok (nil: any) and
// returns it.
func (s *Subscriber) WaitTopic(timeout time.Duration, topic string, ok func(Message) bool) Message {
	s.t.Helper()
	var found Message
	s.Wait(timeout, "a message on "+topic, func(ms []Message) bool {
		for _, m := range ms {
			if m.Topic == topic && (ok == nil || ok(m)) {
				found = m
				return true
			}
		}
		return false
	})
	return found
}

func (s *Subscriber) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		done := cond()
		ch := s.cond
		s.mu.Unlock()
		if done {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

func summary(ms []Message) string {
	var b strings.Builder
	for i, m := range ms {
		if i == 40 {
			fmt.Fprintf(&b, "  … %d more\n", len(ms)-i)
			break
		}
		p := m.Payload
		if len(p) > 80 {
			p = p[:80] + "…"
		}
		fmt.Fprintf(&b, "  %s retained=%v %s\n", m.Topic, m.Retained, p)
	}
	return b.String()
}

// Retained returns what a subscriber arriving now gets retained on filters:
// topic -> payload. It subscribes afresh, then publishes a marker on a
// topic under the first filter from the same connection; the broker queues
// a new subscription's retained messages before it handles the next packet,
// so everything retained has arrived once the marker has, and the absence
// of a topic means the broker holds nothing retained for it. The first
// filter must end in "#".
func Retained(t testing.TB, url string, filters ...string) map[string]string {
	t.Helper()
	if len(filters) == 0 || !strings.HasSuffix(filters[0], "#") {
		t.Fatalf("mqtttest.Retained: the first filter must end in #: %q", filters)
	}
	sub := Subscribe(t, url, SubOptions{}, filters...)
	defer sub.client.Disconnect(50)
	marker := strings.TrimSuffix(filters[0], "#") + fmt.Sprintf("mqtttest-marker-%d", time.Now().UnixNano())
	if tok := sub.client.Publish(marker, 1, false, "marker"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("mqtttest.Retained: publish marker on %s: %v", marker, tok.Error())
	}
	ms := sub.Wait(10*time.Second, "the marker after the retained messages", func(ms []Message) bool {
		return slices.ContainsFunc(ms, func(m Message) bool { return m.Topic == marker })
	})
	out := map[string]string{}
	for _, m := range ms {
		if m.Topic == marker {
			break
		}
		if m.Retained {
			out[m.Topic] = m.Payload
		}
	}
	return out
}
