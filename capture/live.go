package capture

import (
	"context"
	"fmt"
	"time"

	"gocv.io/x/gocv"
)

func liveHint(k Kind) string {
	switch k {
	case KindDevice:
		return "check the camera is plugged in (`ls -l /dev/video*`, `v4l2-ctl --list-devices`) and that this user is in the video group"
	case KindRTSP:
		return "check the URL, the credentials and that the camera answers (`ffprobe <url>`); on lossy links set OPENCV_FFMPEG_CAPTURE_OPTIONS='rtsp_transport;tcp'"
	case KindHTTP:
		return "check the URL serves a video stream FFmpeg can read, such as MJPEG (`ffprobe <url>`)"
	case KindGStreamer:
		return "test the pipeline with `gst-launch-1.0` (fakesink in place of appsink) and install the plugins it names"
	}
	return ""
}

// videoCapture is what a Source reads from: a *gocv.VideoCapture
// (devices, GStreamer) or an *avCapture (files, RTSP, HTTP; see avdec.go).
type videoCapture interface {
	Read(m *gocv.Mat) bool
	Get(prop gocv.VideoCaptureProperties) float64
	IsOpened() bool
	Close() error
}

// connect opens a live source once. For RTSP and HTTP it returns early
// when ctx ends.
func (s *Source) connect(ctx context.Context) (videoCapture, error) {
	return s.decode.open(func() (videoCapture, error) { return s.open(ctx) })
}

// open opens a live source once, on the caller's thread (see decodeMeter).
func (s *Source) open(ctx context.Context) (videoCapture, error) {
	var (
		vc  videoCapture
		err error
	)
	switch s.kind {
	case KindDevice:
		var gc *gocv.VideoCapture
		if n, ok := deviceIndex(s.name); ok {
			gc, err = gocv.VideoCaptureDeviceWithAPI(n, gocv.VideoCaptureV4L2)
		} else {
			gc, err = gocv.VideoCaptureFileWithAPI(s.name, gocv.VideoCaptureV4L2)
		}
		if err != nil || !gc.IsOpened() {
			gc.Close()
			// gocv's own message repeats the source: not wrapped.
			return nil, fmt.Errorf("capture: cannot open %s source %q: %s", s.kind, redact(s.name), liveHint(s.kind))
		}
		vc = gc
	case KindGStreamer:
		gc, err := gocv.VideoCaptureFileWithAPI(s.name, gocv.VideoCaptureGstreamer)
		if err != nil || !gc.IsOpened() {
			gc.Close()
			return nil, fmt.Errorf("capture: cannot open %s source %q: %s", s.kind, redact(s.name), liveHint(s.kind))
		}
		vc = gc
	default: // RTSP, HTTP
		if vc, err = s.openNetwork(ctx); err != nil {
			// The probe never sees the password and FFmpeg's text is scrubbed of it.
			return nil, fmt.Errorf("capture: cannot open %s source %q: %w; %s", s.kind, redact(s.name), err, liveHint(s.kind))
		}
	}
	s.mu.Lock()
	s.info.Width = int(vc.Get(gocv.VideoCaptureFrameWidth))
	s.info.Height = int(vc.Get(gocv.VideoCaptureFrameHeight))
	s.info.FPS = plausibleFPS(vc.Get(gocv.VideoCaptureFPS))
	s.mu.Unlock()
	return vc, nil
}

// runLive reads until ctx ends, reconnecting with capped, jittered
// exponential backoff whenever opening or reading fails. The backoff is
// reset only once a frame has been read after connecting, so a server that
// accepts and then drops the connection is not hammered.
func (s *Source) runLive(ctx context.Context) {
	bo := backoff{min: s.cfg.ReconnectMin, max: s.cfg.ReconnectMax}
	rc := newRateCap(s.cfg.FPS)
	everOnline, gotFrame := s.vc != nil, false
	if s.vc != nil {
		s.setState(StateOnline)
	} else {
		s.setState(StateOffline)
	}
	m, g := gocv.NewMat(), LumaGrid{}
	defer func() { m.Close() }()
	var seq uint64
	for ctx.Err() == nil {
		if s.vc == nil {
			wait := bo.next()
			s.log.Debug("reconnecting", "in", wait)
			if !sleepCtx(ctx, wait) {
				return
			}
			s.setState(StateReconnecting)
			vc, err := s.connect(ctx)
			if err != nil && ctx.Err() != nil {
				return // stopped during the attempt: not a camera failure
			}
			if err != nil {
				s.connectFailures.Add(1)
				s.log.Warn("reconnect failed", "err", err, "failures", s.connectFailures.Load())
				s.setState(StateOffline)
				continue
			}
			s.vc, gotFrame = vc, false
			if everOnline {
				s.reconnects.Add(1)
			}
			everOnline = true
			s.log.Info("source online", "reconnects", s.reconnects.Load())
			s.setState(StateOnline)
		}
		if !s.readFrame(&m, &g) || m.Empty() {
			s.log.Warn("read failed; source lost, will reconnect", "frames_read", s.read.Load())
			s.vc.Close()
			s.vc = nil
			s.setState(StateOffline)
			continue
		}
		if !gotFrame {
			gotFrame = true
			bo.reset()
		}
		now := time.Now()
		pts := now.Sub(s.opened)
		s.read.Add(1)
		if rc.keep(pts) {
			toBGR(&m)
			s.emit(ctx, &Frame{Seq: seq, PTS: pts, Time: now, Mat: m, Luma: g, pool: s.pool}, true)
			m, g = s.pool.get(), s.pool.luma()
		} else {
			s.droppedRate.Add(1)
		}
		seq++
	}
}
