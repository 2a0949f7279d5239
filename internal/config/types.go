package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole file.
type Config struct {
	LogLevel string            `yaml:"log_level"`
	Engine   EngineConfig      `yaml:"engine"`
	Models   ModelsConfig      `yaml:"models"`
	MQTT     MQTTConfig        `yaml:"mqtt"`
	WebRTC   WebRTCConfig      `yaml:"webrtc"`
	HTTP     HTTPConfig        `yaml:"http"`
	Metrics  MetricsConfig     `yaml:"metrics"`
	Privacy  PrivacyConfig     `yaml:"privacy"`
	Defaults Camera            `yaml:"defaults"`
	Cameras  map[string]Camera `yaml:"cameras"`

	path  string
	lines map[string]int // dotted key -> line, for errors found after parsing
}

// EngineConfig selects how ONNX Runtime runs.
type EngineConfig struct {
	Providers []string `yaml:"providers"` // in order; names and default: registry.Providers
	Threads   int      `yaml:"threads"`   // intra-op threads per session; default 1
	ORTLib    string   `yaml:"ort_lib"`   // default $EDGEMO_ORT_LIB, then deps/
	TensorRT  TensorRT `yaml:"tensorrt"`
	// Heads of the fast tier (registry.Heads); default all. OptionalHeads: a head whose model is broken is
	// disabled with a warning instead of stopping edgemo.
	Heads         *[]string `yaml:"heads"`
	OptionalHeads bool      `yaml:"optional_heads"`
}

// TensorRT tunes the TensorRT provider (Jetson, NVIDIA GPUs).
type TensorRT struct {
	FP16            *bool  `yaml:"fp16"`             // default true
	EngineCache     string `yaml:"engine_cache"`     // default $XDG_CACHE_HOME/edgemo/trt
	INT8Calibration string `yaml:"int8_calibration"` // calibration table; empty: no int8
}

// ModelsConfig names model manifests.
type ModelsConfig struct {
	Emotion string `yaml:"emotion"` // default models/emotion.manifest.json
	// Precision is a registry.Precisions name (default auto): whether the
	// emotion head, faceres and antispoof run their int8 variants.
	Precision string `yaml:"precision"`
	VidEmo    string `yaml:"videmo"`    // VidEmo manifest; set: the fast head plus VidEmo scheduled across tracks
	Tokenizer string `yaml:"tokenizer"` // VidEmo's tokenizer.json; default: beside its manifest
	// VidEmoQuestionBatch: VidEmo's closed-set questions per decoder Run
	// (default 1; more pays on a GPU: measure with `edgemo bench vlm`).
	VidEmoQuestionBatch int `yaml:"videmo_question_batch"`
	// VidEmoCaptionTokens: the caption's (rationale's) budget in new tokens;
	// 0: the manifest's max_new_tokens. Bounded by MaxCaptionTokens.
	VidEmoCaptionTokens int `yaml:"videmo_caption_tokens"`
	// VidEmoRemote, with a url, runs VidEmo on an OpenAI-compatible server
	// (vLLM, SGLang, `edgemo serve`) instead of here; models.videmo is then
	// the served model's manifest (its question plan; weights not needed),
	// and privacy.remote_inference must be true.
	VidEmoRemote VidEmoRemote `yaml:"videmo_remote"`
}

// VidEmoRemote is the remote VidEmo engine's server.
type VidEmoRemote struct {
	URL         string   `yaml:"url"`           // http(s)://host:port/v1; empty: VidEmo runs locally
	Model       string   `yaml:"model"`         // served model name; default: the manifest's name
	APIKey      string   `yaml:"api_key"`       // bearer token; default $EDGEMO_VIDEMO_API_KEY
	Timeout     Duration `yaml:"timeout"`       // per request attempt; default 30s
	MaxInFlight int      `yaml:"max_in_flight"` // requests at once; default 4
	// TopLogprobs: first-token logprobs asked per closed-set question
	// (default 20, vLLM's and OpenAI's limit); the option letters must be
	// among them to be read exactly.
	TopLogprobs int `yaml:"top_logprobs"`
}

