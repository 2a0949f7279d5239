// Package broker is edgemo's embedded MQTT broker (mochi-mqtt v2), used when
// no external broker is configured, so `edgemo run` works out of the box and
// Home Assistant or mosquitto_sub can connect to it. It bounds packet sizes
// and the number of retained messages, can require a username/password, and
// lets only edgemo's own client write edgemo's topics. Put a real broker
// (mosquitto, with TLS) in front of anything exposed beyond the host: this
// one has no TLS and no persistence.
package broker

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
)

// DefaultAddr is where the embedded broker listens unless told otherwise.
const DefaultAddr = "127.0.0.1:1883"

// Defaults of Options' limits (the daemon's config has the same ones).
const (
	DefaultMaxPacketSize = 256 << 10 // a tree is a few KB, a face JPEG tens
	DefaultMaxRetained   = 1024      // edgemo retains a handful per camera
)

// OwnerUsername is the user name edgemo's own client logs in with when no
// credentials are configured (with a password made at Start, see Owner).
const OwnerUsername = "edgemo-daemon"

// Options configure the embedded broker. Zero values take the defaults.
type Options struct {
	// Listen is host:port (DefaultAddr when empty; port 0 picks a free one).
	Listen string
	// MaxPacketSize bounds one MQTT packet in bytes (default
	// DefaultMaxPacketSize). A client sending a bigger one is disconnected
	// before the broker reads (or allocates) its body.
	MaxPacketSize int
	// MaxRetained bounds the retained messages held (default
	// DefaultMaxRetained). A retained publish on a topic that holds none yet,
	// while MaxRetained are held, is delivered to the current subscribers but
	// not retained (refused, logged): nothing already retained is dropped, so
	// a flood cannot push edgemo's state out. Updates and deletions of topics
	// already retained, and every publish on Owned topics, always go through.
	MaxRetained int
	// Username and Password, both or neither: when set, every client must log
	// in with them (anonymous and wrong credentials are refused), and all of
	// them may write everywhere (the sink re-asserts its retained topics).
	Username, Password string
	// Owned are topic filters (edgemo's, e.g. "edgemo/#") that only edgemo's
	// own client may publish on while no Username is set: it logs in with
	// Owner(); anonymous clients may read them, not write them.
	Owned []string
}

// Broker is a running embedded broker.
type Broker struct {
	srv       *mochi.Server
	tcp       *listeners.TCP
	log       *slog.Logger
	once      sync.Once
	done      chan struct{}
	close     error
	ownerUser string
	ownerPass string
}

// Start listens on addr with the default limits, no login and no owned
// topics (see StartWith), and serves until ctx ends or Close is called.
func Start(ctx context.Context, addr string, log *slog.Logger) (*Broker, error) {
	return StartWith(ctx, Options{Listen: addr}, log)
}

// StartWith listens on o.Listen and serves until ctx ends or Close is
// called. A port already in use is an error that names the port and what to
// change.
func StartWith(ctx context.Context, o Options, log *slog.Logger) (*Broker, error) {
	addr := o.Listen
	if addr == "" {
		addr = DefaultAddr
	}
	if log == nil {
		log = slog.Default()
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: listen address %q is not host:port (set mqtt.embedded.listen, e.g. 127.0.0.1:1883): %w", addr, err)
	}
	if o.MaxPacketSize <= 0 {
		o.MaxPacketSize = DefaultMaxPacketSize
	}
	if o.MaxRetained <= 0 {
		o.MaxRetained = DefaultMaxRetained
	}
	if (o.Username == "") != (o.Password == "") {
		return nil, errors.New("embedded MQTT broker: set both mqtt.embedded.username and mqtt.embedded.password, or neither")
	}
	log = log.With("component", "mqtt-broker")
	caps := mochi.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = uint32(o.MaxPacketSize)
	srv := mochi.New(&mochi.Options{
		// mochi logs every client at info; only its warnings and errors reach ours.
		Logger:       slog.New(minLevel{h: log.Handler(), min: slog.LevelWarn}),
		InlineClient: false,
		Capabilities: caps,
	})
	g := &guard{o: o, srv: srv, log: log}
	if o.Username != "" {
		g.user, g.pass = o.Username, o.Password
	} else {
		var b [16]byte
		_, _ = rand.Read(b[:])
		g.ownerPass = hex.EncodeToString(b[:]) // in-process only: never written anywhere
	}
	if err := srv.AddHook(g, nil); err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "tcp", Address: addr})
	if err := srv.AddListener(tcp); err != nil {
		_ = srv.Close()
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, fmt.Errorf("embedded MQTT broker: %s is already in use: another broker (mosquitto?) is on %s: set mqtt.broker to use it (e.g. tcp://%s), or mqtt.embedded.listen to another port: %w", addr, addr, addr, err)
		}
		return nil, fmt.Errorf("embedded MQTT broker: listen on %s: %w (check mqtt.embedded.listen)", addr, err)
	}
	if err := srv.Serve(); err != nil {
		_ = srv.Close()
		return nil, fmt.Errorf("embedded MQTT broker on %s: serve: %w", addr, err)
	}
	b := &Broker{srv: srv, tcp: tcp, log: log, done: make(chan struct{})}
	if o.Username != "" {
		b.ownerUser, b.ownerPass = o.Username, o.Password
	} else {
		b.ownerUser, b.ownerPass = OwnerUsername, g.ownerPass
	}
	log.Info("embedded MQTT broker listening", "addr", b.Addr(), "url", b.URL(), "login", o.Username != "",
		"max_packet_size", o.MaxPacketSize, "max_retained", o.MaxRetained)
	go func() {
		select {
		case <-ctx.Done():
			_ = b.Close()
		case <-b.done:
		}
	}()
	return b, nil
}

