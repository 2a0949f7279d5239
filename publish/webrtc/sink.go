// Package webrtc publishes trees to browsers (and any WebRTC peer) over data
// channels, with WHEP-style HTTP signalling: the viewer creates an ordered
// data channel "trees" (and optionally "events"), POSTs its SDP offer, and
// gets the answer back once ICE gathering is complete. Each viewer has its own
// bounded queue and sender goroutine, so a slow viewer drops its own oldest
// messages and never slows the engine or the other viewers.
package webrtc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	pion "github.com/pion/webrtc/v4"

	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
)

var (
	errTreesClosed    = errors.New("trees data channel closed")
	errConnectTimeout = errors.New("trees data channel did not open in time")
	errHangUp         = errors.New("viewer hung up (DELETE)")
	errSinkClosed     = errors.New("sink closed")
	errPeerGone       = errors.New("peer connection failed or closed")
)

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("webrtc sink: closed")

// Sink is a publish.Sink, publish.TrackSink and publish.StatusSink.
type Sink struct {
	cfg     Config
	log     *slog.Logger
	api     *pion.API
	servers []pion.ICEServer

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	viewers map[string]*viewer
	status  map[string]string // camera -> last status, replayed to new viewers
	faces   map[string]int    // camera -> faces now, likewise (audience.go)
	aud     map[string]audience.Audience

	sent, dropped atomic.Uint64
}

var (
	_ publish.Sink       = (*Sink)(nil)
	_ publish.TrackSink  = (*Sink)(nil)
	_ publish.StatusSink = (*Sink)(nil)
)

// New checks cfg and returns a sink with no viewers. Serve Handler() to let
// viewers in. log may be nil (slog.Default()).
func New(cfg Config, log *slog.Logger) (*Sink, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg = cfg.withDefaults()
	api, servers, err := cfg.api()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	return &Sink{
		cfg: cfg, log: log, api: api, servers: servers,
		ctx: ctx, cancel: cancel,
		viewers: map[string]*viewer{}, status: map[string]string{}, faces: map[string]int{}, aud: map[string]audience.Audience{},
	}, nil
}

// Publish queues t, as one JSON text message, for every viewer whose camera
// filter matches. It never blocks on a viewer.
func (s *Sink) Publish(_ context.Context, t *tree.Tree) error {
	vs, err := s.matching(t.Camera)
	if err != nil || len(vs) == 0 {
		return err
	}
	b, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("webrtc: marshal tree %s: %w", t.ID, err)
	}
	s.fanout(vs, message{kind: kindTree, text: string(b)})
	return nil
}

// Envelope is one message on the "events" channel.
type Envelope struct {
	Type     string              `json:"type"` // track | status | faces | audience
	Event    *publish.TrackEvent `json:"event,omitempty"`
	Camera   string              `json:"camera,omitempty"`
	Status   string              `json:"status,omitempty"`
	Faces    *int                `json:"faces,omitempty"`    // faces now (type faces)
	Audience *audience.Audience  `json:"audience,omitempty"` // type audience
	Time     tree.Time           `json:"time"`
}

// Track forwards new, lost and end events (not per-frame updates: the trees
// carry the face's state) to viewers that opened "events".
func (s *Sink) Track(ev publish.TrackEvent) {
	if ev.Type == "update" {
		return
	}
	t := ev.Time
	if t.IsZero() {
		t = time.Now()
	}
	s.event(ev.Camera, Envelope{Type: "track", Event: &ev, Time: tree.Time(t)})
}

// CameraStatus forwards a camera's online/offline/reconnecting state. The
// last state of each camera is also sent to every viewer when its "events"
// channel opens.
func (s *Sink) CameraStatus(camera, status string) {
	s.mu.Lock()
	s.status[camera] = status
	s.mu.Unlock()
	s.event(camera, Envelope{Type: "status", Camera: camera, Status: status, Time: tree.Time(time.Now())})
}

