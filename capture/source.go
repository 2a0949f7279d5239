// Package capture opens video sources (files, still images, V4L2 cameras,
// RTSP/HTTP streams, GStreamer pipelines) with GoCV and delivers decoded
// frames on a bounded channel, with timestamps, an optional frame-rate cap,
// drop-oldest back-pressure for live sources and reconnection with backoff.
// FrameSource is what the pipeline reads; *Source is the OpenCV one, and a
// source from elsewhere implements the same interface. See README.md for
// the source strings, the Mat ownership rule and the drop policy.
package capture

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"

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

// State is a source's connection state.
type State int

const (
	StateOnline       State = iota + 1 // frames are being read
	StateOffline                       // not connected; waiting for the next attempt (live only)
	StateReconnecting                  // a connection attempt is in progress (live only)
	StateClosed                        // ended for good: end of file, Close, or ctx cancelled
)

func (s State) String() string {
	switch s {
	case StateOnline:
		return "online"
	case StateOffline:
		return "offline"
	case StateReconnecting:
		return "reconnecting"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Info describes an opened source. For a live source that is not yet
// online, Width, Height and FPS are 0 until it connects.
type Info struct {
	Source        string // as configured, with any URL password masked
	Kind          Kind
	Width, Height int
	FPS           float64 // native rate reported by the backend (images: StillFPS); 0 if unknown
	Frames        int     // files: frame count declared by the container (for progress; 0 if unknown); images: frames the clip will have; live: 0
}

// Stats are a source's counters.
type Stats struct {
	Read               uint64 // frames decoded (images: frames of the synthesised clip)
	Emitted            uint64 // frames put on the channel (including ones later dropped as oldest)
	DroppedRate        uint64 // skipped by the FPS cap
	DroppedSlow        uint64 // queued frames discarded because the consumer was slow (live / Realtime)
	Reconnects         uint64 // successful re-connections after the source was lost
	ConnectFailures    uint64 // failed connection attempts (live)
	TimestampsRepaired uint64 // file frames whose container timestamp was missing or implausible
}

// Source is an opened video source. Its goroutine decodes frames onto
// Frames() until the source ends, ctx is cancelled, or Close is called.
type Source struct {
	cfg    Config
	kind   Kind
	name   string // cfg.Source, trimmed
	log    *slog.Logger
	frames chan *Frame
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
	opened time.Time

	mu    sync.Mutex
	info  Info
	err   error
	state State

	read, emitted, droppedRate, droppedSlow atomic.Uint64
	reconnects, connectFailures, repaired   atomic.Uint64
	decode                                  decodeMeter

	// Owned by Open, then by the goroutine.
	vc       videoCapture
	pending  gocv.Mat // files: the first frame, decoded by Open; images: the picture
	pendingL LumaGrid // files: the first frame's grid
	pool     *matPool // closed frames' Mats, read into again
	firstPos float64  // files: CAP_PROP_POS_MSEC after the first frame
}

// Open validates cfg, opens the source and starts reading it. Files and
// images are checked up front (exists, readable, non-empty, decodable: the
// first frame is decoded here) so a bad path fails here with an error that
// names it. The source lives until it ends, ctx is cancelled or Close is
// called; always call Close. log may be nil (slog.Default).
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Source, error) {
	kind, err := Parse(cfg.Source)
	if err != nil {
		return nil, err
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	name := strings.TrimSpace(cfg.Source)
	s := &Source{
		cfg:    cfg,
		kind:   kind,
		name:   name,
		log:    log.With("source", redact(name), "kind", kind.String()),
		frames: make(chan *Frame, cfg.Buffer),
		pool:   newMatPool(cfg.Buffer + 2),
		done:   make(chan struct{}),
		opened: time.Now(),
		info:   Info{Source: redact(name), Kind: kind},
	}
	switch kind {
	case KindFile:
		err = s.openFile()
	case KindImage:
		err = s.openImage()
	default:
		var vc videoCapture
		vc, err = s.connect(ctx)
		if err != nil && !cfg.RequireOnline {
			s.connectFailures.Add(1)
			s.log.Warn("source not reachable yet; retrying in the background", "err", err)
			err = nil
		}
		s.vc = vc
	}
	if err != nil {
		return nil, err
	}
	i := s.Info()
	s.log.Info("source opened", "width", i.Width, "height", i.Height, "fps", i.FPS, "frames", i.Frames)
	ctx, s.cancel = context.WithCancel(ctx)
	go s.run(ctx)
	return s, nil
}

// Frames delivers decoded frames in Seq order; it is closed when the source
// ends (end of file, Close, ctx cancelled). Each received frame is owned by
// the receiver, who must Close it.
func (s *Source) Frames() <-chan *Frame { return s.frames }

// Info returns what is known about the source now.
func (s *Source) Info() Info {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.info
}

// State returns the current connection state.
func (s *Source) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// Err returns why the source stopped, once Frames is closed: nil for a clean
// end of file, Close or ctx cancellation; an error naming the file and the
// number of frames read when a file stops short of the frame count its
// container declares. Before Frames is closed it returns nil.
func (s *Source) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stats returns a snapshot of the counters; safe to call at any time from
// any goroutine.
func (s *Source) Stats() Stats {
	return Stats{
		Read:               s.read.Load(),
		Emitted:            s.emitted.Load(),
		DroppedRate:        s.droppedRate.Load(),
		DroppedSlow:        s.droppedSlow.Load(),
		Reconnects:         s.reconnects.Load(),
		ConnectFailures:    s.connectFailures.Load(),
		TimestampsRepaired: s.repaired.Load(),
	}
}

// DecodeCPU is the CPU time spent decoding so far: the reads and the
// decoder's own threads (see decodeMeter); 0 where the OS does not say.
// Apart from Stats because it reads /proc, a file per thread of the
// process: for a stats tick or a benchmark's reading, not a polling loop.
func (s *Source) DecodeCPU() time.Duration { return s.decode.CPU() }

// Close stops the source, waits for its goroutine to exit and closes every
// frame still queued. Frames already received stay the receiver's. Safe to
// call more than once and concurrently with a receiver. A network source
// blocked inside a read returns within Config.ReadTimeout (default 5s).
// Close always returns nil; see Err.
func (s *Source) Close() error {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		for f := range s.frames {
			f.Close()
		}
	})
	return nil
}

