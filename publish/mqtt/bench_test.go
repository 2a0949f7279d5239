package mqtt_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/cpuclock"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

const treesPerOp = 1000

func benchSink(b *testing.B, url string) *mqtt.Sink {
	b.Helper()
	s, err := mqtt.New(mqtt.Config{Broker: url, QueueSize: 10 * treesPerOp}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitConnected(ctx); err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkThroughput floods mosquitto with QoS 1 trees (~1 KB each) and
// waits for every PUBACK. trees/cpu-s is per core of this process (the
// broker runs in its own process and is not counted).
func BenchmarkThroughput(b *testing.B) {
	b.Run("mosquitto-default", func(b *testing.B) { throughput(b, mqtttest.StartMosquitto(b)) })
	b.Run("mosquitto-nodelay", func(b *testing.B) { throughput(b, mqtttest.StartMosquitto(b, "set_tcp_nodelay true")) })
}

func throughput(b *testing.B, mq *mqtttest.Mosquitto) {
	s := benchSink(b, mq.URL())
	b.ReportAllocs()
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuclock.Process()
	for i := range b.N {
		for j := range treesPerOp {
			if err := s.Publish(context.Background(), sampleTree("cam1", 1, uint64(i*treesPerOp+j))); err != nil {
				b.Fatal(err)
			}
		}
		for s.QueueLen() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	wall, cpu := time.Since(start), cpuclock.Process()-cpu0
	b.StopTimer()
	n := float64(b.N * treesPerOp)
	if s.Dropped() != 0 || s.Sent() != uint64(n) {
		b.Fatalf("sent %d dropped %d of %v", s.Sent(), s.Dropped(), n)
	}
	b.ReportMetric(n/wall.Seconds(), "trees/s")
	b.ReportMetric(n/cpu.Seconds(), "trees/cpu-s")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkLatency publishes 2000 trees/s (far above a camera's tree rate)
// and measures Publish -> subscriber receive through mosquitto.
func BenchmarkLatency(b *testing.B) {
	b.Run("mosquitto-default", func(b *testing.B) { latency(b, mqtttest.StartMosquitto(b)) })
	b.Run("mosquitto-nodelay", func(b *testing.B) { latency(b, mqtttest.StartMosquitto(b, "set_tcp_nodelay true")) })
}

func latency(b *testing.B, mq *mqtttest.Mosquitto) {
	s := benchSink(b, mq.URL())
	sub := mqtttest.Subscribe(b, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree")
	sent := make([]time.Time, b.N*treesPerOp)
	b.ResetTimer()
	tick := time.NewTicker(500 * time.Microsecond)
	defer tick.Stop()
	for i := range sent {
		<-tick.C
		sent[i] = time.Now()
		if err := s.Publish(context.Background(), sampleTree("cam1", 1, uint64(i))); err != nil {
			b.Fatal(err)
		}
	}
	ms := sub.Wait(wait, "every tree", func(ms []mqtttest.Message) bool { return len(ms) >= len(sent) })
	b.StopTimer()
	lat := make([]time.Duration, 0, len(sent))
	for _, m := range ms {
		lat = append(lat, m.At.Sub(sent[treeSeq(b, m.Payload)]))
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.95), "p95-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}
