// Package config loads edgemo's YAML configuration: global sections, camera
// defaults and a `cameras:` map whose entries override the defaults key by
// key. Errors name the file, the line and the key; ${ENV} references are
// substituted before parsing so secrets stay out of the file.
package config

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/edgemo/edgemo/capture"
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
	Providers []string `yaml:"providers"` // in order; default tensorrt, cuda, cpu
	Threads   int      `yaml:"threads"`   // intra-op threads per session; default 1
	ORTLib    string   `yaml:"ort_lib"`   // default $EDGEMO_ORT_LIB, then deps/
	TensorRT  TensorRT `yaml:"tensorrt"`
	// Heads of the fast tier: mesh (landmark cues, head pose), age-gender,
	// liveness; default all. OptionalHeads: a head whose model is broken is
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
	Emotion   string `yaml:"emotion"`   // default models/emotion.manifest.json
	VidEmo    string `yaml:"videmo"`    // VidEmo manifest; set: the fast head plus VidEmo scheduled across tracks
	Tokenizer string `yaml:"tokenizer"` // VidEmo's tokenizer.json; default: beside its manifest
	// VidEmoQuestionBatch: VidEmo's closed-set questions per decoder Run
	// (default 1; more pays on a GPU: measure with `edgemo bench vlm`).
	VidEmoQuestionBatch int `yaml:"videmo_question_batch"`
	// VidEmoCaptionTokens: the caption's (rationale's) budget in new tokens;
	// 0: the manifest's max_new_tokens. Bounded by MaxCaptionTokens.
	VidEmoCaptionTokens int `yaml:"videmo_caption_tokens"`
}

// MaxCaptionTokens bounds models.videmo_caption_tokens: twice VidEmo's own
// evaluation budget (2048), so a typo cannot ask the VLM for a caption
// that would hold the GPU for minutes and grow the KV cache without bound.
const MaxCaptionTokens = 4096

// MQTTConfig follows shared/design/mqtt.md.
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
}

// Camera is one camera's pipeline settings (also the shape of `defaults`).
type Camera struct {
	Source      string  `yaml:"source"`
	Enabled     *bool   `yaml:"enabled"`
	FPS         float64 `yaml:"fps"`      // cap on frames read; 0: native
	Realtime    *bool   `yaml:"realtime"` // files: pace at native rate (default true in the daemon)
	Loop        bool    `yaml:"loop"`     // files: start again at the end
	Detector    string  `yaml:"detector"` // blazeface-back (default), blazeface-front, haar
	Cascade     string  `yaml:"cascade"`
	DetectEvery int     `yaml:"detect_every"`
	DetectWidth int     `yaml:"detect_width"`
	CropSize    int     `yaml:"crop_size"`
	CropMargin  float64 `yaml:"crop_margin"`
	Window      Window  `yaml:"window"`

	// ReadTimeout (rtsp/http): a camera that sends nothing for this long,
	// even with its connection open, is declared lost and reconnected;
	// capture.Config.ReadTimeout. Default 5s.
	ReadTimeout Duration `yaml:"read_timeout"`
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

// Path is the file the config came from ("" for the embedded default).
func (c *Config) Path() string { return c.path }

//go:embed default.yaml
var defaultYAML []byte

// Example returns the embedded default configuration's text.
func Example() []byte { return bytes.Clone(defaultYAML) }

// Default is the embedded configuration `edgemo run` uses without a file:
// the bundled sample on a loop, the embedded broker, the dashboard.
func Default() (*Config, error) { return Parse("(embedded default)", defaultYAML) }

// Load reads and validates path.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// expandEnv substitutes ${VAR} and ${VAR:-default}; an unset VAR without a
// default is an error naming the line, so a missing secret is never sent as "".
func expandEnv(path string, b []byte) ([]byte, error) {
	var errs []error
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		if t := bytes.TrimSpace(line); bytes.HasPrefix(t, []byte("#")) {
			continue
		}
		lines[i] = envRef.ReplaceAllFunc(line, func(m []byte) []byte {
			sub := envRef.FindSubmatch(m)
			if v, ok := os.LookupEnv(string(sub[1])); ok {
				return []byte(v)
			}
			if len(sub[2]) > 0 {
				return sub[3]
			}
			errs = append(errs, fmt.Errorf("%s:%d: environment variable %s is not set (export it, or write ${%s:-default})", path, i+1, sub[1], sub[1]))
			return m
		})
	}
	return bytes.Join(lines, []byte("\n")), errors.Join(errs...)
}

