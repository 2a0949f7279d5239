package publish

import (
	"time"

	"github.com/edgemo/edgemo/engine/audience"
)

// Beyond trees, the daemon reports camera state, track lifecycle and face
// counts. A sink that wants them implements the matching interface; the
// daemon checks with a type assertion, so a sink implements only what it
// uses (JSONL takes trees only; MQTT takes all).

// Camera status values (docs/mqtt.md: <prefix>/<camera>/status).
const (
	StatusOnline       = "online"
	StatusOffline      = "offline"
	StatusReconnecting = "reconnecting"
)

// StatusSink receives a camera's connection state on every change.
type StatusSink interface {
	CameraStatus(camera, status string)
}

// TrackEvent is one track lifecycle change (facetrack's new/update/lost/end).
type TrackEvent struct {
	Type    string     `json:"type"` // new | update | lost | end
	Camera  string     `json:"camera"`
	TrackID int        `json:"track_id"`
	Box     [4]float64 `json:"box"` // x, y, w, h in source pixels
	Score   float64    `json:"score"`
	Time    time.Time  `json:"time"`
}

// TrackSink receives track lifecycle events. Called from the camera's frame
// goroutine: it must not block (buffer or drop, and count).
type TrackSink interface {
	Track(ev TrackEvent)
}

// FacesSink receives the number of faces a camera sees now, on change.
type FacesSink interface {
	Faces(camera string, n int)
}

// RemovalSink is told when a camera leaves the running set (removed from
// the config, or disabled), once its pipeline has stopped and sent its last
// event, so the sink can drop what it keeps for the camera (retained MQTT
// topics, Home Assistant entities). A camera that is only restarted with
// changed settings is not removed. Events for the camera after this
// announce it anew.
type RemovalSink interface {
	CameraRemoved(camera string)
}

// AudienceSink receives each camera's audience figures (faces now,
// visitors, dwell, attention share, emotion mix; engine/audience) every
// stats interval.
type AudienceSink interface {
	Audience(a audience.Audience)
}

// FaceImageSink receives the JPEG of a track's latest aligned face crop,
// once per tree, right after the tree. Privacy: the pipeline encodes and
// hands over face images only when the config allows it
// (privacy.face_images); by default no sink is ever called, and no face
// image leaves the device. Called from the camera's engine goroutine: it
// must not block (drop, and count). jpeg is the sink's to keep.
type FaceImageSink interface {
	FaceImage(camera string, trackID int, treeID string, jpeg []byte)
}
