package mqtt

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultTopicPrefix     = "edgemo"
	DefaultDiscoveryPrefix = "homeassistant"
	DefaultQoS             = 1
	DefaultQueueSize       = 1000
	DefaultStatsInterval   = 10 * time.Second
	DefaultConnectTimeout  = 5 * time.Second
	// DefaultMaxReconnect caps the reconnect backoff: a broker that comes
	// back is used again within about a second (one refused connection
	// attempt a second is cheap; 30 s used to cost that much in lost time).
	DefaultMaxReconnect = 1 * time.Second
	DefaultCloseTimeout = 2 * time.Second
	// DefaultTrackUpdateInterval is the minimum time between two "update"
	// track events of one track: the tracker emits one per frame (25/s),
	// which would otherwise fill the outage queue in seconds.
	DefaultTrackUpdateInterval = 1 * time.Second
)

// TrackShareDivisor: track events (all kinds) hold at most 1/TrackShareDivisor
// of QueueSize; trees may use the whole queue, pushing track events out
// (oldest updates first) when it is full.
const TrackShareDivisor = 4

// Environment variables read when Username / Password are empty.
const (
	EnvUsername = "EDGEMO_MQTT_USERNAME"
	EnvPassword = "EDGEMO_MQTT_PASSWORD"
)

// Config configures a Sink. Zero values take the defaults above.
type Config struct {
	// Broker is the broker URL: tcp://host:1883, ssl://host:8883 (also
	// tls://, mqtts://), ws://host:port/path or wss://…; mqtt:// means tcp://.
	// A missing port takes the scheme's usual one.
	Broker string
	// ClientID must be unique per broker; default edgemo-<hostname>-<random>.
	ClientID string
	// TopicPrefix starts every topic (docs/mqtt.md); default "edgemo".
	TopicPrefix string
	// Username and Password; when empty, EDGEMO_MQTT_USERNAME and
	// EDGEMO_MQTT_PASSWORD are used.
	Username, Password string
	TLS                TLS
	// QoS for trees and track events (0, 1 or 2); nil means 1. Availability
	// and retained state always use QoS 1; stats use QoS 0.
	QoS *int

	// HADiscovery publishes Home Assistant discovery configs on connect.
	HADiscovery bool
	// DiscoveryPrefix defaults to "homeassistant".
	DiscoveryPrefix string
	// NodeID names this instance in discovery topics and unique_ids; it must
	// be stable across restarts. Default: the topic prefix, with characters
	// outside [A-Za-z0-9_-] replaced by _.
	NodeID string
	// Cameras get discovery entities from the first connect; cameras first
	// seen later (status, trees, faces) get them when seen.
	Cameras []string
	// Version is the sw_version in the Home Assistant device block.
	Version string

	// FaceImages (privacy.face_images) lets FaceImage publish face JPEGs on
	// <prefix>/<camera>/<track_id>/face and <prefix>/<camera>/face, and
	// adds a Home Assistant camera entity per camera. False (the default):
	// FaceImage drops what it is given, and the camera entity of an earlier
	// run is deleted.
	FaceImages bool

	// StatsInterval between <prefix>/stats messages; default 10s, negative
	// disables them.
	StatsInterval time.Duration
	// Stats returns what <prefix>/stats carries (JSON-marshalled). Nil: the
	// sink's own counters, {"mqtt":{"connected":…,"queued":…,"sent":…,"dropped":…}}.
	Stats func() any

	// QueueSize bounds the trees and track events held while the broker is
	// away (or slower than the engine). Default 1000. Track events hold at
	// most QueueSize/TrackShareDivisor of it; a tree arriving at a full
	// queue pushes out the oldest track update (then the oldest other track
	// event), and only a queue of nothing but trees drops its oldest tree.
	// Every drop is counted.
	QueueSize int

	// TrackUpdateInterval is the minimum time between two "update" track
	// events of one track (default 1s; negative: every update is sent).
	// Updates in between are coalesced: the latest one is sent when the
	// interval has passed, or is superseded by the track's next lifecycle
	// event. "new", "lost" and "end" are always sent at once.
	TrackUpdateInterval time.Duration

	// ConnectTimeout per connection attempt (default 5s); MaxReconnectInterval
	// caps the exponential reconnect backoff (default 1s, so a broker that
	// returns is reached again within about a second); CloseTimeout is how
	// long Close keeps flushing the queue to a connected broker (default 2s).
	ConnectTimeout       time.Duration
	MaxReconnectInterval time.Duration
	CloseTimeout         time.Duration
}

// TLS files for ssl://, tls://, mqtts:// and wss:// brokers.
type TLS struct {
	CAFile             string // PEM CA bundle that signed the broker's certificate; empty: system roots
	CertFile, KeyFile  string // client certificate and key (PEM), both or neither
	InsecureSkipVerify bool   // do not verify the broker's certificate (testing only)
}

var nameRE = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// safeName makes s usable as one MQTT topic level and a discovery id.
func safeName(s string) string {
	if s == "" {
		return "_"
	}
	return nameRE.ReplaceAllString(s, "_")
}