// Parse parses and validates YAML text; name is used in errors.
func Parse(name string, b []byte) (*Config, error) {
	b, err := expandEnv(name, b)
	if err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, locate(name, "", errors.New(cleanYAMLErr(err)))
	}
	c := &Config{path: name, lines: map[string]int{}}
	if len(root.Content) == 0 {
		return nil, fmt.Errorf("%s: empty config: add at least a cameras: section (see edgemo.example.yaml)", name)
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: the config must be a mapping of sections (mqtt:, cameras:, …)", name, doc.Line)
	}
	indexLines(doc, "", c.lines)

	// Everything but cameras decodes strictly (unknown keys are errors).
	var camsNode *yaml.Node
	rest := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "cameras" {
			camsNode = doc.Content[i+1]
			continue
		}
		rest.Content = append(rest.Content, doc.Content[i], doc.Content[i+1])
	}
	if err := strictDecode(rest, c); err != nil {
		return nil, locate(name, "", err)
	}
	c.Cameras = map[string]Camera{}
	if camsNode != nil && camsNode.Kind != yaml.ScalarNode {
		if camsNode.Kind != yaml.MappingNode {
			return nil, fmt.Errorf("%s:%d: cameras must be a mapping of name: {source: …}", name, camsNode.Line)
		}
		for i := 0; i+1 < len(camsNode.Content); i += 2 {
			camName, node := camsNode.Content[i].Value, camsNode.Content[i+1]
			cam := c.Defaults.clone() // the camera's keys override the defaults'
			if err := strictDecode(node, &cam); err != nil {
				return nil, locate(name, "cameras."+camName, err)
			}
			c.Cameras[camName] = cam
		}
	}
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// strictDecode decodes n into v (keeping yaml's line numbers in type
// errors) and rejects keys v has no field for.
func strictDecode(n *yaml.Node, v any) error {
	if err := n.Decode(v); err != nil {
		return errors.New(cleanYAMLErr(err))
	}
	return checkKnown(n, reflect.TypeOf(v).Elem(), "")
}

// checkKnown reports the first key in n that t (a struct) has no yaml field
// for, with its line and the keys that are known.
func checkKnown(n *yaml.Node, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind != yaml.MappingNode || t.Kind() != reflect.Struct {
		return nil
	}
	fields := map[string]reflect.Type{}
	var known []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !f.IsExported() {
			continue
		}
		fields[tag] = f.Type
		known = append(known, tag)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		ft, ok := fields[k.Value]
		if !ok {
			sort.Strings(known)
			return fmt.Errorf("line %d: unknown key %q%s (known keys: %s)", k.Line, k.Value, inKey(prefix), strings.Join(known, ", "))
		}
		if ft.Kind() == reflect.Map {
			continue
		}
		if err := checkKnown(n.Content[i+1], ft, join(prefix, k.Value)); err != nil {
			return err
		}
	}
	return nil
}

func inKey(prefix string) string {
	if prefix == "" {
		return ""
	}
	return " in " + prefix
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "." + b
}

func indexLines(n *yaml.Node, prefix string, out map[string]int) {
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := join(prefix, n.Content[i].Value)
		out[k] = n.Content[i].Line
		indexLines(n.Content[i+1], k, out)
	}
}

var lineRef = regexp.MustCompile(`^line (\d+): `)

// locate turns "line N: msg" into "file:N: key: msg", the form every other
// config error has.
func locate(file, key string, err error) error {
	msg := err.Error()
	where := file
	if m := lineRef.FindStringSubmatch(msg); m != nil {
		where += ":" + m[1]
		msg = msg[len(m[0]):]
	}
	if key != "" {
		msg = key + ": " + msg
	}
	return fmt.Errorf("%s: %s", where, msg)
}

var yamlLine = regexp.MustCompile(`^yaml: (unmarshal errors:\n\s*)?`)

