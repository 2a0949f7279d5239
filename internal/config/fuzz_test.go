package config

import (
	"fmt"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// FuzzLoadConfig: the loader and validator never panic, and whatever they
// accept is safe to hand to OpenCV, the allocators and the timers (safe
// re-checks that with its own limits, not validate's code).
//
//	go test -run '^$' -fuzz FuzzLoadConfig -fuzztime 5m ./internal/config
func FuzzLoadConfig(f *testing.F) {
	f.Add(Example())
	if b, err := os.ReadFile(testenv.Path(f, "edgemo.example.yaml")); err == nil {
		f.Add(b)
	}
	for _, s := range []string{
		"cameras:\n  door:\n    source: rtsp://cam/x\n    crop_size: 100000\n",
		"cameras:\n  door:\n    source: rtsp://cam/x\n    crop_size: -1\n    crop_margin: -0.5\n    detect_width: -640\n",
		"cameras:\n  door: {source: rtsp://cam/x, crop_size: 1024, crop_margin: 2, detect_width: 64, window: {length: 21, stride: 1}}\n",
		"cameras:\n  door: {source: rtsp://cam/x, fps: .nan, window: {fps: .inf}}\n",
		"cameras:\n  door: {source: 0}\n  door: {source: 1}\n",
		"cameras:\n  door:\n    source: 0\n    fps: two\n",
		"defaults: &d {source: 0, window: {length: 4}}\ncameras:\n  a: *d\n  b: *d\n",
		"mqtt: {queue_size: 0, stats_interval: -1s, qos: 2}\nengine: {threads: -3, providers: [CUDA, trt]}\ncameras:\n  a: {source: http://cam/v.mjpg, read_timeout: 1ns}\n",
		"a: &a [x, x]\nb: &b [*a, *a]\nc: &c [*b, *b]\ncameras:\n  a: {source: 0}\n",
		"cameras:\n  a: {source: \"${EDGEMO_FUZZ_UNSET:-0}\"}\n",
		"",
		"- just\n- a list\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// The loader runs on every reload: an input that stalls it is a
		// failure too, reported with the input.
		type result struct {
			c   *Config
			err error
		}
		done := make(chan result, 1)
		go func() {
			c, err := Parse("fuzz.yaml", b)
			done <- result{c, err}
		}()
		var r result
		select {
		case r = <-done:
		case <-time.After(2 * time.Second):
			t.Fatalf("Parse took over 2 s on %d bytes: %q", len(b), b)
		}
		c, err := r.c, r.err
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := safe(c); err != nil {
			t.Fatalf("accepted an unsafe config: %v\n%s", err, b)
		}
	})
}

// safe re-checks, independently of validate, what an accepted config hands
// to OpenCV (crop and detection sizes), allocations (windows, queues,
// threads, batches) and timers (tickers, read deadlines): the invariants
// behind "accepted ⇒ the daemon does not crash on it".
func safe(c *Config) error {
	fin := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	if len(c.Cameras) == 0 {
		return fmt.Errorf("no camera")
	}
	for _, p := range c.Engine.Providers {
		if _, ok := registry.Providers.Get(p); !ok {
			return fmt.Errorf("provider %q", p)
		}
	}
	if c.Engine.Heads != nil {
		for _, h := range *c.Engine.Heads {
			if _, ok := registry.Heads.Get(h); !ok {
				return fmt.Errorf("head %q", h)
			}
		}
	}
	if n := c.Engine.Threads; n < 1 || n > 256 {
		return fmt.Errorf("threads %d", n)
	}
	if n := c.Models.VidEmoQuestionBatch; n < 0 || n > 32 {
		return fmt.Errorf("question batch %d", n)
	}
	if n := c.Models.VidEmoCaptionTokens; n < 0 || n > 4096 {
		return fmt.Errorf("caption tokens %d", n)
	}
	m := c.MQTT
	if m.QoS == nil || *m.QoS < 0 || *m.QoS > 2 {
		return fmt.Errorf("qos")
	}
	if m.QueueSize < 1 || m.QueueSize > 100_000 {
		return fmt.Errorf("queue_size %d", m.QueueSize)
	}
	if d := time.Duration(m.StatsInterval); d < time.Second || d > time.Hour {
		return fmt.Errorf("stats_interval %v", d)
	}
	if n := m.Embedded.MaxPacketSize; n < 4<<10 || n > 256<<20 {
		return fmt.Errorf("max_packet_size %d", n)
	}
	if n := m.Embedded.MaxRetained; n < 16 || n > 1<<20 {
		return fmt.Errorf("max_retained %d", n)
	}
	for name, cam := range c.Cameras {
		if !cameraName.MatchString(name) {
			return fmt.Errorf("camera name %q", name)
		}
		if _, err := capture.Parse(cam.Source); err != nil {
			return fmt.Errorf("camera %s source: %w", name, err)
		}
		if _, ok := registry.Detectors.Get(cam.Detector); !ok {
			return fmt.Errorf("camera %s detector %q", name, cam.Detector)
		}
		// OpenCV: the crop (CropAligned allocates size² and a border of up
		// to (1+2·margin)·box) and the detection resize.
		if cam.CropSize < 32 || cam.CropSize > 1024 {
			return fmt.Errorf("camera %s crop_size %d", name, cam.CropSize)
		}
		if !fin(cam.CropMargin) || cam.CropMargin < 0 || cam.CropMargin > 2 {
			return fmt.Errorf("camera %s crop_margin %v", name, cam.CropMargin)
		}
		if cam.DetectWidth < 64 || cam.DetectWidth > 3840 {
			return fmt.Errorf("camera %s detect_width %d", name, cam.DetectWidth)
		}
		if cam.DetectEvery < 1 || cam.DetectEvery > 300 {
			return fmt.Errorf("camera %s detect_every %d", name, cam.DetectEvery)
		}
		if !fin(cam.FPS) || cam.FPS < 0 || cam.FPS > 240 {
			return fmt.Errorf("camera %s fps %v", name, cam.FPS)
		}
		if d := time.Duration(cam.ReadTimeout); d < 100*time.Millisecond || d > 10*time.Minute {
			return fmt.Errorf("camera %s read_timeout %v", name, d)
		}
		// The window package's own check, and its memory per track.
		w := window.Config{FPS: cam.Window.FPS, Length: cam.Window.Length, Stride: cam.Window.Stride}.WithDefaults()
		if err := w.Validate(); err != nil {
			return fmt.Errorf("camera %s window: %w", name, err)
		}
		if cam.Window.FPS > 60 || cam.Window.Length > 64 {
			return fmt.Errorf("camera %s window %+v", name, cam.Window)
		}
		if b := cam.Window.Length * cam.CropSize * cam.CropSize * 3; b > 64<<20 {
			return fmt.Errorf("camera %s: a window holds %d bytes per track", name, b)
		}
	}
	return nil
}
