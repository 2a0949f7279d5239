package capture

import (
	"context"
	"fmt"
	"math"
	"time"

	"gocv.io/x/gocv"
)

// reencodeHint is the fix we suggest for a file OpenCV cannot read.
func reencodeHint(path string) string {
	return fmt.Sprintf("inspect it with `ffprobe %s`, or re-encode it with `ffmpeg -i %s -c:v libx264 fixed.mp4`", path, path)
}

// openFile checks the file, opens it with FFmpeg's libraries (avdec.go:
// OpenCV's FFmpeg backend cannot set its decoder threads), and decodes the
// first frame, so a file that opens but holds no decodable frame fails
// here rather than as an empty run.
func (s *Source) openFile() error {
	path := s.name
	if err := checkFile(path, "video file"); err != nil {
		return err
	}
	vc, err := s.decode.open(func() (videoCapture, error) {
		ac, err := openAvCapture(path, s.cfg.avOptions())
		if err != nil {
			return nil, fmt.Errorf("capture: cannot open %q as a video (%w): it is not a container/codec FFmpeg recognises, or is damaged; %s", path, err, reencodeHint(path))
		}
		return ac, nil
	})
	if err != nil {
		return err
	}
	fps := vc.Get(gocv.VideoCaptureFPS)
	declared := vc.Get(gocv.VideoCaptureFrameCount)
	m := gocv.NewMat()
	s.vc = vc
	if !s.readFrame(&m, &s.pendingL) || m.Empty() {
		s.vc = nil
		m.Close()
		vc.Close()
		return fmt.Errorf("capture: opened %q but could not decode a single frame (its header declares %d): the file is truncated or corrupt; %s",
			path, plausibleCount(declared), reencodeHint(path))
	}
	toBGR(&m)
	s.firstPos = vc.Get(gocv.VideoCapturePosMsec)
	s.pending = m
	s.mu.Lock()
	s.info.Width, s.info.Height = m.Cols(), m.Rows()
	s.info.FPS = plausibleFPS(fps)
	s.info.Frames = plausibleCount(declared)
	s.mu.Unlock()
	return nil
}

func plausibleFPS(fps float64) float64 {
	if fps > 0.01 && fps <= 1000 {
		return fps
	}
	return 0
}

func plausibleCount(n float64) int {
	if n >= 1 && n < 1e9 {
		return int(math.Round(n))
	}
	return 0
}

// runStart: a file's or picture's frames are timed from when its run
// starts, not from when its open began. The open (probe, FFmpeg's open,
// the first decode) takes tens to hundreds of milliseconds when many
// cameras open at once, and a real-time clock started before it would find
// the first frames already due and push them out in one burst, overflowing
// the consumer's buffer while it handles the first frame (bench streams
// lost frames 1..4 so on every loop of 8 cameras).

// runFile reads the file to its end. It returns an error only when the
// file stops well short of the frame count its container declares.
func (s *Source) runFile(ctx context.Context) error {
	s.setState(StateOnline)
	info := s.Info()
	clk := ptsClock{interval: nominalInterval(info.FPS)}
	rc := newRateCap(s.cfg.FPS)
	start := time.Now() // not the open's start: see runStart
	m, g, pos := s.pending, s.pendingL, s.firstPos
	s.pending, s.pendingL = gocv.Mat{}, LumaGrid{}
	var seq uint64
	for {
		s.read.Add(1)
		pts := clk.next(pos)
		s.repaired.Store(clk.repaired)
		if rc.keep(pts) {
			t := start.Add(pts)
			if s.cfg.Realtime && !sleepUntil(ctx, t) {
				m.Close()
				return nil
			}
			if !s.emit(ctx, &Frame{Seq: seq, PTS: pts, Time: t, Mat: m, Luma: g, pool: s.pool}, s.cfg.Realtime) {
				return nil
			}
			m, g = s.pool.get(), s.pool.luma()
		} else {
			s.droppedRate.Add(1)
		}
		seq++
		if ctx.Err() != nil {
			m.Close()
			return nil
		}
		if !s.readFrame(&m, &g) || m.Empty() {
			m.Close()
			break
		}
		toBGR(&m)
		pos = s.vc.Get(gocv.VideoCapturePosMsec)
	}
	// OpenCV reports a decode failure exactly like the end of the file, so
	// the declared frame count is the only witness of damage. Containers
	// that estimate the count (duration × fps) may be off by a frame or
	// two: allow max(2, 1%).
	if want := info.Frames; want > 0 && int(seq)+max(2, want/100) < want {
		return fmt.Errorf("capture: %q: decoding stopped after %d of the %d frames its container declares: the file is truncated or corrupt (the %d frames before the damage were delivered); %s",
			s.name, seq, want, seq, reencodeHint(s.name))
	}
	return nil
}

func (s *Source) openImage() error {
	path := s.name
	if err := checkFile(path, "image"); err != nil {
		return err
	}
	img := gocv.IMRead(path, gocv.IMReadColor)
	if img.Empty() {
		img.Close()
		return fmt.Errorf("capture: OpenCV cannot decode image %q: it is damaged or not really a PNG/JPEG/BMP; check it with `file %s` or re-save it", path, path)
	}
	s.pending = img
	s.mu.Lock()
	s.info.Width, s.info.Height = img.Cols(), img.Rows()
	s.info.FPS = s.cfg.StillFPS
	s.info.Frames = max(1, int(math.Round(s.cfg.StillDuration.Seconds()*s.cfg.StillFPS)))
	s.mu.Unlock()
	return nil
}

// runImage emits the picture as a clip of Info().Frames frames spaced
// 1/StillFPS apart in media time.
func (s *Source) runImage(ctx context.Context) error {
	s.setState(StateOnline)
	n := s.Info().Frames
	rc := newRateCap(s.cfg.FPS)
	start := time.Now() // not the open's start: see runStart
	for i := 0; i < n && ctx.Err() == nil; i++ {
		s.read.Add(1)
		pts := time.Duration(float64(i) * float64(time.Second) / s.cfg.StillFPS)
		if !rc.keep(pts) {
			s.droppedRate.Add(1)
			continue
		}
		t := start.Add(pts)
		if s.cfg.Realtime && !sleepUntil(ctx, t) {
			return nil
		}
		if !s.emit(ctx, &Frame{Seq: uint64(i), PTS: pts, Time: t, Mat: s.pending.Clone()}, s.cfg.Realtime) {
			return nil
		}
	}
	return nil
}
