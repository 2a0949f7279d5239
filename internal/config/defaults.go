package config

import (
	"os"
	"path/filepath"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/scene"
)

// Camera defaults the pipeline and detector would otherwise fill in; the
// config fills them itself so --check bounds the values that are used.
const (
	DefaultCropSize    = 192  // facemesh's input: no resampling for the mesh
	DefaultCropMargin  = 0.25 // context around the face box, per side
	DefaultDetectWidth = 640  // the Haar detector's downscale width
	// Adaptive detection: full-frame detection at most every 8th frame
	// (0.32 s at 25 fps) while faces are steady.
	DefaultDetectMaxEvery = 8
	// Between full detections, faces are verified in their regions on one
	// frame in 2, the tracker predicting the other.
	DefaultDetectRegionEvery = 2
	// Motion gate: 0.2% of an 80-column grid (8 cells of 80×45, a 64×64 px
	// patch of a 720p frame) changed since the last detection wakes the detector.
	DefaultMotionThreshold = 0.002
	// With faces tracked, 3% of the frame outside them changing forces a
	// full detection before the interval is up.
	DefaultMotionOutside = 0.03
)

func boolp(b bool) *bool { return &b }

// On reports a *bool with its default.
func On(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

func (c *Config) applyDefaults() {
	if c.LogLevel == "" {
		c.LogLevel = "info"
	}
	if len(c.Engine.Providers) == 0 {
		c.Engine.Providers = registry.Providers.Defaults()
	}
	if c.Engine.Threads == 0 {
		c.Engine.Threads = 1
	}
	if c.Engine.TensorRT.FP16 == nil {
		c.Engine.TensorRT.FP16 = boolp(true)
	}
	if c.Engine.TensorRT.EngineCache == "" {
		if dir, err := os.UserCacheDir(); err == nil {
			c.Engine.TensorRT.EngineCache = filepath.Join(dir, "edgemo", "trt")
		}
	}
	m := &c.MQTT
	if m.Embedded.Listen == "" {
		m.Embedded.Listen = "127.0.0.1:1883"
	}
	if m.Embedded.MaxPacketSize == 0 {
		m.Embedded.MaxPacketSize = DefaultEmbeddedMaxPacket
	}
	if m.Embedded.MaxRetained == 0 {
		m.Embedded.MaxRetained = DefaultEmbeddedMaxRetained
	}
	if m.TopicPrefix == "" {
		m.TopicPrefix = "edgemo"
	}
	if m.QoS == nil {
		q := 1
		m.QoS = &q
	}
	if m.DiscoveryPrefix == "" {
		m.DiscoveryPrefix = "homeassistant"
	}
	{
		r := &c.Models.VidEmoRemote
		if r.Timeout == 0 {
			r.Timeout = Duration(30 * time.Second)
		}
		if r.MaxInFlight == 0 {
			r.MaxInFlight = 4
		}
		if r.TopLogprobs == 0 {
			r.TopLogprobs = 20
		}
		if r.APIKey == "" {
			r.APIKey = os.Getenv("EDGEMO_VIDEMO_API_KEY")
		}
	}
	if m.StatsInterval == 0 {
		m.StatsInterval = Duration(10 * time.Second)
	}
	if m.QueueSize == 0 {
		m.QueueSize = 1000
	}
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = "127.0.0.1:8080"
	}
	if c.Metrics.Listen == "" {
		c.Metrics.Listen = "127.0.0.1:9108"
	}
	for name, cam := range c.Cameras {
		if cam.Detector == "" {
			cam.Detector = registry.Detectors.Default()
			if cam.Cascade != "" {
				cam.Detector = registry.DetectorHaar // naming a cascade asks for Haar
			}
		}
		if cam.Deblock == "" {
			cam.Deblock = registry.Deblocking.Default()
		}
		if cam.Realtime == nil {
			cam.Realtime = boolp(true) // a daemon follows the clock, even on files
		}
		if cam.CropSize == 0 {
			cam.CropSize = DefaultCropSize
		}
		if cam.CropMargin == 0 {
			cam.CropMargin = DefaultCropMargin
		}
		if cam.DetectWidth == 0 {
			cam.DetectWidth = DefaultDetectWidth
		}
		if cam.DetectEvery == 0 {
			cam.DetectEvery = 1
		}
		if cam.DetectAdaptive == nil {
			cam.DetectAdaptive = boolp(true)
		}
		if cam.DetectMaxEvery == 0 {
			cam.DetectMaxEvery = max(DefaultDetectMaxEvery, cam.DetectEvery)
		}
		if cam.DetectRegionEvery == 0 {
			cam.DetectRegionEvery = DefaultDetectRegionEvery
		}
		if cam.MotionGate == nil {
			cam.MotionGate = boolp(true)
		}
		if cam.MotionThreshold == 0 {
			cam.MotionThreshold = DefaultMotionThreshold
		}
		if cam.MotionOutside == 0 {
			cam.MotionOutside = DefaultMotionOutside
		}
		if cam.ReadTimeout == 0 {
			cam.ReadTimeout = Duration(capture.DefaultReadTimeout)
		}
		if cam.Window.FPS == 0 {
			cam.Window.FPS = 4
		}
		if cam.Window.Length == 0 {
			cam.Window.Length = 8
		}
		if cam.Window.Stride == 0 {
			cam.Window.Stride = max(1, cam.Window.Length/2)
		}
		if cam.Attention.Yaw == 0 {
			cam.Attention.Yaw = audience.DefaultYaw
		}
		if cam.Attention.Pitch == 0 {
			cam.Attention.Pitch = audience.DefaultPitch
		}
		if cam.Attention.PitchOffset == nil {
			v := float64(audience.DefaultPitchOffset)
			cam.Attention.PitchOffset = &v
		}
		if cam.Audience.Period == 0 {
			cam.Audience.Period = Duration(audience.DefaultPeriod)
		}
		if cam.LowLight == nil {
			v := scene.LowLight
			cam.LowLight = &v
		}
		c.Cameras[name] = cam
	}
}
