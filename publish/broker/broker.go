// Package broker is edgemo's embedded MQTT broker (mochi-mqtt v2), used when
// no external broker is configured: a TCP listener that lets every client in,
// so `edgemo run` works out of the box and Home Assistant or mosquitto_sub can
// connect to it. Put a real broker (mosquitto) in front of anything exposed
// beyond the host: this one has no authentication and no persistence.
package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"syscall"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// DefaultAddr is where the embedded broker listens unless told otherwise.
const DefaultAddr = "127.0.0.1:1883"

// Broker is a running embedded broker.
type Broker struct {
	srv   *mochi.Server
	tcp   *listeners.TCP
	log   *slog.Logger
	once  sync.Once
	done  chan struct{}
	close error
}

// Start listens on addr (DefaultAddr when empty; port 0 picks a free one)
// and serves until ctx ends or Close is called. A port already in use is an
// error that names the port and what to change.
func Start(ctx context.Context, addr string, log *slog.Logger) (*Broker, error) {
	if addr == "" {
		addr = DefaultAddr
	}
	if log == nil {
		log = slog.Default()
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: listen address %q is not host:port (set mqtt.embedded.listen, e.g. 127.0.0.1:1883): %w", addr, err)
	}
	log = log.With("component", "mqtt-broker")
	srv := mochi.New(&mochi.Options{
		// mochi logs every client at info; only its warnings and errors reach ours.
		Logger:       slog.New(minLevel{h: log.Handler(), min: slog.LevelWarn}),
		InlineClient: false,
	})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("embedded MQTT broker: allow-all auth hook: %w", err)
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
	log.Info("embedded MQTT broker listening", "addr", b.Addr(), "url", b.URL())
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
