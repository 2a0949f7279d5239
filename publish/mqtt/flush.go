package mqtt

import (
	"context"
	"errors"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// errAckTimeout: the broker took the message but did not acknowledge it.
var errAckTimeout = errors.New("no acknowledgement from the broker in time")

// flight is one tree or track event sent and not yet acknowledged.
type flight struct {
	it  item
	tok paho.Token
	at  time.Time
}

// pendingRetained is one retained value sent and not yet acknowledged.
type pendingRetained struct {
	topic string
	ver   uint64
	tok   paho.Token
	at    time.Time
}

// pipe is the sending side of one connection: a sliding window of up to
// `window` messages in flight, removed from the queue's accounting only when
// acknowledged, in order. (A window rather than send-a-batch-and-wait keeps
// outgoing data flowing, so a broker without TCP_NODELAY — mosquitto's
// default — does not hold its PUBACKs back for a delayed ACK.)
type pipe struct {
	s   *Sink
	cl  paho.Client
	fl  []flight
	ret []pendingRetained
}

// fill sends queued items until the window is full.
func (p *pipe) fill() {
	s := p.s
	s.mu.Lock()
	n := min(window-len(p.fl), s.q.len())
	if n <= 0 {
		s.mu.Unlock()
		return
	}
	items := make([]item, n)
	for i := range items {
		items[i] = s.q.popFront()
	}
	s.inflight += n
	s.mu.Unlock()
	now := time.Now()
	for _, it := range items { // outside the lock: paho's Publish may wait for its outbound channel
		p.fl = append(p.fl, flight{it: it, tok: p.cl.Publish(it.topic, s.qos, false, it.payload), at: now})
	}
}

// sendFaces writes the waiting face images at QoS 0, not retained: nothing
// to acknowledge, nothing kept.
func (p *pipe) sendFaces() {
	s := p.s
	s.mu.Lock()
	faces := s.faces
	s.faces = nil
	s.mu.Unlock()
	for _, f := range faces {
		p.cl.Publish(f.topic, 0, false, f.payload)
	}
	s.facesSent.Add(uint64(len(faces)))
}

// reap removes acknowledged messages from the front of the window (and
// acknowledged retained values); an error or an overdue acknowledgement
// means the connection is no longer good.
func (p *pipe) reap() error {
	s := p.s
	acked := 0
	var err error
	for acked < len(p.fl) {
		f := p.fl[acked]
		if !isDone(f.tok) {
			if time.Since(f.at) > ackTimeout {
				err = errAckTimeout
			}
			break
		}
		if err = f.tok.Error(); err != nil {
			break
		}
		acked++
	}
	if acked > 0 {
		p.fl = p.fl[acked:]
		s.sent.Add(uint64(acked))
		s.mu.Lock()
		s.inflight -= acked
		s.mu.Unlock()
	}
	if err != nil {
		return err
	}
	keep := p.ret[:0]
	for _, r := range p.ret {
		switch {
		case isDone(r.tok):
			if err := r.tok.Error(); err != nil {
				return err
			}
			s.mu.Lock()
			if st := s.state[r.topic]; st != nil && st.sentVer < r.ver {
				st.sentVer = r.ver
				if st.sentVer == st.ver && len(st.payload) == 0 {
					s.forgetLocked(r.topic) // cleared on the broker: nothing left to publish again
				}
			}
			s.mu.Unlock()
		case time.Since(r.at) > ackTimeout:
			return errAckTimeout
		default:
			keep = append(keep, r)
		}
	}
	p.ret = keep
	return nil
}

func isDone(t paho.Token) bool {
	select {
	case <-t.Done():
		return true
	default:
		return false
	}
}

// sendRetained publishes retained values the broker has not acknowledged
// on this connection and that are not already in flight, in registration
// order (discovery before state).
func (p *pipe) sendRetained() {
	s := p.s
	type out struct {
		topic   string
		ver     uint64
		payload []byte
	}
	var outs []out
	s.mu.Lock()
	for _, topic := range s.order {
		r := s.state[topic]
		if r.ver != r.sentVer && r.ver != r.pendVer {
			r.pendVer = r.ver
			outs = append(outs, out{topic, r.ver, r.payload})
		}
	}
	s.mu.Unlock()
	now := time.Now()
	for _, o := range outs {
		p.ret = append(p.ret, pendingRetained{topic: o.topic, ver: o.ver, tok: p.cl.Publish(o.topic, 1, true, o.payload), at: now})
	}
}

// requeue puts what is still in flight back at the front of the queue, in
// order, to be sent again on the next connection (at least once).
func (p *pipe) requeue() {
	s := p.s
	s.mu.Lock()
	for i := len(p.fl) - 1; i >= 0; i-- {
		s.q.pushFront(p.fl[i].it)
	}
	s.inflight -= len(p.fl)
	p.fl = nil
	s.trimLocked()
	s.mu.Unlock()
}

// idle reports whether nothing is queued or in flight.
func (p *pipe) idle() bool {
	p.s.mu.Lock()
	defer p.s.mu.Unlock()
	return p.s.q.len() == 0 && len(p.fl) == 0 && len(p.ret) == 0
}

// step waits for the next event: the oldest message acknowledged, new work
// (wake), a stats tick, the connection lost, ctx done, or until.
// stop is true when the connection is lost (err) or ctx is done.
func (p *pipe) step(ctx context.Context, lost <-chan error, stats <-chan time.Time, timer *time.Timer, until time.Time) (stop bool, err error) {
	var head <-chan struct{}
	if len(p.fl) > 0 {
		head = p.fl[0].tok.Done()
		if hd := p.fl[0].at.Add(ackTimeout); hd.Before(until) {
			until = hd
		}
	} else if len(p.ret) > 0 {
		head = p.ret[0].tok.Done()
	}
	timer.Reset(max(time.Until(until), 0))
	defer timer.Stop()
	select {
	case <-head:
	case <-p.s.wake:
	case <-timer.C:
	case err := <-lost:
		return true, err
	case <-ctx.Done():
		return true, nil
	case <-stats:
		p.s.publishStats(p.cl)
	}
	return false, nil
}

// serve runs one connection: the retained state, then online, then the
// queue and retained changes until the connection is lost (error) or ctx
// ends; then it flushes for up to CloseTimeout and announces stopped (nil).
// Whatever is unacknowledged when it returns goes back to the queue.
func (s *Sink) serve(ctx context.Context, cl paho.Client, lost <-chan error) error {
	s.mu.Lock()
	for _, r := range s.state {
		r.sentVer, r.pendVer = 0, 0 // a new connection (maybe a restarted broker): everything again
	}
	s.mu.Unlock()
	p := &pipe{s: s, cl: cl}
	defer p.requeue()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()

	// Initial state first, so that "online" means the state is there.
	p.sendRetained()
	for len(p.ret) > 0 {
		if err := p.reap(); err != nil {
			return err
		}
		if len(p.ret) == 0 {
			break
		}
		if stop, err := p.step(ctx, lost, nil, timer, time.Now().Add(ackTimeout)); err != nil || stop {
			return err
		}
	}
	if err := wait(cl.Publish(s.AvailableTopic(), 1, true, AvailableOnline), time.Now().Add(ackTimeout)); err != nil {
		return err
	}
	s.watchAvail.Store(true)
	defer s.watchAvail.Store(false)
	if err := p.watchRetained(ctx, lost); err != nil {
		return err
	}
	s.connected.Store(true)
	var stats <-chan time.Time
	if s.cfg.StatsInterval > 0 {
		t := time.NewTicker(s.cfg.StatsInterval)
		defer t.Stop()
		stats = t.C
	}
	for {
		if err := p.reap(); err != nil {
			return err
		}
		p.reassertAvailable()
		p.sendRetained()
		p.fill()
		p.sendFaces()
		stop, err := p.step(ctx, lost, stats, timer, time.Now().Add(ackTimeout))
		if err != nil {
			return err
		}
		if stop {
			break
		}
	}

	// ctx ended: flush what is queued while the broker still answers.
	s.connected.Store(false)
	s.watchAvail.Store(false) // "stopped" follows: no more re-asserting "online"
	deadline := time.Now().Add(s.cfg.CloseTimeout)
	never := context.Background()
	for time.Now().Before(deadline) {
		if err := p.reap(); err != nil {
			return err
		}
		p.sendRetained()
		p.fill()
		if p.idle() {
			break
		}
		if _, err := p.step(never, lost, nil, timer, deadline); err != nil {
			return err
		}
	}
	if !p.idle() {
		return fmt.Errorf("mqtt: broker %s: %d trees/track events still unacknowledged after the close timeout (%v)", s.cfg.Broker, s.QueueLen(), s.cfg.CloseTimeout)
	}
	return wait(cl.Publish(s.AvailableTopic(), 1, true, AvailableStopped), time.Now().Add(time.Second))
}

// watchRetained subscribes to the retained topics the sink owns (available,
// camera status/emotion/faces, its discovery configs), so that a value
// another client writes over ours is noticed and ours published again
// (onRetained). It waits for the broker's SUBACK; a refused subscription
// (an ACL on an external broker) is logged, not fatal: only the
// re-assertion is lost.
func (p *pipe) watchRetained(ctx context.Context, lost <-chan error) error {
	s := p.s
	filters := map[string]byte{
		s.AvailableTopic():      1,
		s.topic("+", "status"):  1,
		s.topic("+", "emotion"): 1,
		s.topic("+", "faces"):   1,
		s.cfg.DiscoveryPrefix + "/+/" + s.cfg.NodeID + "/+/config": 1,
	}
	tok := p.cl.SubscribeMultiple(filters, s.onRetained)
	select {
	case <-tok.Done():
	case err := <-lost:
		return err
	case <-ctx.Done():
		return nil
	case <-time.After(ackTimeout):
		return fmt.Errorf("subscribe to edgemo's retained topics: %w", errAckTimeout)
	}
	if err := tok.Error(); err != nil {
		return fmt.Errorf("subscribe to edgemo's retained topics: %w", err)
	}
	if st, ok := tok.(*paho.SubscribeToken); ok {
		for f, code := range st.Result() {
			if code == 0x80 {
				s.log.Warn("MQTT broker refused a subscription: edgemo cannot notice another client overwriting these retained topics (allow edgemo to read its own topics in the broker's ACL)", "filter", f)
			}
		}
	}
	return nil
}

// onRetained runs on paho's goroutines for every message on edgemo's
// retained topics, echoes of its own publishes included. A payload that is
// not the sink's current value makes the serve loop publish that value again.
// One of the sink's two previous values is taken for a late echo of its own
// (paho may hand echoes over out of order) and ignored, so fast changes cause
// no extra publishes; a foreign write of exactly such a value is corrected at
// the next change or reconnect. Two daemons sharing a topic prefix would keep
// overwriting each other; the warning names the likely cause.
func (s *Sink) onRetained(_ paho.Client, m paho.Message) {
	topic, payload := m.Topic(), m.Payload()
	s.mu.Lock()
	defer s.mu.Unlock()
	if topic == s.AvailableTopic() {
		if !s.watchAvail.Load() || string(payload) == AvailableOnline {
			return
		}
		s.reassertAvail = true
	} else {
		r := s.state[topic]
		if r == nil || string(r.payload) == string(payload) {
			return
		}
		if r.isRecent(payload) {
			return // a late echo of one of our previous values: ours went out after it
		}
		s.seq++
		r.ver = s.seq // not acknowledged on this connection any more: sendRetained publishes it again
	}
	s.reasserted.Add(1)
	if now := time.Now(); now.Sub(s.lastReassert) >= dropLogEvery {
		s.lastReassert = now
		s.log.Warn("MQTT: another client overwrote a retained edgemo topic; publishing edgemo's value again (a second edgemo with the same mqtt.topic_prefix? a client writing to edgemo's topics?)",
			"topic", topic, "payload", truncate(payload, 64))
	}
	s.notify()
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// reassertAvailable publishes "online" again after another client overwrote
// <prefix>/available (see onRetained). The acknowledgement is not awaited:
// a connection that fails shows up as lost.
func (p *pipe) reassertAvailable() {
	s := p.s
	s.mu.Lock()
	again := s.reassertAvail
	s.reassertAvail = false
	s.mu.Unlock()
	if again {
		p.cl.Publish(s.AvailableTopic(), 1, true, AvailableOnline)
	}
}
