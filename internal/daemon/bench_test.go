package daemon

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// BenchmarkCaptureToMQTT runs edgemo on the sample video, paced like a live
// camera, against a real mosquitto, and measures at a subscriber the time
// from the capture of a window's last frame to its tree arriving:
//
//	go test -tags matprofile -run '^$' -bench CaptureToMQTT -benchtime 1x ./internal/daemon/
func BenchmarkCaptureToMQTT(b *testing.B) {
	for i := 0; i < b.N; i++ {
		lat := captureToMQTT(b)
		sort.Float64s(lat)
		q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		b.ReportMetric(q(0.5), "p50-ms")
		b.ReportMetric(q(0.95), "p95-ms")
		b.ReportMetric(float64(len(lat)), "trees")
	}
}

func captureToMQTT(b *testing.B) []float64 {
	mq := mqtttest.StartMosquitto(b)
	r, _ := start(b, daemonConfig(b, "  broker: "+mq.URL(), "  sample:\n    source: deps/media/Megamind.avi\n"))
	sub := mqtttest.Subscribe(b, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree", "edgemo/sample/status")
	// The sample plays for 11 s; the camera goes offline when it ends.
	sub.WaitTopic(40*time.Second, "edgemo/sample/status", func(m mqtttest.Message) bool { return m.Payload == "offline" })
	time.Sleep(500 * time.Millisecond)
	var lat []float64
	for _, m := range sub.Messages("") {
		if !strings.HasSuffix(m.Topic, "/tree") {
			continue
		}
		var tr tree.Tree
		if err := json.Unmarshal([]byte(m.Payload), &tr); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, float64(m.At.Sub(time.Time(tr.Window.End)).Microseconds())/1000)
	}
	r.stop(b)
	if len(lat) == 0 {
		b.Fatal("no tree received")
	}
	return lat
}