// replayStatus queues every camera's last status for v (its events opened).
func (s *Sink) replayStatus(v *viewer) {
	s.mu.Lock()
	var ms []message
	for cam, st := range s.status {
		if !v.wants(cam) {
			continue
		}
		b, err := json.Marshal(Envelope{Type: "status", Camera: cam, Status: st, Time: tree.Time(time.Now())})
		if err == nil {
			ms = append(ms, message{kind: kindEvent, text: string(b)})
		}
	}
	ms = append(ms, s.replayAudienceLocked(v)...)
	s.mu.Unlock()
	s.fanout([]*viewer{v}, ms...)
}

func (s *Sink) event(camera string, e Envelope) {
	vs, _ := s.matching(camera)
	if len(vs) == 0 {
		return
	}
	b, err := json.Marshal(e)
	if err != nil {
		s.log.Error("webrtc: marshal event", "err", err)
		return
	}
	s.fanout(vs, message{kind: kindEvent, text: string(b)})
}

func (s *Sink) matching(camera string) ([]*viewer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	var vs []*viewer
	for _, v := range s.viewers {
		if v.wants(camera) {
			vs = append(vs, v)
		}
	}
	return vs, nil
}

func (s *Sink) fanout(vs []*viewer, ms ...message) {
	for _, v := range vs {
		for _, m := range ms {
			if v.q.push(m) {
				v.dropped.Add(1)
				s.dropped.Add(1)
			}
		}
	}
}

// Viewers is the number of viewers (connecting or connected).
func (s *Sink) Viewers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.viewers)
}

// Sent is the number of messages handed to data channels, all viewers.
func (s *Sink) Sent() uint64 { return s.sent.Load() }

// Dropped is the number of messages dropped from full viewer queues, all
// viewers (a viewer's oldest message goes first).
func (s *Sink) Dropped() uint64 { return s.dropped.Load() }

// ViewerStats describes one viewer.
type ViewerStats struct {
	ID       string    `json:"id"`
	Cameras  []string  `json:"cameras,omitempty"`
	Since    time.Time `json:"since"`
	Open     bool      `json:"open"`
	Queued   int       `json:"queued"`
	Buffered uint64    `json:"buffered_bytes"`
	Sent     uint64    `json:"sent"`
	Dropped  uint64    `json:"dropped"`
}

// Stats reports every current viewer.
func (s *Sink) Stats() []ViewerStats {
	s.mu.Lock()
	vs := make([]*viewer, 0, len(s.viewers))
	for _, v := range s.viewers {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	out := make([]ViewerStats, 0, len(vs))
	for _, v := range vs {
		st := ViewerStats{ID: v.id, Cameras: v.cameras, Since: v.since, Queued: v.q.len(),
			Sent: v.sent.Load(), Dropped: v.dropped.Load()}
		v.mu.Lock()
		if v.trees != nil {
			st.Open = true
			st.Buffered = v.trees.BufferedAmount()
		}
		v.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// ViewerStats returns one viewer's stats by the id in its Location.
func (s *Sink) ViewerStats(id string) (ViewerStats, bool) {
	for _, st := range s.Stats() {
		if st.ID == id {
			return st, true
		}
	}
	return ViewerStats{}, false
}

func (s *Sink) add(v *viewer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if len(s.viewers) >= s.cfg.MaxViewers {
		return errTooMany
	}
	s.viewers[v.id] = v
	s.wg.Add(1)
	return nil
}

func (s *Sink) remove(v *viewer) {
	s.mu.Lock()
	delete(s.viewers, v.id)
	s.mu.Unlock()
	s.log.Info("webrtc: viewer gone", "viewer", v.id, "why", context.Cause(v.ctx),
		"sent", v.sent.Load(), "dropped", v.dropped.Load())
	s.wg.Done()
}

func (s *Sink) hangUp(id string) bool {
	s.mu.Lock()
	v, ok := s.viewers[id]
	s.mu.Unlock()
	if ok {
		v.cancel(errHangUp)
	}
	return ok
}

// Close disconnects every viewer and waits for their goroutines.
func (s *Sink) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel(errSinkClosed)
	s.wg.Wait()
	return nil
}