// Addr is the address actually listened on (host:port), with the real port
// when Start was given port 0.
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL is the broker URL a client uses, tcp://Addr().
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Owner is the login edgemo's own client uses: the configured username and
// password, or else OwnerUsername with a password made at Start, which alone
// may write the Owned topics.
func (b *Broker) Owner() (username, password string) { return b.ownerUser, b.ownerPass }

// Retained is the number of retained messages held now, the broker's own
// $SYS topics not counted.
func (b *Broker) Retained() int {
	n := 0
	for t := range b.srv.Topics.Retained.GetAll() {
		if !strings.HasPrefix(t, "$") {
			n++
		}
	}
	return n
}

// Close disconnects every client (their last wills are published) and
// stops listening. It is safe to call more than once.
func (b *Broker) Close() error {
	b.once.Do(func() {
		close(b.done)
		if err := b.srv.Close(); err != nil {
			b.close = fmt.Errorf("embedded MQTT broker on %s: close: %w", b.Addr(), err)
		}
		b.log.Info("embedded MQTT broker stopped", "addr", b.Addr())
	})
	return b.close
}

// minLevel drops records below min before they reach h. mochi warns with an
// empty message for every client that goes away (EOF, reset, closed): those
// are normal and become debug records, "MQTT client disconnected".
type minLevel struct {
	h   slog.Handler
	min slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.min && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error {
	benign := false
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Key == "error" && isDisconnect(err) {
			benign = true
		}
		return !benign
	})
	if benign {
		if !m.h.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		d := slog.NewRecord(r.Time, slog.LevelDebug, "MQTT client disconnected", r.PC)
		r.Attrs(func(a slog.Attr) bool { d.AddAttrs(a); return true })
		return m.h.Handle(ctx, d)
	}
	if r.Message == "" {
		r.Message = "embedded MQTT broker"
	}
	return m.h.Handle(ctx, r)
}

func (m minLevel) WithAttrs(a []slog.Attr) slog.Handler {
	return minLevel{h: m.h.WithAttrs(a), min: m.min}
}
func (m minLevel) WithGroup(g string) slog.Handler { return minLevel{h: m.h.WithGroup(g), min: m.min} }

func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF)
}

// guard is the broker's auth, ACL and retained-message limit (one mochi hook).
type guard struct {
	mochi.HookBase
	o          Options
	srv        *mochi.Server
	log        *slog.Logger
	user, pass string // configured login; empty: anonymous allowed
	ownerPass  string // OwnerUsername's password when no login is configured

	mu      sync.Mutex
	lastLog map[string]time.Time // per message
}

func (g *guard) ID() string { return "edgemo-guard" }

func (g *guard) Provides(b byte) bool {
	return b == mochi.OnConnectAuthenticate || b == mochi.OnACLCheck || b == mochi.OnPublish || b == mochi.OnWill
}

func equal(a []byte, b string) bool { return subtle.ConstantTimeCompare(a, []byte(b)) == 1 }

