// Package mqtt publishes emotion trees, camera state, track lifecycle and
// face counts to an MQTT broker, on the topics of docs/mqtt.md, with
// optional Home Assistant discovery.
//
// Publishing never blocks the engine: trees and track events go into a
// bounded in-order queue that one goroutine drains to the broker, removing a
// message only once the broker has acknowledged it (PUBACK/PUBCOMP at QoS 1/2).
// While the broker is away the queue holds them; track events have a bounded
// share and are pushed out (oldest updates first) before any tree is, and
// per-frame track updates are rate-limited per track. Every drop is counted. Retained state (camera status, face count, salient
// emotion, discovery) is kept as latest-value-per-topic and re-published on
// every (re)connect, before <prefix>/available goes online.
package mqtt

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
)

// Payloads of <prefix>/available.
const (
	AvailableOnline  = "online"
	AvailableOffline = "offline" // the last will: the broker publishes it when edgemo vanishes
	AvailableStopped = "stopped" // clean shutdown
)

const (
	window         = 64               // trees/track events in flight (sent, not yet acknowledged)
	ackTimeout     = 10 * time.Second // a broker that has not acknowledged by then is treated as gone
	initialBackoff = 250 * time.Millisecond
	dropLogEvery   = 10 * time.Second
)

var (
	_ publish.Sink        = (*Sink)(nil)
	_ publish.StatusSink  = (*Sink)(nil)
	_ publish.TrackSink   = (*Sink)(nil)
	_ publish.FacesSink   = (*Sink)(nil)
	_ publish.RemovalSink = (*Sink)(nil)

	_ publish.FaceImageSink = (*Sink)(nil)
)

// Sink is the MQTT sink. Create it with New, then Start it.
type Sink struct {
	cfg    Config
	tlsCfg *tls.Config
	log    *slog.Logger
	qos    byte

	mu          sync.Mutex
	q           deque // pending trees and track events, oldest first
	inflight    int   // taken from q by the flusher, not yet acknowledged
	state       map[string]*retained
	order       []string // retained topics in publish order (discovery first)
	seq         uint64   // last retained version handed out, sink-wide
	cams        map[string]*camState
	lastErr     error
	lastDropLog time.Time
	closed      bool
	cancel      context.CancelFunc
	done        chan struct{}

	faces []item // face images waiting for the connection, oldest first; at most maxFaces

	upd           map[trackKey]*updState // rate limit of "update" track events
	reassertAvail bool                   // another client overwrote <prefix>/available while connected
	watchAvail    atomic.Bool            // "online" is on the broker on this connection: keep it there
	lastReassert  time.Time              // last re-assertion log line

	wake          chan struct{}
	updKick       chan struct{} // a coalesced update is waiting: the pump picks its due time
	pumpDone      chan struct{}
	connected     atomic.Bool
	sent          atomic.Uint64
	dropped       atomic.Uint64
	treesDropped  atomic.Uint64
	tracksDropped atomic.Uint64
	suppressed    atomic.Uint64
	reasserted    atomic.Uint64
	facesSent     atomic.Uint64
	facesDropped  atomic.Uint64
}

// trackKey names one track of one camera.
type trackKey struct {
	cam string
	id  int
}

// updState is the rate limit of one track's "update" events: when the last
// track event went into the queue, and the latest update held back since.
type updState struct {
	last    time.Time
	pending *item
}

// retained is the latest value of one retained topic. An empty payload is
// a deletion (MQTT clears a retained topic with one): once the broker has
// acknowledged it, the topic is forgotten.
type retained struct {
	payload []byte
	prev    [2][]byte // the two values before payload: an echo of them is ours, late
	ver     uint64    // new on every change, from the sink-wide seq (so an ack for a forgotten topic's value never counts for a later one)
	sentVer uint64    // ver the broker acknowledged on this connection
	pendVer uint64    // ver in flight on this connection
}

// New validates cfg (TLS files are loaded here, so a bad path fails now) and
// returns a sink that queues until Start connects it.
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	tc, err := cfg.normalize()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Sink{
		cfg:    cfg,
		tlsCfg: tc,
		log:    log.With("component", "mqtt", "broker", cfg.Broker),
		qos:    byte(*cfg.QoS),
		state:  map[string]*retained{},
		cams:   map[string]*camState{},
		wake:   make(chan struct{}, 1),
		upd:    map[trackKey]*updState{},

		updKick:  make(chan struct{}, 1),
		pumpDone: make(chan struct{}),
	}
	s.mu.Lock()
	for _, c := range cfg.Cameras {
		s.camLocked(c)
	}
	s.mu.Unlock()
	return s, nil
}

