package broker_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"

	"github.com/edgemo/edgemo/publish/broker"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

func TestPortInUseNamesPortAndFix(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	_, err := broker.Start(context.Background(), mq.Addr(), nil)
	if err == nil {
		t.Fatalf("embedded broker started on %s although mosquitto listens there", mq.Addr())
	}
	for _, want := range []string{mq.Addr(), "already in use", "another broker (mosquitto?)", "set mqtt.broker", "mqtt.embedded.listen"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestBadListenAddress(t *testing.T) {
	_, err := broker.Start(context.Background(), "1883", nil)
	if err == nil || !strings.Contains(err.Error(), "mqtt.embedded.listen") {
		t.Fatalf("err = %v, want a hint at mqtt.embedded.listen", err)
	}
}

// The broker serves real clients (retained messages, last wills) and stops
// with its context, freeing the port.
func TestServesClientsAndStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuf
	b, err := broker.Start(ctx, "127.0.0.1:0", slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want the bound port", b.Addr())
	}
	pub := mqtttest.Subscribe(t, b.URL(), mqtttest.SubOptions{ClientID: "pub"}, "unused")
	if tok := pub.Client().Publish("edgemo/available", 1, true, "online"); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	sub := mqtttest.Subscribe(t, b.URL(), mqtttest.SubOptions{ClientID: "sub"}, "edgemo/#")
	if m := sub.WaitTopic(5*time.Second, "edgemo/available", nil); m.Payload != "online" || !m.Retained {
		t.Fatalf("late subscriber got %q retained=%v, want online retained", m.Payload, m.Retained)
	}

	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", b.Addr())
		if err == nil {
			l.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s still held after the context ended: %v", b.Addr(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// mochi's info chatter and its warnings about clients that simply left
	// stay out of edgemo's log.
	out := logs.String()
	if strings.Contains(out, "mochi") || strings.Contains(out, "attached listener") || strings.Contains(out, "level=WARN") {
		t.Errorf("broker log has mochi noise:\n%s", out)
	}
	if !strings.Contains(out, "embedded MQTT broker listening") || !strings.Contains(out, "embedded MQTT broker stopped") {
		t.Errorf("broker log lacks start/stop lines:\n%s", out)
	}
}

type syncBuf = testenv.SyncBuffer