func (s *Source) setState(st State) {
	s.mu.Lock()
	if s.state == st {
		s.mu.Unlock()
		return
	}
	s.state = st
	s.mu.Unlock()
	s.log.Debug("state", "state", st.String())
	if s.cfg.OnState != nil {
		s.cfg.OnState(st)
	}
}

// run is the source's only goroutine; it owns s.vc and s.pending.
func (s *Source) run(ctx context.Context) {
	var err error
	defer func() {
		if s.vc != nil {
			s.vc.Close()
			s.vc = nil
		}
		if s.pending.Ptr() != nil {
			s.pending.Close()
		}
		if ctx.Err() != nil { // stopped early: nobody wants the queue
			drain(s.frames)
		}
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		st := s.Stats()
		s.log.Info("source stopped", "read", st.Read, "emitted", st.Emitted, "dropped_rate", st.DroppedRate,
			"dropped_slow", st.DroppedSlow, "reconnects", st.Reconnects, "err", err)
		s.setState(StateClosed)
		s.pool.close() // frames still queued free their Mats when closed
		close(s.frames)
		close(s.done)
	}()
	switch s.kind {
	case KindFile:
		err = s.runFile(ctx)
	case KindImage:
		err = s.runImage(ctx)
	default:
		s.runLive(ctx)
	}
}

// readFrame reads the next frame into m and, where the config asks for
// one and the decoder makes it, its grid into g (otherwise g.W is 0).
func (s *Source) readFrame(m *gocv.Mat, g *LumaGrid) bool {
	if lr, ok := s.vc.(lumaReader); ok && s.cfg.LumaGrid.Cells > 0 {
		ok, _ := lr.ReadLuma(m, g, s.cfg.LumaGrid)
		return ok
	}
	g.W, g.H = 0, 0
	return s.vc.Read(m)
}

func drain(ch chan *Frame) {
	for {
		select {
		case f := <-ch:
			f.Close()
		default:
			return
		}
	}
}

// emit hands f to the consumer. Blocking mode waits for room (or ctx);
// dropOldest mode never waits: when the channel is full it discards the
// oldest queued frame. It reports false (and closes f) only when ctx ended.
func (s *Source) emit(ctx context.Context, f *Frame, dropOldest bool) bool {
	if !dropOldest {
		select {
		case s.frames <- f:
			s.emitted.Add(1)
			return true
		case <-ctx.Done():
			f.Close()
			return false
		}
	}
	for {
		select {
		case s.frames <- f:
			s.emitted.Add(1)
			return true
		default:
		}
		select {
		case old := <-s.frames:
			old.Close()
			s.droppedSlow.Add(1)
		default: // the consumer just took one: there is room again
		}
	}
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	return sleepCtx(ctx, time.Until(t))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// toBGR converts gray and BGRA pictures (some GStreamer pipelines and
// images) to the BGR every consumer expects.
func toBGR(m *gocv.Mat) {
	switch m.Channels() {
	case 1:
		gocv.CvtColor(*m, m, gocv.ColorGrayToBGR)
	case 4:
		gocv.CvtColor(*m, m, gocv.ColorBGRAToBGR)
	}
}

// redact masks the password of a URL with credentials, for logs and errors.
func redact(s string) string {
	if !strings.Contains(s, "://") || !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	return u.String()
}

// checkFile makes sure path is a readable, non-empty regular file before
// OpenCV sees it (gocv 0.31 does not catch C++ exceptions).
func checkFile(path, what string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		wd, _ := os.Getwd()
		return fmt.Errorf("capture: %s %q does not exist (relative paths start at %s): check the path", what, path, wd)
	}
	if err != nil {
		return fmt.Errorf("capture: %s %q: %w: check the path and its permissions", what, path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("capture: %s %q is a directory: give a file inside it", what, path)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("capture: %s %q is not a regular file (%v): give a file, or a /dev/videoN camera", what, path, st.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("capture: %s %q is not readable: %w: fix its permissions (chmod a+r)", what, path, err)
	}
	f.Close()
	if st.Size() == 0 {
		return fmt.Errorf("capture: %s %q is empty (0 bytes): the copy or recording failed; replace the file", what, path)
	}
	return nil
}