// Start connects in the background and keeps reconnecting (with backoff)
// until ctx ends or Close is called. A broker that is unreachable now is not
// an error: trees are queued until it comes back.
func (s *Sink) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("mqtt: broker %s: sink already closed", s.cfg.Broker)
	}
	if s.done != nil {
		return fmt.Errorf("mqtt: broker %s: sink already started", s.cfg.Broker)
	}
	ctx, s.cancel = context.WithCancel(ctx)
	s.done = make(chan struct{})
	go s.run(ctx)
	go s.pumpUpdates(ctx)
	return nil
}

// Close flushes what is queued for up to CloseTimeout when connected,
// publishes <prefix>/available = stopped, and disconnects. What is still
// queued then is counted in Dropped and logged. Safe to call more than once.
func (s *Sink) Close() error {
	s.mu.Lock()
	s.closed = true
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if cancel == nil {
		if n := s.discardQueue(); n > 0 {
			s.log.Warn("MQTT sink closed before it was started: queued trees dropped", "dropped", n)
		}
		return nil
	}
	cancel()
	<-done
	<-s.pumpDone
	return nil
}

// Connected reports whether the broker connection is up now.
func (s *Sink) Connected() bool { return s.connected.Load() }

// QueueLen is the number of trees and track events not yet acknowledged by
// the broker (queued plus in flight).
func (s *Sink) QueueLen() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.q.len() + s.inflight
}

// Dropped counts trees and track events lost to queue overflow or left
// undelivered at Close: TreesDropped plus TrackEventsDropped.
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// TreesDropped counts the trees among Dropped: only a queue holding nothing
// but trees (QueueSize of them) drops one, or a Close that cannot deliver.
func (s *Sink) TreesDropped() uint64 { return s.treesDropped.Load() }

// TrackEventsDropped counts the track events among Dropped (pushed out by
// trees, over their share of the queue, or left at Close).
func (s *Sink) TrackEventsDropped() uint64 { return s.tracksDropped.Load() }

// TrackUpdatesSuppressed counts "update" track events never queued because
// of TrackUpdateInterval (a later update or a lifecycle event of the same
// track superseded them). They are not in Sent or Dropped.
func (s *Sink) TrackUpdatesSuppressed() uint64 { return s.suppressed.Load() }

// Reasserted counts retained values (available, camera state, discovery)
// published again because another client overwrote them.
func (s *Sink) Reasserted() uint64 { return s.reasserted.Load() }

// Sent counts trees and track events the broker acknowledged (at QoS 0:
// written to the connection).
func (s *Sink) Sent() uint64 { return s.sent.Load() }

// LastError is the most recent connection error (wrapped with the broker
// and what to check), or nil once connected.
func (s *Sink) LastError() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastErr
}

