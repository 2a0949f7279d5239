package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
)

// The connection loop: connect, flush the queue, reconnect with backoff,
// and the periodic stats.

// run owns the broker connection: connect, serve, reconnect with backoff.
func (s *Sink) run(ctx context.Context) {
	defer close(s.done)
	backoff := initialBackoff
	var downSince time.Time // start of the current outage; zero when none is being reported
	attempts := 0
	for {
		if ctx.Err() != nil {
			if n := s.discardQueue(); n > 0 {
				s.log.Warn("MQTT sink stopped while the broker was unreachable: queued trees/track events dropped", "dropped", n)
			}
			return
		}
		cl, lost, err := s.connect(ctx)
		if err != nil && ctx.Err() != nil {
			continue // stopping, not a broker problem
		}
		if err != nil {
			attempts++
			s.mu.Lock()
			s.lastErr = err
			s.mu.Unlock()
			if downSince.IsZero() {
				downSince = time.Now()
				s.log.Warn(fmt.Sprintf("%v; trees are queued (max %d) until it comes back", err, s.cfg.QueueSize), "queued", s.QueueLen())
			} else {
				s.log.Debug("MQTT reconnect failed", "attempt", attempts, "err", err)
			}
			sleep := backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, s.cfg.MaxReconnectInterval)
			select {
			case <-ctx.Done():
			case <-time.After(sleep):
			}
			continue
		}
		s.mu.Lock()
		s.lastErr = nil
		s.mu.Unlock()
		if downSince.IsZero() {
			s.log.Info("MQTT connected", "client_id", s.cfg.ClientID, "prefix", s.cfg.TopicPrefix)
		} else {
			s.log.Info("MQTT broker is back: flushing queued trees", "after", time.Since(downSince).Round(time.Millisecond), "attempts", attempts, "queued", s.QueueLen())
		}
		backoff, attempts, downSince = initialBackoff, 0, time.Time{}

		err = s.serve(ctx, cl, lost)
		s.connected.Store(false)
		if ctx.Err() != nil {
			cl.Disconnect(250)
			if err != nil {
				s.log.Warn("MQTT clean shutdown incomplete", "err", err)
			}
			if n := s.discardQueue(); n > 0 {
				s.log.Warn("MQTT sink closed with trees/track events undelivered", "dropped", n, "close_timeout", s.cfg.CloseTimeout)
			}
			s.log.Info("MQTT disconnected", "sent", s.Sent(), "dropped", s.Dropped())
			return
		}
		cl.Disconnect(0) // make sure paho's goroutines are gone before the next client
		downSince = time.Now()
		err = fmt.Errorf("mqtt: connection to broker %s lost: %w", s.cfg.Broker, err)
		s.mu.Lock()
		s.lastErr = err
		s.mu.Unlock()
		s.log.Warn(fmt.Sprintf("%v; trees are queued (max %d) until it comes back", err, s.cfg.QueueSize), "queued", s.QueueLen())
	}
}

// connect makes one connection attempt with a fresh client (paho's own
// reconnect and store are off: the queue here is the only copy).
func (s *Sink) connect(ctx context.Context) (paho.Client, <-chan error, error) {
	lost := make(chan error, 1)
	o := paho.NewClientOptions().
		AddBroker(s.cfg.Broker).
		SetClientID(s.cfg.ClientID).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(s.cfg.ConnectTimeout).
		SetKeepAlive(15*time.Second).
		SetPingTimeout(5*time.Second).
		SetWriteTimeout(5*time.Second).
		SetOrderMatters(false).
		SetWill(s.AvailableTopic(), AvailableOffline, 1, true).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if s.cfg.Username != "" {
		o.SetUsername(s.cfg.Username)
		o.SetPassword(s.cfg.Password)
	}
	if s.tlsCfg != nil {
		o.SetTLSConfig(s.tlsCfg)
	}
	cl := paho.NewClient(o)
	tok := cl.Connect()
	select {
	case <-tok.Done():
	case <-ctx.Done():
		cl.Disconnect(0)
		return nil, nil, ctx.Err()
	}
	if err := tok.Error(); err != nil {
		rc := byte(0)
		if ct, ok := tok.(*paho.ConnectToken); ok {
			rc = ct.ReturnCode()
		}
		return nil, nil, s.explain(err, rc)
	}
	return cl, lost, nil
}

// explain wraps a connection error with the broker and the likely fix.
func (s *Sink) explain(err error, rc byte) error {
	b := s.cfg.Broker
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var recErr tls.RecordHeaderError
	switch {
	case rc == packets.ErrRefusedBadUsernameOrPassword || rc == packets.ErrRefusedNotAuthorised:
		return fmt.Errorf("mqtt: broker %s refused the login for user %q: %w (check mqtt.username / mqtt.password or %s / %s)", b, s.cfg.Username, err, EnvUsername, EnvPassword)
	case rc == packets.ErrRefusedIDRejected:
		return fmt.Errorf("mqtt: broker %s rejected client id %q: %w (set mqtt.client_id to another value, or leave it empty for a unique one)", b, s.cfg.ClientID, err)
	case errors.As(err, &unknownCA) || strings.Contains(err.Error(), "certificate signed by unknown authority"):
		return fmt.Errorf("mqtt: broker %s: TLS certificate not trusted: %w (set mqtt.tls.ca to the CA certificate that signed the broker's)", b, err)
	case errors.As(err, &hostErr):
		return fmt.Errorf("mqtt: broker %s: TLS certificate is not valid for this host name: %w (connect with the name the certificate was issued for)", b, err)
	case errors.As(err, &invalid):
		return fmt.Errorf("mqtt: broker %s: TLS certificate invalid: %w (renew the broker's certificate or fix the clock)", b, err)
	case errors.As(err, &recErr) || strings.Contains(err.Error(), "first record does not look like a TLS handshake"):
		return fmt.Errorf("mqtt: broker %s does not speak TLS on that port: %w (if that port is a plain listener, use tcp://; else use the broker's TLS port)", b, err)
	case strings.Contains(err.Error(), "tls:"):
		return fmt.Errorf("mqtt: broker %s: TLS handshake failed: %w (check mqtt.tls and the broker's TLS listener)", b, err)
	case rc != 0 && rc != packets.ErrNetworkError:
		return fmt.Errorf("mqtt: broker %s refused the connection: %w", b, err)
	case s.tlsCfg != nil && (errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset by peer")):
		return fmt.Errorf("MQTT broker %s unreachable: %w (it closed the connection during the TLS handshake: if that port is a plain listener, use tcp://)", b, err)
	}
	return fmt.Errorf("MQTT broker %s unreachable: %w", b, err)
}

// wait waits for tok until deadline.
func wait(tok paho.Token, deadline time.Time) error {
	d := time.Until(deadline)
	if d <= 0 || !tok.WaitTimeout(d) {
		return errAckTimeout
	}
	return tok.Error()
}

func (s *Sink) publishStats(cl paho.Client) {
	var v any
	if s.cfg.Stats != nil {
		v = s.cfg.Stats()
	} else {
		v = map[string]any{"mqtt": map[string]any{
			"connected": s.Connected(), "queued": s.QueueLen(), "sent": s.Sent(), "dropped": s.Dropped(),
			"trees_dropped": s.TreesDropped(), "track_events_dropped": s.TrackEventsDropped(),
			"track_updates_suppressed": s.TrackUpdatesSuppressed(), "retained_reasserted": s.Reasserted(),
		}}
	}
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Warn("MQTT stats not marshalled", "err", err)
		return
	}
	cl.Publish(s.topic("stats"), 0, false, b) // QoS 0: a missed sample is replaced by the next
}