func cleanYAMLErr(err error) string {
	s := yamlLine.ReplaceAllString(err.Error(), "")
	return strings.TrimSpace(strings.ReplaceAll(s, "\n  ", "; "))
}

// at prefixes an error with file:line of key (or of its closest parent).
func (c *Config) at(key string, format string, a ...any) error {
	k := key
	for k != "" {
		if l, ok := c.lines[k]; ok {
			return fmt.Errorf("%s:%d: %s: %s", c.path, l, key, fmt.Sprintf(format, a...))
		}
		if i := strings.LastIndexByte(k, '.'); i >= 0 {
			k = k[:i]
		} else {
			k = ""
		}
	}
	return fmt.Errorf("%s: %s: %s", c.path, key, fmt.Sprintf(format, a...))
}

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
		c.Engine.Providers = []string{"tensorrt", "cuda", "cpu"}
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
			cam.Detector = "blazeface-back"
			if cam.Cascade != "" {
				cam.Detector = "haar" // naming a cascade asks for Haar
			}
		}
		if cam.Realtime == nil {
			cam.Realtime = boolp(true) // a daemon follows the clock, even on files
		}
		if cam.DetectEvery == 0 {
			cam.DetectEvery = 1
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
		c.Cameras[name] = cam
	}
}

var cameraName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func (c *Config) validate() error {
	var errs []error
	bad := func(key, f string, a ...any) { errs = append(errs, c.at(key, f, a...)) }

	switch strings.ToLower(c.LogLevel) {
	case "debug", "info", "warn", "error":
	default:
		bad("log_level", "%q: use debug, info, warn or error", c.LogLevel)
	}
	if c.Engine.Heads != nil {
		for _, h := range *c.Engine.Heads {
			switch h {
			case "mesh", "age-gender", "liveness":
			default:
				bad("engine.heads", "unknown head %q: use mesh, age-gender, liveness", h)
			}
		}
	}
	for _, p := range c.Engine.Providers {
		switch strings.ToLower(p) {
		case "tensorrt", "cuda", "cpu":
		default:
			bad("engine.providers", "unknown provider %q: use tensorrt, cuda or cpu", p)
		}
	}
	if _, err := os.Stat(c.Models.VidEmo); c.Models.VidEmo != "" && err != nil {
		bad("models.videmo", "%q not found: export VidEmo (see README) or use models/videmo-tiny/videmo.manifest.json", c.Models.VidEmo)
	}
	if c.Models.VidEmoQuestionBatch < 0 {
		bad("models.videmo_question_batch", "must be >= 0 (0 or 1: one question per Run)")
	}
	if n := c.Models.VidEmoCaptionTokens; n < 0 || n > MaxCaptionTokens {
		bad("models.videmo_caption_tokens", "%d: must be between 0 (the manifest's max_new_tokens) and %d (VidEmo's own evaluation uses up to 2048)", n, MaxCaptionTokens)
	}
	if c.Engine.Threads < 0 {
		bad("engine.threads", "must be >= 0")
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
	if m.QueueSize < 0 {
		bad("mqtt.queue_size", "must be >= 0")
	}
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
		switch cam.Detector {
		case "blazeface-back", "blazeface-front", "haar":
		default:
			bad(k+".detector", "%q: use blazeface-back (far and near faces), blazeface-front (near faces, kiosks) or haar", cam.Detector)
		}
		if cam.FPS < 0 {
			bad(k+".fps", "must be >= 0 (0: native rate)")
		}
		if cam.DetectEvery < 1 {
			bad(k+".detect_every", "must be >= 1")
		}
		if cam.ReadTimeout < 0 {
			bad(k+".read_timeout", "%v: must be > 0, e.g. 5s (above the longest gap the camera leaves between packets)", time.Duration(cam.ReadTimeout))
		}
		w := cam.Window
		if w.FPS <= 0 {
			bad(k+".window.fps", "must be > 0")
		}
		if w.Length < 1 {
			bad(k+".window.length", "must be >= 1")
		}
		if w.Stride < 1 || w.Stride > w.Length {
			bad(k+".window.stride", "%d: must be between 1 and window.length (%d)", w.Stride, w.Length)
		}
	}
	return errors.Join(errs...)
}

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
