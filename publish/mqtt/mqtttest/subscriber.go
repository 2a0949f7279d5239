package mqtttest

import (
	"crypto/tls"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

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
