package capture

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
)

// Kind is what a source string names. See Parse.
type Kind int

const (
	KindFile      Kind = iota + 1 // a video file, read through OpenCV's FFmpeg backend
	KindImage                     // a still image (.png .jpg .jpeg .bmp), emitted as a short clip
	KindDevice                    // a V4L2 camera: "/dev/videoN", another /dev path, or a bare index "0"
	KindRTSP                      // rtsp:// or rtsps:// (FFmpeg backend)
	KindHTTP                      // http:// or https:// (FFmpeg backend: MJPEG, HLS, progressive files)
	KindGStreamer                 // a GStreamer pipeline ending in appsink ("... ! appsink")
)

var kindNames = map[Kind]string{
	KindFile: "file", KindImage: "image", KindDevice: "device",
	KindRTSP: "rtsp", KindHTTP: "http", KindGStreamer: "gstreamer",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Live reports whether the source runs in wall-clock time: it never blocks
// on the consumer, drops the oldest queued frame when the consumer is slow,
// and reconnects when it fails. Files and images are not live (but see
// Config.Realtime).
func (k Kind) Live() bool {
	switch k {
	case KindDevice, KindRTSP, KindHTTP, KindGStreamer:
		return true
	}
	return false
}

var imageExts = map[string]bool{".png": true, ".jpg": true, ".jpeg": true, ".bmp": true}

// Parse classifies a source string without touching the file system or the
// network (Open does that). Rules, first match wins:
//
//	contains " ! "                 → KindGStreamer (must contain appsink)
//	rtsp:// rtsps://               → KindRTSP
//	http:// https://               → KindHTTP
//	any other scheme://            → error
//	a bare integer ≥ 0, /dev/...   → KindDevice
//	.png .jpg .jpeg .bmp (any case) → KindImage
//	anything else                  → KindFile
func Parse(source string) (Kind, error) {
	s := strings.TrimSpace(source)
	if s == "" {
		return 0, fmt.Errorf("capture: empty source: give a video file, an image, a camera (/dev/video0 or 0), an rtsp:// or http:// URL, or a GStreamer pipeline ending in appsink")
	}
	if strings.Contains(s, " ! ") {
		if !strings.Contains(s, "appsink") {
			return 0, fmt.Errorf("capture: GStreamer pipeline %q has no appsink: OpenCV reads frames from an appsink, so end it with `! videoconvert ! video/x-raw,format=BGR ! appsink`", s)
		}
		return KindGStreamer, nil
	}
	if i := strings.Index(s, "://"); i > 0 {
		switch strings.ToLower(s[:i]) {
		case "rtsp", "rtsps":
			return KindRTSP, nil
		case "http", "https":
			return KindHTTP, nil
		}
		return 0, fmt.Errorf("capture: source %q: unsupported scheme %q: use rtsp://, rtsps://, http:// or https://, or wrap other inputs in a GStreamer pipeline ending in appsink", s, s[:i])
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("capture: camera index %d is negative: use 0 for the first camera (/dev/video0)", n)
		}
		return KindDevice, nil
	}
	if strings.HasPrefix(s, "/dev/") {
		return KindDevice, nil
	}
	if imageExts[strings.ToLower(filepath.Ext(s))] {
		return KindImage, nil
	}
	return KindFile, nil
}

// deviceIndex returns N for "N" or "/dev/videoN"; ok is false for other
// device paths (such as /dev/v4l/by-id/...), which are opened by name.
func deviceIndex(s string) (int, bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "/dev/video")
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}
