package capture

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	ok := []struct {
		in   string
		want Kind
		live bool
	}{
		{"deps/media/Megamind.avi", KindFile, false},
		{"/data/clip.MP4", KindFile, false},
		{"clip", KindFile, false},
		{"face.png", KindImage, false},
		{"Face.JPG", KindImage, false},
		{"a.jpeg", KindImage, false},
		{"scan.bmp", KindImage, false},
		{"0", KindDevice, true},
		{" 2 ", KindDevice, true},
		{"/dev/video1", KindDevice, true},
		{"/dev/v4l/by-id/usb-cam-video-index0", KindDevice, true},
		{"rtsp://user:pw@10.0.0.2:554/stream1", KindRTSP, true},
		{"RTSPS://cam/x", KindRTSP, true},
		{"http://127.0.0.1:8080/video.mjpg", KindHTTP, true},
		{"https://example.org/live.m3u8", KindHTTP, true},
		{"nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! video/x-raw,format=BGR ! appsink drop=1", KindGStreamer, true},
	}
	for _, c := range ok {
		k, err := Parse(c.in)
		if err != nil || k != c.want || k.Live() != c.live {
			t.Errorf("Parse(%q) = %v (live %v), %v; want %v (live %v)", c.in, k, k.Live(), err, c.want, c.live)
		}
	}
	bad := map[string]string{
		"":                            "empty source",
		"   ":                         "empty source",
		"-1":                          "negative",
		"rtmp://host/app":             "unsupported scheme",
		"v4l2src ! videoconvert ! xv": "appsink",
	}
	for in, want := range bad {
		if _, err := Parse(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error about %q", in, err, want)
		}
	}
	if KindGStreamer.String() != "gstreamer" || Kind(99).String() != "Kind(99)" {
		t.Error("Kind.String")
	}
}

func TestDeviceIndex(t *testing.T) {
	for in, want := range map[string]int{"0": 0, "/dev/video3": 3, "12": 12} {
		if n, ok := deviceIndex(in); !ok || n != want {
			t.Errorf("deviceIndex(%q) = %d, %v", in, n, ok)
		}
	}
	if _, ok := deviceIndex("/dev/v4l/by-id/x"); ok {
		t.Error("a by-id path is not an index")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, c := range []Config{
		{Source: "x.avi", FPS: -1},
		{Source: "x.avi", FPS: math.NaN()},
		{Source: "x.avi", Buffer: -2},
		{Source: "x.png", StillFPS: -1},
		{Source: "0", ReconnectMin: time.Second, ReconnectMax: time.Millisecond},
	} {
		if _, err := Open(context.Background(), c, quietLog()); err == nil {
			t.Errorf("Open(%+v) succeeded, want a config error", c)
		}
	}
	c, err := Config{Source: "x"}.withDefaults()
	if err != nil || c.Buffer != 4 || c.StillDuration != 5*time.Second || c.StillFPS != 10 ||
		c.ReconnectMin != 500*time.Millisecond || c.ReconnectMax != 2*time.Second {
		t.Errorf("defaults = %+v, %v", c, err)
	}
}

func TestRedact(t *testing.T) {
	if got := redact("rtsp://admin:secret@10.0.0.2/s"); strings.Contains(got, "secret") || !strings.Contains(got, "admin") {
		t.Errorf("redact = %q", got)
	}
	if got := redact("http://cam/video.mjpg"); got != "http://cam/video.mjpg" {
		t.Errorf("redact changed a URL without credentials: %q", got)
	}
	_, err := Open(context.Background(), Config{Source: "rtsp://admin:secret@127.0.0.1:1/s", RequireOnline: true}, quietLog())
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("Open error %v: want one without the password", err)
	}
}