// MaxCaptionTokens bounds models.videmo_caption_tokens: twice VidEmo's own
// evaluation budget (2048), so a typo cannot ask the VLM for a caption
// that would hold the GPU for minutes and grow the KV cache without bound.
const MaxCaptionTokens = 4096

// MQTTConfig is the MQTT sink: broker, topics, discovery, the outage queue.
type MQTTConfig struct {
	Enabled         *bool    `yaml:"enabled"` // default true
	Broker          string   `yaml:"broker"`  // tcp://host:1883, ssl://…; empty: the embedded broker
	Embedded        Embedded `yaml:"embedded"`
	TopicPrefix     string   `yaml:"topic_prefix"` // default edgemo
	ClientID        string   `yaml:"client_id"`    // default edgemo-<host>-<random>
	Username        string   `yaml:"username"`
	Password        string   `yaml:"password"`
	TLS             TLS      `yaml:"tls"`
	QoS             *int     `yaml:"qos"` // default 1
	HADiscovery     *bool    `yaml:"ha_discovery"`
	DiscoveryPrefix string   `yaml:"discovery_prefix"` // default homeassistant
	StatsInterval   Duration `yaml:"stats_interval"`   // default 10s
	QueueSize       int      `yaml:"queue_size"`       // trees held while the broker is away; default 1000
}

// Embedded is the built-in broker used when no broker is configured.
type Embedded struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:1883
	// Username and Password, when set, are required of every client (the
	// daemon's own uses them); unset, the broker takes anonymous clients
	// on its listener, so keep that listener on loopback.
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// MaxPacketSize bounds one MQTT packet, in bytes (default
	// DefaultEmbeddedMaxPacket): a tree is a few KB, a face JPEG tens.
	MaxPacketSize int `yaml:"max_packet_size"`
	// MaxRetained bounds the retained messages the broker keeps (default
	// DefaultEmbeddedMaxRetained): edgemo retains a handful per camera.
	MaxRetained int `yaml:"max_retained"`
}

// Embedded broker limits: defaults and bounds.
const (
	DefaultEmbeddedMaxPacket   = 256 << 10
	MinEmbeddedMaxPacket       = 4 << 10
	MaxEmbeddedMaxPacket       = 256 << 20 // MQTT's own limit is 256 MB
	DefaultEmbeddedMaxRetained = 1024
	MaxEmbeddedMaxRetained     = 1 << 20
)

