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
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gocv.io/x/gocv"
)

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
