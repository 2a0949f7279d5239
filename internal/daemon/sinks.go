package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/publish/broker"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/webrtc"
	"github.com/edgemo/edgemo/web"
)

// mqttPart is the MQTT sink and, when no broker is configured, the embedded
// broker it talks to.
type mqttPart struct {
	sink   *mqtt.Sink
	broker *broker.Broker
}

// log is the daemon's: the broker and the sink name their own components.
func startMQTT(ctx context.Context, c config.MQTTConfig, priv config.PrivacyConfig, cameras []string, version string, stats func() any, log *slog.Logger) (*mqttPart, error) {
	p := &mqttPart{}
	url := c.Broker
	user, pass := c.Username, c.Password
	if url == "" {
		b, err := broker.StartWith(ctx, broker.Options{
			Listen:        c.Embedded.Listen,
			MaxPacketSize: c.Embedded.MaxPacketSize,
			MaxRetained:   c.Embedded.MaxRetained,
			Username:      c.Embedded.Username,
			Password:      c.Embedded.Password,
			Owned:         mqtt.OwnedTopics(c.TopicPrefix, c.DiscoveryPrefix, ""),
		}, log)
		if err != nil {
			return nil, err
		}
		user, pass = b.Owner() // the embedded login, or the in-process one that alone writes edgemo's topics
		p.broker = b
		url = "tcp://" + b.Addr()
		host, port, _ := net.SplitHostPort(b.Addr())
		log.Info("embedded MQTT broker (no mqtt.broker configured)", "component", "mqtt-broker", "listen", b.Addr(),
			"try", fmt.Sprintf("mosquitto_sub -h %s -p %s -t '%s/#' -v", host, port, c.TopicPrefix))
	}
	s, err := mqtt.New(mqtt.Config{
		Broker:          url,
		ClientID:        c.ClientID,
		TopicPrefix:     c.TopicPrefix,
		Username:        user,
		Password:        pass,
		TLS:             mqtt.TLS{CAFile: c.TLS.CA, CertFile: c.TLS.Cert, KeyFile: c.TLS.Key, InsecureSkipVerify: c.TLS.InsecureSkipVerify},
		QoS:             c.QoS,
		HADiscovery:     config.On(c.HADiscovery, true),
		DiscoveryPrefix: c.DiscoveryPrefix,
		Cameras:         cameras,
		StatsInterval:   time.Duration(c.StatsInterval),
		Stats:           stats,
		QueueSize:       c.QueueSize,
		Version:         version,
		FaceImages:      priv.FaceImages,
	}, log)
	if err != nil {
		p.close()
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		p.close()
		return nil, err
	}
	p.sink = s
	return p, nil
}

func (p *mqttPart) close() {
	if p == nil {
		return
	}
	if p.sink != nil {
		p.sink.Close() // publishes "stopped" while the broker is still up
	}
	if p.broker != nil {
		p.broker.Close()
	}
}

// rtcPart is the WebRTC sink; its signalling is served on the HTTP listener.
type rtcPart struct {
	sink *webrtc.Sink
}

func startWebRTC(c config.WebRTCConfig, log *slog.Logger) (*rtcPart, error) {
	s, err := webrtc.New(webrtc.Config{Token: c.Token, ICEServers: c.ICEServers, Loopback: c.Loopback}, log)
	if err != nil {
		return nil, err
	}
	return &rtcPart{sink: s}, nil
}

func (p *rtcPart) close() {
	if p != nil && p.sink != nil {
		p.sink.Close()
	}
}

// httpHandler serves the dashboard and WebRTC signalling (rtc, nil when
// WebRTC is off), behind the Host check while no token is set.
func httpHandler(c *config.Config, rtc *rtcPart) http.Handler {
	mux := http.NewServeMux()
	if rtc != nil {
		h := rtc.sink.Handler()
		mux.Handle(webrtc.Path, h)
		mux.Handle(webrtc.Path+"/", h)
	}
	if config.On(c.HTTP.Dashboard, true) {
		mux.Handle("/", web.Handler())
	}
	return hostGuard(c.HTTP.Listen, c.WebRTC.Token, mux)
}