// TLS for the MQTT connection.
type TLS struct {
	CA                 string `yaml:"ca"`
	Cert               string `yaml:"cert"`
	Key                string `yaml:"key"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// WebRTCConfig is the data-channel sink and its signalling.
type WebRTCConfig struct {
	Enabled    *bool    `yaml:"enabled"` // default true
	Token      string   `yaml:"token"`   // bearer token for signalling; empty: none
	ICEServers []string `yaml:"ice_servers"`
	Loopback   bool     `yaml:"loopback"` // loopback-only candidates (tests, single-machine kiosks)
}

// HTTPConfig is the dashboard and signalling listener.
type HTTPConfig struct {
	Listen    string `yaml:"listen"`    // default 127.0.0.1:8080
	Dashboard *bool  `yaml:"dashboard"` // default true
}

// MetricsConfig is the Prometheus/health listener, separate from HTTP.
type MetricsConfig struct {
	Listen string `yaml:"listen"` // default 127.0.0.1:9108; "off" disables
	Pprof  bool   `yaml:"pprof"`
}

// PrivacyConfig says what may leave the device beyond trees, track boxes
// and counts. Everything here is off by default.
type PrivacyConfig struct {
	// FaceImages publishes the JPEG of each tree's latest aligned face crop
	// (MQTT <prefix>/<camera>/<track_id>/face, the most salient face on
	// <prefix>/<camera>/face with a Home Assistant camera entity). False: no
	// face image is encoded, and none leaves the device.
	FaceImages bool `yaml:"face_images"`
	// RemoteInference lets models.videmo_remote send each VidEmo window's
	// face crops (PNG frames) to its server. False: the remote engine
	// refuses to start.
	RemoteInference bool `yaml:"remote_inference"`
}

// Camera is one camera's pipeline settings (also the shape of `defaults`).
type Camera struct {
	Source      string  `yaml:"source"`
	Enabled     *bool   `yaml:"enabled"`
	FPS         float64 `yaml:"fps"`      // cap on frames read; 0: native
	Realtime    *bool   `yaml:"realtime"` // files: pace at native rate (default true in the daemon)
	Loop        bool    `yaml:"loop"`     // files: start again at the end
	Detector    string  `yaml:"detector"` // a registry.Detectors name
	Cascade     string  `yaml:"cascade"`
	DetectEvery int     `yaml:"detect_every"` // bounds: validate.go
	DetectWidth int     `yaml:"detect_width"`
	CropSize    int     `yaml:"crop_size"`
	CropMargin  float64 `yaml:"crop_margin"`
	Window      Window  `yaml:"window"`

	// Adaptive detection and the motion gate (facetrack.ScheduleConfig).
	DetectAdaptive    *bool   `yaml:"detect_adaptive"`     // default true
	DetectMaxEvery    int     `yaml:"detect_max_every"`    // default 8
	DetectRegionEvery int     `yaml:"detect_region_every"` // default 2
	MotionGate        *bool   `yaml:"motion_gate"`         // default true
	MotionThreshold   float64 `yaml:"motion_threshold"`    // default 0.002
	MotionOutside     float64 `yaml:"motion_outside"`      // default 0.03

	// ReadTimeout (rtsp/http): a camera that sends nothing for this long,
	// even with its connection open, is declared lost and reconnected;
	// capture.Config.ReadTimeout. Default 5s.
	ReadTimeout Duration `yaml:"read_timeout"`
	// Deblock: which frames of an H.264/HEVC file or stream get the
	// decoder's loop filter, a registry.Deblocking name; capture.Config.Deblock.
	Deblock string `yaml:"deblock"`

	// Attention is the looking cone (engine/audience.Cone); Audience the
	// period of the audience figures.
	Attention Attention `yaml:"attention"`
	Audience  Audience  `yaml:"audience"`

	// LowLight is the scene brightness (mean luma, 0..1) below which the
	// face levels' confidences are lowered (engine/scene); default
	// scene.LowLight (0.15), 0 never (a pointer: 0 is a value).
	LowLight *float64 `yaml:"low_light"`
}

// Attention is the cone, in the face mesh's degrees, within which a face
// counts as looking at the camera or screen: a kiosk camera above or below
// its screen sets the offsets to the head pose of a face reading the
// screen's centre.
type Attention struct {
	Yaw         float64  `yaml:"yaw"`          // half-angle; default audience.DefaultYaw
	Pitch       float64  `yaml:"pitch"`        // half-angle; default audience.DefaultPitch
	YawOffset   float64  `yaml:"yaw_offset"`   // default 0
	PitchOffset *float64 `yaml:"pitch_offset"` // default audience.DefaultPitchOffset (0 is a valid offset, hence a pointer)
}

// Audience shapes the per-camera audience figures.
type Audience struct {
	Period Duration `yaml:"period"` // default audience.DefaultPeriod (60s)
}

// clone copies c deeply: yaml decodes into the targets of non-nil pointers,
// so cameras must not share the defaults' pointers.
func (c Camera) clone() Camera {
	if c.Enabled != nil {
		c.Enabled = boolp(*c.Enabled)
	}
	if c.Realtime != nil {
		c.Realtime = boolp(*c.Realtime)
	}
	if c.DetectAdaptive != nil {
		c.DetectAdaptive = boolp(*c.DetectAdaptive)
	}
	if c.MotionGate != nil {
		c.MotionGate = boolp(*c.MotionGate)
	}
	if c.Attention.PitchOffset != nil {
		v := *c.Attention.PitchOffset
		c.Attention.PitchOffset = &v
	}
	if c.LowLight != nil {
		v := *c.LowLight
		c.LowLight = &v
	}
	return c
}

// Window shapes the sliding windows.
type Window struct {
	FPS    float64 `yaml:"fps"`
	Length int     `yaml:"length"`
	Stride int     `yaml:"stride"`
}

// Duration accepts "10s", "1m30s".
type Duration time.Duration

func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (use e.g. 10s, 1m)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}