// WaitConnected blocks until the sink is connected, or ctx ends; then it
// returns the last connection error with ctx's.
func (s *Sink) WaitConnected(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for !s.Connected() {
		select {
		case <-ctx.Done():
			if err := s.LastError(); err != nil {
				return fmt.Errorf("%w (%w)", err, ctx.Err())
			}
			return fmt.Errorf("mqtt: broker %s: not connected: %w", s.cfg.Broker, ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// Topic helpers (docs/mqtt.md).
func (s *Sink) topic(parts ...string) string {
	return s.cfg.TopicPrefix + "/" + strings.Join(parts, "/")
}

// AvailableTopic is <prefix>/available.
func (s *Sink) AvailableTopic() string { return s.topic("available") }

// Publish queues t for <prefix>/<camera>/<track_id>/tree and updates the
// camera's salient emotion. It never blocks on the network.
func (s *Sink) Publish(_ context.Context, t *tree.Tree) error {
	if t == nil {
		return fmt.Errorf("mqtt: broker %s: nil tree", s.cfg.Broker)
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("mqtt: broker %s: marshal tree %s: %w", s.cfg.Broker, t.ID, err)
	}
	cam := safeName(t.Camera)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("mqtt: broker %s: sink closed, tree %s not sent", s.cfg.Broker, t.ID)
	}
	s.enqueueLocked(item{topic: s.topic(cam, strconv.Itoa(t.TrackID), "tree"), payload: b, kind: kindTree})
	s.treeLocked(cam, t)
	s.mu.Unlock()
	s.notify()
	return nil
}

// maxFaces bounds the face images waiting to be written: they are live
// pictures, so an old one is worth less than a new one.
const maxFaces = 8

// FaceImage publishes jpeg (a track's latest face crop) on
// <prefix>/<camera>/<track_id>/face and, when the track is the camera's most
// salient face (see Emotion), on <prefix>/<camera>/face, which the Home
// Assistant camera entity shows: QoS 0, never retained, so no image stays on
// the broker. It does nothing unless Config.FaceImages is set (privacy).
// Images are not queued for a broker that is away: they are dropped and
// counted (FacesDropped), as is the oldest of more than a few waiting.
// Call it after Publish of the tree it belongs to.
func (s *Sink) FaceImage(camera string, trackID int, _ string, jpeg []byte) {
	if !s.cfg.FaceImages || len(jpeg) == 0 {
		return
	}
	cam := safeName(camera)
	s.mu.Lock()
	if s.closed || !s.connected.Load() {
		s.mu.Unlock()
		s.facesDropped.Add(1)
		return
	}
	s.faces = append(s.faces, item{topic: s.topic(cam, strconv.Itoa(trackID), "face"), payload: jpeg})
	if c := s.cams[cam]; c != nil {
		if id, ok := salientLocked(c); ok && id == trackID {
			s.faces = append(s.faces, item{topic: s.topic(cam, "face"), payload: jpeg})
		}
	}
	if n := len(s.faces) - maxFaces; n > 0 {
		s.faces = slices.Delete(s.faces, 0, n)
		s.facesDropped.Add(uint64(n))
	}
	s.mu.Unlock()
	s.notify()
}

// FacesSent counts face images written to the broker (QoS 0); FacesDropped
// those dropped (broker away, too many waiting).
func (s *Sink) FacesSent() uint64    { return s.facesSent.Load() }
func (s *Sink) FacesDropped() uint64 { return s.facesDropped.Load() }

// CameraStatus sets the retained <prefix>/<camera>/status.
func (s *Sink) CameraStatus(camera, status string) {
	cam := safeName(camera)
	s.mu.Lock()
	s.camLocked(cam)
	changed := s.setLocked(s.topic(cam, "status"), []byte(status))
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// Faces sets the retained <prefix>/<camera>/faces when n changes.
func (s *Sink) Faces(camera string, n int) {
	cam := safeName(camera)
	s.mu.Lock()
	s.camLocked(cam)
	changed := s.setLocked(s.topic(cam, "faces"), []byte(strconv.Itoa(n)))
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// Audience sets the retained <prefix>/<camera>/audience (engine/audience;
// docs/mqtt.md), when it changes. A camera the sink does not know (not
// configured and not seen, or removed) is ignored: the figures come from a
// timer that may still hold a camera CameraRemoved has just cleared.
func (s *Sink) Audience(a audience.Audience) {
	cam := safeName(a.Camera)
	b, err := json.Marshal(a)
	if err != nil {
		return // a struct of numbers, strings and maps: cannot fail
	}
	s.mu.Lock()
	if s.cams[cam] == nil {
		s.mu.Unlock()
		return
	}
	changed := s.setLocked(s.topic(cam, "audience"), b)
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// CameraRemoved clears what the sink retained for camera on the broker: an
// empty retained payload on each of its Home Assistant discovery configs
// (Home Assistant deletes the entities) and on its status, emotion and faces
// topics, whether or not this sink has published them (an earlier run may
// have). Until the broker acknowledges them they are sent on every
// (re)connect like any retained value; then the sink forgets those topics,
// so a reconnect does not publish them again. Call it once the camera sends
// nothing more; an event for it afterwards announces it anew.
func (s *Sink) CameraRemoved(camera string) {
	cam := safeName(camera)
	s.mu.Lock()
	delete(s.cams, cam)
	var topics []string
	if s.cfg.HADiscovery {
		for _, d := range s.discovery(cam) {
			topics = append(topics, d.topic)
		}
	}
	topics = append(topics, s.topic(cam, "status"), s.topic(cam, "emotion"), s.topic(cam, "faces"), s.topic(cam, "audience"))
	for k := range s.upd {
		if k.cam == cam {
			delete(s.upd, k) // its tracks are gone; a held-back update is not worth sending
		}
	}
	changed := false
	for _, t := range topics {
		changed = s.setLocked(t, []byte{}) || changed
	}
	s.mu.Unlock()
	if changed {
		s.notify()
	}
}

// setLocked stores a retained value; it reports whether it changed.
func (s *Sink) setLocked(topic string, payload []byte) bool {
	r := s.state[topic]
	if r == nil {
		r = &retained{}
		s.state[topic] = r
		s.order = append(s.order, topic)
	} else if string(r.payload) == string(payload) {
		return false
	}
	r.prev[1], r.prev[0] = r.prev[0], r.payload
	r.payload = payload
	s.seq++
	r.ver = s.seq
	return true
}

// isRecent reports whether payload is one of the values before r's current.
func (r *retained) isRecent(payload []byte) bool {
	return (r.prev[0] != nil && string(r.prev[0]) == string(payload)) || (r.prev[1] != nil && string(r.prev[1]) == string(payload))
}

// forgetLocked drops a retained topic whose deletion the broker has
// acknowledged.
func (s *Sink) forgetLocked(topic string) {
	delete(s.state, topic)
	if i := slices.Index(s.order, topic); i >= 0 {
		s.order = slices.Delete(s.order, i, i+1)
	}
}