// normalize applies defaults and validates c; it loads TLS files.
func (c *Config) normalize() (*tls.Config, error) {
	if c.Broker == "" {
		return nil, errors.New("mqtt: no broker URL: set mqtt.broker (e.g. tcp://192.168.1.10:1883) or leave it empty in the daemon config to use the embedded broker")
	}
	u, err := url.Parse(c.Broker)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("mqtt: broker %q is not a URL: write it as tcp://host:1883, ssl://host:8883 or ws://host:port/path", c.Broker)
	}
	secure := false
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		u.Scheme = "tcp"
		addPort(u, "1883")
	case "ssl", "tls", "mqtts":
		secure = true
		addPort(u, "8883")
	case "ws":
		addPort(u, "80")
	case "wss":
		secure = true
		addPort(u, "443")
	default:
		return nil, fmt.Errorf("mqtt: broker %q: scheme %q is not supported: use tcp://, ssl:// (tls://, mqtts://), ws:// or wss://", c.Broker, u.Scheme)
	}
	c.Broker = u.String()

	if c.TopicPrefix == "" {
		c.TopicPrefix = DefaultTopicPrefix
	}
	if strings.ContainsAny(c.TopicPrefix, "#+") || strings.HasSuffix(c.TopicPrefix, "/") || strings.HasPrefix(c.TopicPrefix, "/") {
		return nil, fmt.Errorf("mqtt: topic prefix %q must not contain # or + or start or end with / (set mqtt.topic_prefix)", c.TopicPrefix)
	}
	if c.DiscoveryPrefix == "" {
		c.DiscoveryPrefix = DefaultDiscoveryPrefix
	}
	if c.NodeID == "" {
		c.NodeID = safeName(c.TopicPrefix)
	} else if safeName(c.NodeID) != c.NodeID {
		return nil, fmt.Errorf("mqtt: node id %q may use letters, digits, - and _ only (Home Assistant discovery topics)", c.NodeID)
	}
	for _, cam := range c.Cameras {
		if cam == "" || safeName(cam) != cam {
			return nil, fmt.Errorf("mqtt: camera name %q may use letters, digits, - and _ only (it becomes an MQTT topic level)", cam)
		}
	}
	if c.ClientID == "" {
		c.ClientID = defaultClientID()
	}
	if c.QoS == nil {
		q := DefaultQoS
		c.QoS = &q
	}
	if *c.QoS < 0 || *c.QoS > 2 {
		return nil, fmt.Errorf("mqtt: qos %d: use 0, 1 or 2 (mqtt.qos)", *c.QoS)
	}
	if c.QueueSize < 0 {
		return nil, fmt.Errorf("mqtt: queue size %d must be >= 0 (mqtt.queue_size; 0 means %d)", c.QueueSize, DefaultQueueSize)
	}
	if c.QueueSize == 0 {
		c.QueueSize = DefaultQueueSize
	}
	if c.StatsInterval == 0 {
		c.StatsInterval = DefaultStatsInterval
	}
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
	if c.MaxReconnectInterval <= 0 {
		c.MaxReconnectInterval = DefaultMaxReconnect
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.TrackUpdateInterval == 0 {
		c.TrackUpdateInterval = DefaultTrackUpdateInterval
	}
	if c.Username == "" {
		c.Username = os.Getenv(EnvUsername)
	}
	if c.Password == "" {
		c.Password = os.Getenv(EnvPassword)
	}
	if c.Password != "" && c.Username == "" {
		return nil, fmt.Errorf("mqtt: broker %s: a password is set but no username: set mqtt.username or %s", c.Broker, EnvUsername)
	}

	tlsSet := c.TLS.CAFile != "" || c.TLS.CertFile != "" || c.TLS.KeyFile != "" || c.TLS.InsecureSkipVerify
	if !secure {
		if tlsSet {
			return nil, fmt.Errorf("mqtt: TLS files are set but broker %s is not encrypted: use ssl://host:8883 (or wss://) to connect with TLS, or remove mqtt.tls", c.Broker)
		}
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.TLS.InsecureSkipVerify} //nolint:gosec // opt-in, documented as testing only
	if c.TLS.CAFile != "" {
		pem, err := os.ReadFile(c.TLS.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: broker %s: read CA file: %w (set mqtt.tls.ca to the PEM CA certificate that signed the broker's)", c.Broker, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt: broker %s: CA file %s holds no PEM certificate (set mqtt.tls.ca to a PEM file with -----BEGIN CERTIFICATE-----)", c.Broker, c.TLS.CAFile)
		}
		tc.RootCAs = pool
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return nil, fmt.Errorf("mqtt: broker %s: client certificate needs both mqtt.tls.cert and mqtt.tls.key (got cert %q, key %q)", c.Broker, c.TLS.CertFile, c.TLS.KeyFile)
	}
	if c.TLS.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.TLS.CertFile, c.TLS.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt: broker %s: load client certificate %s / key %s: %w (both must be PEM and match)", c.Broker, c.TLS.CertFile, c.TLS.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func addPort(u *url.URL, port string) {
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), port)
	}
}

func defaultClientID() string {
	host, _ := os.Hostname()
	host = safeName(host)
	if len(host) > 32 {
		host = host[:32]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return "edgemo-" + host + "-" + hex.EncodeToString(b[:])
}

// OwnedTopics are the topic filters a sink with this prefix, discovery
// prefix and node id publishes on (defaults as in Config): every topic under
// the prefix, and its Home Assistant discovery configs. The embedded broker
// lets only edgemo's own client write them.
func OwnedTopics(topicPrefix, discoveryPrefix, nodeID string) []string {
	if topicPrefix == "" {
		topicPrefix = DefaultTopicPrefix
	}
	if discoveryPrefix == "" {
		discoveryPrefix = DefaultDiscoveryPrefix
	}
	if nodeID == "" {
		nodeID = safeName(topicPrefix)
	}
	return []string{topicPrefix + "/#", discoveryPrefix + "/+/" + nodeID + "/#"}
}
