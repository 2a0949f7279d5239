package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/registry"
)

var cameraName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Bounds of the values that reach OpenCV, an allocation or a timer. Each
// says why; `edgemo run --check` enforces them with the key's line.
const (
	// crop_size: the aligned face crop's side. The heads take 112..256
	// inputs; under 32 px there is no face left to read, and a crop is
	// allocated per face per frame (1024² BGR is 3 MiB; 100000 asked OpenCV
	// for 30 GB and aborted the daemon).
	MinCropSize, MaxCropSize = 32, 1024
	// crop_margin: context per side as a fraction of the face box; past 2
	// the face is under a fifth of the crop and the heads read background.
	MaxCropMargin = 2.0
	// detect_width: frames are downscaled to it for detection. Haar needs
	// twice its 30 px minimum face; past 4K the buffers grow and no more
	// faces are found.
	MinDetectWidth, MaxDetectWidth = 64, 3840
	// detect_every: frames between detections; past 300 (10 s at 30 fps)
	// tracks coast on prediction long after faces moved.
	MaxDetectEvery = 300
	// motion_threshold, motion_outside: fractions of the frame; at 1 or
	// above motion could never count.
	MaxMotionFraction = 0.99
	// fps (read cap) and window.fps (crops per second per track): above
	// 240 no camera delivers, and window.fps multiplies engine runs.
	MaxFPS, MaxWindowFPS = 240.0, 60.0
	// window.length: crops held per track before a tree.
	MaxWindowLength = 64
	// MaxWindowBytes bounds one track's window: length × crop_size² × 3
	// bytes (64 MiB: 21 crops of 1024², 64 of 577²).
	MaxWindowBytes = 64 << 20
	// read_timeout: under 100 ms a healthy stream's gaps count as loss; over
	// 10 min a dead camera goes unnoticed.
	MinReadTimeout, MaxReadTimeout = 100 * time.Millisecond, 10 * time.Minute
	// mqtt.queue_size: trees held while the broker is away; a tree is a few
	// KB, so 100000 is a few hundred MB at most.
	MaxQueueSize = 100_000
	// mqtt.stats_interval: a ticker; under 1 s it floods the broker, and
	// Go's ticker panics on a non-positive one.
	MinStatsInterval, MaxStatsInterval = time.Second, time.Hour
	// engine.threads: ONNX Runtime intra-op threads per session; each is an
	// OS thread with its own buffers, per camera.
	MaxThreads = 256
	// models.videmo_question_batch: VidEmo asks a handful of closed-set
	// questions; a batch is allocated per Run.
	MaxQuestionBatch = 32
	// attention.*: a cone or an offset past 90° turns "looking at the
	// screen" into "facing anywhere".
	MaxConeDegrees = 90.0
	// audience.period: the audience keeps each face sample of the period
	// (capped), and under 1 s no window fits in it.
	MinAudiencePeriod, MaxAudiencePeriod = time.Second, time.Hour
)

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func (c *Config) validate() error {
	var errs []error
	bad := func(key, f string, a ...any) { errs = append(errs, c.at(key, f, a...)) }
	between := func(key string, n, lo, hi int, why string) {
		if n < lo || n > hi {
			bad(key, "%d: must be between %d and %d (%s)", n, lo, hi, why)
		}
	}
	betweenF := func(key string, f, lo, hi float64, open bool, why string) {
		if !finite(f) || f < lo || f > hi || open && f == lo {
			rng := fmt.Sprintf("between %g and %g", lo, hi)
			if open {
				rng = fmt.Sprintf("above %g and at most %g", lo, hi)
			}
			bad(key, "%v: must be %s (%s)", f, rng, why)
		}
	}
	betweenD := func(key string, d Duration, lo, hi time.Duration, why string) {
		if v := time.Duration(d); v < lo || v > hi {
			bad(key, "%v: must be between %v and %v (%s)", v, lo, hi, why)
		}
	}

	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: use debug, info, warn or error", c.LogLevel)
	}
	if c.Engine.Heads != nil {
		for _, h := range *c.Engine.Heads {
			if err := registry.Heads.Check(h); err != nil {
				bad("engine.heads", "%v", err)
			}
		}
	}
	if c.Models.Precision != "" {
		if err := registry.Precisions.Check(c.Models.Precision); err != nil {
			bad("models.precision", "%v", err)
		}
	}
	for _, p := range c.Engine.Providers {
		if err := registry.Providers.Check(p); err != nil {
			bad("engine.providers", "%v", err)
		}
	}
	between("engine.threads", c.Engine.Threads, 1, MaxThreads, "ONNX Runtime threads per session; 1 suits the small fast head")
	if _, err := os.Stat(c.Models.VidEmo); c.Models.VidEmo != "" && err != nil {
		bad("models.videmo", "%q not found: export VidEmo (see README) or use models/videmo-tiny/videmo.manifest.json", c.Models.VidEmo)
	}
	between("models.videmo_question_batch", c.Models.VidEmoQuestionBatch, 0, MaxQuestionBatch, "0 or 1: one question per Run")
	if n := c.Models.VidEmoCaptionTokens; n < 0 || n > MaxCaptionTokens {
		bad("models.videmo_caption_tokens", "%d: must be between 0 (the manifest's max_new_tokens) and %d (VidEmo's own evaluation uses up to 2048)", n, MaxCaptionTokens)
	}
	if r := c.Models.VidEmoRemote; r.URL != "" {
		if u, err := url.Parse(r.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("models.videmo_remote.url", "%q: write it as http(s)://host:port/v1, the server's OpenAI base URL", r.URL)
		}
		if c.Models.VidEmo == "" {
			bad("models.videmo_remote.url", "set models.videmo to the served model's videmo.manifest.json too: its question plan, prompt and labels (the weights may be absent)")
		}
		if !c.Privacy.RemoteInference {
			bad("models.videmo_remote.url", "sends face crops to %s: set privacy.remote_inference: true to allow it, or remove models.videmo_remote", r.URL)
		}
		betweenD("models.videmo_remote.timeout", r.Timeout, 100*time.Millisecond, 10*time.Minute, "one request attempt")
		between("models.videmo_remote.max_in_flight", r.MaxInFlight, 1, 256, "requests to the server at once")
		between("models.videmo_remote.top_logprobs", r.TopLogprobs, 1, 1<<20, "the server must allow as many: vLLM --max-logprobs, edgemo serve --max-logprobs")
	}
	m := c.MQTT
	if q := *m.QoS; q < 0 || q > 2 {
		bad("mqtt.qos", "%d: use 0, 1 or 2", q)
	}
	if m.Broker != "" && !strings.Contains(m.Broker, "://") {
		bad("mqtt.broker", "%q: write it as a URL, e.g. tcp://192.168.1.10:1883 or ssl://broker:8883", m.Broker)
	}
	if strings.ContainsAny(m.TopicPrefix, "#+") || strings.HasSuffix(m.TopicPrefix, "/") {
		bad("mqtt.topic_prefix", "%q must not contain # or + or end in /", m.TopicPrefix)
	}
	between("mqtt.queue_size", m.QueueSize, 1, MaxQueueSize, "trees held in memory while the broker is away")
	betweenD("mqtt.stats_interval", m.StatsInterval, MinStatsInterval, MaxStatsInterval, "how often stats are published")
	if n := m.Embedded.MaxPacketSize; n < MinEmbeddedMaxPacket || n > MaxEmbeddedMaxPacket {
		bad("mqtt.embedded.max_packet_size", "%d: must be between %d and %d bytes", n, MinEmbeddedMaxPacket, MaxEmbeddedMaxPacket)
	}
	if n := m.Embedded.MaxRetained; n < 16 || n > MaxEmbeddedMaxRetained {
		bad("mqtt.embedded.max_retained", "%d: must be between 16 and %d", n, MaxEmbeddedMaxRetained)
	}
	if (m.Embedded.Username == "") != (m.Embedded.Password == "") {
		bad("mqtt.embedded.username", "set both mqtt.embedded.username and mqtt.embedded.password, or neither")
	}
	for key, addr := range map[string]string{"mqtt.embedded.listen": m.Embedded.Listen, "http.listen": c.HTTP.Listen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad(key, "%q is not host:port", addr)
		}
	}
	if c.Metrics.Listen != "off" {
		if _, _, err := net.SplitHostPort(c.Metrics.Listen); err != nil {
			bad("metrics.listen", "%q is not host:port (or off)", c.Metrics.Listen)
		}
	}
	if len(c.Cameras) == 0 {
		bad("cameras", "no camera configured: add one, e.g.\n  cameras:\n    door:\n      source: rtsp://192.168.1.20/stream1")
	}
	names := make([]string, 0, len(c.Cameras))
	for n := range c.Cameras {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		cam := c.Cameras[n]
		k := "cameras." + n
		if !cameraName.MatchString(n) {
			bad(k, "camera names may use letters, digits, - and _ only (they become MQTT topics)")
		}
		if cam.Source == "" {
			bad(k+".source", "missing: a file, /dev/videoN, rtsp:// or http:// URL, or a GStreamer pipeline")
		} else if kind, err := capture.Parse(cam.Source); err != nil {
			bad(k+".source", "%v", err)
		} else if kind == capture.KindFile || kind == capture.KindImage {
			if st, err := os.Stat(cam.Source); err != nil || st.IsDir() {
				bad(k+".source", "file %q not found (relative paths start in the directory edgemo runs in)", cam.Source)
			}
		}
		if err := registry.Detectors.Check(cam.Detector); err != nil {
			bad(k+".detector", "%v", err)
		}
		if err := registry.Deblocking.Check(cam.Deblock); err != nil {
			bad(k+".deblock", "%v", err)
		}
		if cam.FPS != 0 {
			betweenF(k+".fps", cam.FPS, 0, MaxFPS, true, "a cap on frames read; 0: the source's native rate")
		}
		between(k+".detect_every", cam.DetectEvery, 1, MaxDetectEvery, "run the detector every Nth frame")
		if cam.DetectEvery >= 1 && cam.DetectEvery <= MaxDetectEvery {
			between(k+".detect_max_every", cam.DetectMaxEvery, cam.DetectEvery, MaxDetectEvery, "the longest interval between full detections while faces are steady; at least detect_every")
		}
		between(k+".detect_region_every", cam.DetectRegionEvery, 1, MaxDetectEvery, "verify tracked faces in their regions on one frame in N between full detections (1: every frame)")
		betweenF(k+".motion_threshold", cam.MotionThreshold, 0, MaxMotionFraction, true, "the fraction of the frame that must change to wake the detector when no face is tracked")
		betweenF(k+".motion_outside", cam.MotionOutside, 0, MaxMotionFraction, true, "the fraction of the frame outside tracked faces that must change to force a full detection")
		between(k+".detect_width", cam.DetectWidth, MinDetectWidth, MaxDetectWidth, "frames are downscaled to this width for detection")
		between(k+".crop_size", cam.CropSize, MinCropSize, MaxCropSize, "the face crop's side in pixels, allocated per face; the heads take 112..256")
		betweenF(k+".crop_margin", cam.CropMargin, 0, MaxCropMargin, false, "context per side as a fraction of the face box; 0: the default 0.25")
		betweenD(k+".read_timeout", cam.ReadTimeout, MinReadTimeout, MaxReadTimeout, "above the longest gap the camera leaves between packets, e.g. 5s")
		w := cam.Window
		betweenF(k+".window.fps", w.FPS, 0, MaxWindowFPS, true, "crops per second kept per track")
		between(k+".window.length", w.Length, 1, MaxWindowLength, "crops per window, held per track")
		if w.Stride < 1 || w.Stride > w.Length {
			bad(k+".window.stride", "%d: must be between 1 and window.length (%d)", w.Stride, w.Length)
		}
		at := cam.Attention
		betweenF(k+".attention.yaw", at.Yaw, 0, MaxConeDegrees, true, "half-angle of the looking cone in degrees, left and right of yaw_offset")
		betweenF(k+".attention.pitch", at.Pitch, 0, MaxConeDegrees, true, "half-angle of the looking cone in degrees, above and below pitch_offset")
		betweenF(k+".attention.yaw_offset", at.YawOffset, -MaxConeDegrees, MaxConeDegrees, false, "head yaw of a face looking at the screen's centre")
		if at.PitchOffset != nil {
			betweenF(k+".attention.pitch_offset", *at.PitchOffset, -MaxConeDegrees, MaxConeDegrees, false, "head pitch of a face looking at the screen's centre; negative when the camera sits above the screen")
		}
		betweenD(k+".audience.period", cam.Audience.Period, MinAudiencePeriod, MaxAudiencePeriod, "the span the audience figures cover, e.g. 60s")
		if cam.LowLight != nil {
			betweenF(k+".low_light", *cam.LowLight, 0, 1, false, "scene brightness (mean luma) below which face confidences are lowered, e.g. 0.15; 0: never")
		}
		if b := windowBytes(cam); w.Length >= 1 && w.Length <= MaxWindowLength && cam.CropSize >= MinCropSize && cam.CropSize <= MaxCropSize && b > MaxWindowBytes {
			bad(k+".window.length", "%d crops of %d×%d px hold %d MiB per face: at most %d at this crop_size (lower crop_size or window.length)",
				w.Length, cam.CropSize, cam.CropSize, b>>20, MaxWindowBytes/(cam.CropSize*cam.CropSize*3))
		}
	}
	return errors.Join(errs...)
}

// windowBytes is what one track's full window of BGR crops holds.
func windowBytes(cam Camera) int { return cam.Window.Length * cam.CropSize * cam.CropSize * 3 }

// Errorf is an error about key in the form every config error has:
// "file:line: key: message" (the line of key, or of its closest parent).
func (c *Config) Errorf(key, format string, a ...any) error { return c.at(key, format, a...) }

// CameraNames returns the enabled cameras, sorted.
func (c *Config) CameraNames() []string {
	var names []string
	for n, cam := range c.Cameras {
		if On(cam.Enabled, true) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}
