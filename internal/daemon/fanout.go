package daemon

import (
	"context"
	"errors"
	"sync"

	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
)

// fanout is the one sink every camera publishes to. It forwards to the
// current set of sinks, which the daemon swaps when the config changes, so
// restarting MQTT never touches a camera.
type fanout struct {
	mu    sync.RWMutex
	sinks map[string]publish.Sink // by role: "mqtt", "webrtc", …
}

func newFanout() *fanout { return &fanout{sinks: map[string]publish.Sink{}} }

// set installs s for role (nil removes it) and returns the previous one.
func (f *fanout) set(role string, s publish.Sink) publish.Sink {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.sinks[role]
	if s == nil {
		delete(f.sinks, role)
	} else {
		f.sinks[role] = s
	}
	return old
}

func (f *fanout) each(fn func(publish.Sink)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	for _, s := range f.sinks {
		fn(s)
	}
}

func (f *fanout) Publish(ctx context.Context, t *tree.Tree) error {
	var errs []error
	f.each(func(s publish.Sink) {
		if err := s.Publish(ctx, t); err != nil {
			errs = append(errs, err)
		}
	})
	return errors.Join(errs...)
}

func (f *fanout) CameraStatus(camera, status string) {
	f.each(func(s publish.Sink) {
		if ss, ok := s.(publish.StatusSink); ok {
			ss.CameraStatus(camera, status)
		}
	})
}

func (f *fanout) Track(ev publish.TrackEvent) {
	f.each(func(s publish.Sink) {
		if ts, ok := s.(publish.TrackSink); ok {
			ts.Track(ev)
		}
	})
}

func (f *fanout) Faces(camera string, n int) {
	f.each(func(s publish.Sink) {
		if fs, ok := s.(publish.FacesSink); ok {
			fs.Faces(camera, n)
		}
	})
}

func (f *fanout) CameraRemoved(camera string) {
	f.each(func(s publish.Sink) {
		if rs, ok := s.(publish.RemovalSink); ok {
			rs.CameraRemoved(camera)
		}
	})
}

func (f *fanout) Audience(a audience.Audience) {
	f.each(func(s publish.Sink) {
		if as, ok := s.(publish.AudienceSink); ok {
			as.Audience(a)
		}
	})
}

// FaceImage is only called by pipelines whose privacy gate is open.
func (f *fanout) FaceImage(camera string, trackID int, treeID string, jpeg []byte) {
	f.each(func(s publish.Sink) {
		if fs, ok := s.(publish.FaceImageSink); ok {
			fs.FaceImage(camera, trackID, treeID, jpeg) // read-only from here on: sinks only send it
		}
	})
}

// Close does nothing: the daemon closes each sink it made.
func (f *fanout) Close() error { return nil }