// OnConnectAuthenticate: with a configured login, exactly that; without,
// anyone, except that OwnerUsername needs its password (else anyone could
// claim to be edgemo and write its topics).
func (g *guard) OnConnectAuthenticate(cl *mochi.Client, pk packets.Packet) bool {
	u, p := pk.Connect.Username, pk.Connect.Password
	var ok bool
	switch {
	case g.user != "":
		ok = equal(u, g.user) && equal(p, g.pass)
	case string(u) == OwnerUsername:
		ok = equal(p, g.ownerPass)
	default:
		ok = true
	}
	if !ok {
		g.warn("embedded MQTT broker refused a login (wrong or missing username/password: see mqtt.embedded.username)", "client", cl.ID, "remote", cl.Net.Remote, "username", string(u))
		return false
	}
	// A last will is a publish too (mochi sends it without an ACL check).
	if pk.Connect.WillFlag && !g.mayWrite(string(u), pk.Connect.WillTopic) {
		g.warn("embedded MQTT broker refused a client whose last will is on an edgemo topic (only edgemo's own client writes there)", "client", cl.ID, "remote", cl.Net.Remote, "topic", pk.Connect.WillTopic)
		return false
	}
	return true
}

// mayWrite is the write rule: Owned topics are edgemo's own client's while
// no login is configured.
func (g *guard) mayWrite(user, topic string) bool {
	return g.user != "" || user == OwnerUsername || !g.owned(topic)
}

// OnACLCheck: reads are free; writes on Owned topics only for edgemo's own
// client while no login is configured. A refused QoS 1/2 publish from an
// MQTT 3 client disconnects it (mochi; MQTT 3 has no negative PUBACK).
func (g *guard) OnACLCheck(cl *mochi.Client, topic string, write bool) bool {
	if !write {
		return true
	}
	if !g.mayWrite(string(cl.Properties.Username), topic) {
		g.warn("embedded MQTT broker refused a publish on an edgemo topic from another client (only edgemo's own client writes there)", "client", cl.ID, "remote", cl.Net.Remote, "topic", topic)
		return false
	}
	return true
}

// OnPublish applies MaxRetained (see Options): an excess retained publish
// loses its retain flag, so it reaches the current subscribers only.
func (g *guard) OnPublish(cl *mochi.Client, pk packets.Packet) (packets.Packet, error) {
	if !pk.FixedHeader.Retain || len(pk.Payload) == 0 || g.owned(pk.TopicName) {
		return pk, nil
	}
	if !g.full(pk.TopicName) {
		return pk, nil
	}
	g.warn("embedded MQTT broker holds mqtt.embedded.max_retained retained messages: a retained publish on a new topic was delivered but not retained (raise mqtt.embedded.max_retained, or clear stale retained topics)",
		"max_retained", g.o.MaxRetained, "client", cl.ID, "topic", pk.TopicName)
	pk.FixedHeader.Retain = false
	return pk, nil
}

// OnWill applies MaxRetained to a retained last will, as OnPublish does.
func (g *guard) OnWill(cl *mochi.Client, w mochi.Will) (mochi.Will, error) {
	if w.Retain && len(w.Payload) > 0 && !g.owned(w.TopicName) && g.full(w.TopicName) {
		g.warn("embedded MQTT broker holds mqtt.embedded.max_retained retained messages: a retained last will was delivered but not retained",
			"max_retained", g.o.MaxRetained, "client", cl.ID, "topic", w.TopicName)
		w.Retain = false
	}
	return w, nil
}

// full reports whether a new retained message on topic would exceed
// MaxRetained. The broker's own $SYS topics do not count; they are counted
// out only near the limit, where it matters.
func (g *guard) full(topic string) bool {
	rt := g.srv.Topics.Retained
	if _, held := rt.Get(topic); held || rt.Len() < g.o.MaxRetained {
		return false
	}
	n := 0
	for t := range rt.GetAll() {
		if !strings.HasPrefix(t, "$") {
			n++
		}
	}
	return n >= g.o.MaxRetained
}

func (g *guard) owned(topic string) bool {
	for _, f := range g.o.Owned {
		if match(f, topic) {
			return true
		}
	}
	return false
}

// warn logs each kind of refusal at most every 10 s: a misbehaving client
// must not flood the log.
func (g *guard) warn(msg string, args ...any) {
	g.mu.Lock()
	now := time.Now()
	if now.Sub(g.lastLog[msg]) < 10*time.Second {
		g.mu.Unlock()
		return
	}
	if g.lastLog == nil {
		g.lastLog = map[string]time.Time{}
	}
	g.lastLog[msg] = now
	g.mu.Unlock()
	g.log.Warn(msg, args...)
}

// match reports whether topic matches an MQTT filter with + and #.
func match(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		if f == "#" {
			return true
		}
		if i >= len(ts) || (f != "+" && f != ts[i]) {
			return false
		}
	}
	return len(fs) == len(ts)
}
