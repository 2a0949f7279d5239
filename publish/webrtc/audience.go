package webrtc

import (
	"encoding/json"
	"time"

	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
)

var (
	_ publish.FacesSink    = (*Sink)(nil)
	_ publish.AudienceSink = (*Sink)(nil)
	_ publish.RemovalSink  = (*Sink)(nil)
)

// Faces forwards a camera's face count (faces now) on change; the last one
// is replayed to a viewer whose "events" opens, so a dashboard counts faces
// in view, not the cards it keeps.
func (s *Sink) Faces(camera string, n int) {
	s.mu.Lock()
	s.faces[camera] = n
	s.mu.Unlock()
	s.event(camera, Envelope{Type: "faces", Camera: camera, Faces: &n, Time: tree.Time(time.Now())})
}

// Audience forwards a camera's audience figures (engine/audience); the
// last ones are replayed likewise.
func (s *Sink) Audience(a audience.Audience) {
	s.mu.Lock()
	s.aud[a.Camera] = a
	s.mu.Unlock()
	s.event(a.Camera, Envelope{Type: "audience", Camera: a.Camera, Audience: &a, Time: tree.Time(time.Now())})
}

// replayAudienceLocked is the last faces and audience envelopes of the
// cameras v wants; s.mu held.
func (s *Sink) replayAudienceLocked(v *viewer) []message {
	var ms []message
	add := func(e Envelope) {
		if b, err := json.Marshal(e); err == nil {
			ms = append(ms, message{kind: kindEvent, text: string(b)})
		}
	}
	now := tree.Time(time.Now())
	for cam, n := range s.faces {
		if v.wants(cam) {
			add(Envelope{Type: "faces", Camera: cam, Faces: &n, Time: now})
		}
	}
	for cam, a := range s.aud {
		if v.wants(cam) {
			add(Envelope{Type: "audience", Camera: cam, Audience: &a, Time: now})
		}
	}
	return ms
}

// CameraRemoved forgets a removed camera's faces and audience, so a viewer
// that connects later is not shown them.
func (s *Sink) CameraRemoved(camera string) {
	s.mu.Lock()
	delete(s.faces, camera)
	delete(s.aud, camera)
	s.mu.Unlock()
}
