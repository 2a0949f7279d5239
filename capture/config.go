package capture

import (
	"fmt"
	"math"
	"time"

	"github.com/edgemo/edgemo/engine/registry"
)

// Config says what to open and how to pace it. The zero value of every field
// but Source is a usable default.
type Config struct {
	Source string // see Parse for the accepted forms

	// FPS caps the emitted frame rate (frames per second of media time for
	// files and images, of wall-clock time for live sources). 0 emits every
	// frame.
	FPS float64
	// Buffer is the depth of the Frames channel (default 4, at least 1).
	Buffer int
	// Realtime makes files and images behave like a live source: frames are
	// released at their PTS on the wall clock and, when the consumer falls
	// behind, the oldest queued frame is dropped. Without it a file is read
	// as fast as the consumer takes frames and none is dropped.
	Realtime bool

	// StillDuration and StillFPS turn an image into a clip of
	// StillDuration×StillFPS identical frames with media timestamps
	// (defaults 5s and 10), so time windows downstream fill up.
	StillDuration time.Duration
	StillFPS      float64

	// ReconnectMin and ReconnectMax bound the exponential backoff between
	// connection attempts of a live source (defaults 500ms and 2s). Each
	// wait is drawn between half and all of the current step, so with the
	// defaults the waits are 0.25–0.5 s, 0.5–1 s, then 1–2 s for as long as
	// the source stays away: a camera whose source returns is online again
	// within about 2 s plus its open time, at under one attempt a second.
	ReconnectMin, ReconnectMax time.Duration
	// RequireOnline makes Open fail when a live source cannot be opened at
	// once (doctor, one-shot commands). By default Open succeeds and the
	// source keeps retrying in the background, so a daemon survives a camera
	// that boots after it.
	RequireOnline bool
	// ReadTimeout bounds, per camera, each step of an RTSP or HTTP source
	// that waits on the network: the probe that checks the camera answers
	// before FFmpeg opens it, FFmpeg's open and every frame read (through
	// the stream's interrupt callback, avdec.cpp). A camera that
	// stops sending but keeps its connection open is declared lost, and the
	// source reconnects, after this long instead of OpenCV's built-in 30s;
	// Close returns as quickly. Default 5s. Set it above the camera's open
	// time and the longest gap it leaves between frames. Other kinds
	// ignore it.
	ReadTimeout time.Duration

	// DecodeThreads is the decoder threads of a file or an RTSP or HTTP
	// stream (0: one per CPU, what OpenCV's FFmpeg backend gives every
	// capture). Several cameras on one machine run best on
	// DecodeThreads(cameras) each.
	DecodeThreads int
	// Deblock is which frames of an H.264 or HEVC file or stream get the
	// decoder's loop filter: a registry.Deblocking name (default
	// "reference": the frames others are predicted from). "all" gives the
	// frames OpenCV's capture gives.
	Deblock string

	// LumaGrid, when set, asks for each frame's LumaGrid (Frame.Luma) from
	// the decoders that can make one: the motion gate's grid, made from
	// the luma plane as the frame is decoded.
	LumaGrid GridSpec

	// OnState, if set, is called on every state change, from the source's
	// goroutine; it must return quickly.
	OnState func(State)
}

// DefaultReadTimeout is Config.ReadTimeout's default.
const DefaultReadTimeout = 5 * time.Second

// DefaultReconnectMax is Config.ReconnectMax's default: low enough that a
// camera whose source returns is back within 5 s (one capped wait, 1–2 s,
// plus the open), high enough that a dead camera costs under one
// connection attempt a second.
const DefaultReconnectMax = 2 * time.Second

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.FPS < 0 || math.IsNaN(c.FPS) || math.IsInf(c.FPS, 0):
		return c, fmt.Errorf("capture: FPS %v: use 0 (every frame) or a positive cap", c.FPS)
	case c.Buffer < 0:
		return c, fmt.Errorf("capture: Buffer %d: use 0 for the default (4) or a positive depth", c.Buffer)
	case c.StillDuration < 0 || c.StillFPS < 0 || math.IsNaN(c.StillFPS) || math.IsInf(c.StillFPS, 0):
		return c, fmt.Errorf("capture: StillDuration %v / StillFPS %v: use 0 for the defaults (5s, 10) or positive values", c.StillDuration, c.StillFPS)
	case c.ReadTimeout < 0:
		return c, fmt.Errorf("capture: ReadTimeout %v: use 0 for the default (5s) or a positive timeout", c.ReadTimeout)
	case c.DecodeThreads < 0 || c.DecodeThreads > 64:
		return c, fmt.Errorf("capture: DecodeThreads %d: use 0 (one per CPU) or 1 to 64", c.DecodeThreads)
	case c.ReconnectMin < 0 || c.ReconnectMax < 0:
		return c, fmt.Errorf("capture: negative reconnect backoff (%v, %v): use 0 for the defaults (500ms, 2s)", c.ReconnectMin, c.ReconnectMax)
	}
	if c.Buffer == 0 {
		c.Buffer = 4
	}
	if c.StillDuration == 0 {
		c.StillDuration = 5 * time.Second
	}
	if c.StillFPS == 0 {
		c.StillFPS = 10
	}
	if c.DecodeThreads == 0 {
		c.DecodeThreads = DecodeThreads(1)
	}
	if c.Deblock == "" {
		c.Deblock = registry.Deblocking.Default()
	} else if err := registry.Deblocking.Check(c.Deblock); err != nil {
		return c, fmt.Errorf("capture: %w", err)
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 500 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = max(DefaultReconnectMax, c.ReconnectMin)
	}
	if c.ReconnectMax < c.ReconnectMin {
		return c, fmt.Errorf("capture: ReconnectMax %v is below ReconnectMin %v: raise ReconnectMax", c.ReconnectMax, c.ReconnectMin)
	}
	return c, nil
}
