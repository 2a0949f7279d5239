package daemon

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// Two daemons (topic_prefix site-a and site-b, so two Home Assistant node
// ids) publish to an edge mosquitto that bridges everything to a central
// mosquitto (real processes on loopback). A subscriber on the central
// broker (persistent QoS 1 session) receives every tree of both, counted
// against what each daemon produced, across a restart of the central end
// of the bridge (the edge broker queues for the bridge meanwhile); HA
// discovery on the central broker shows two devices.
func TestTwoDaemonsThroughABridge(t *testing.T) {
	persist := t.TempDir()
	central := mqtttest.StartMosquitto(t, "persistence true", "persistence_location "+persist+"/")
	edge := mqtttest.StartMosquitto(t,
		"connection central",
		"address "+central.Addr(),
		"topic # out 1",
		"cleansession false",
		"clientid edge-bridge",
		"restart_timeout 1",
		"keepalive_interval 5")
	no := false
	sub := mqtttest.Subscribe(t, central.URL(), mqtttest.SubOptions{ClientID: "central-sub", CleanSession: &no}, "+/+/+/tree", "homeassistant/#")

	site := func(prefix string) *running {
		cfg := daemonConfig(t, "  broker: "+edge.URL()+"\n  topic_prefix: "+prefix+"\n  queue_size: 2000", astronaut)
		r, _ := start(t, cfg)
		return r
	}
	a, b := site("site-a"), site("site-b")
	count := func(prefix string) int {
		n := 0
		for _, m := range sub.Messages("") {
			if strings.HasPrefix(m.Topic, prefix+"/") && strings.HasSuffix(m.Topic, "/tree") {
				n++
			}
		}
		return n
	}
	sub.Wait(60*time.Second, "trees of both sites on the central broker", func([]mqtttest.Message) bool { return count("site-a") >= 2 && count("site-b") >= 2 })

	central.Stop() // the bridge is down: the edge broker queues for it
	time.Sleep(3 * time.Second)
	central.Start()
	sub.Wait(30*time.Second, "trees after the bridge's restart", func([]mqtttest.Message) bool { return count("site-a") >= 4 && count("site-b") >= 4 })
	a.stop(t) // drain cameras and the MQTT queues
	b.stop(t)

	for _, s := range []struct {
		prefix string
		r      *running
	}{{"site-a", a}, {"site-b", b}} {
		produced := int(s.r.d.lastTrees("astro"))
		sub.Wait(20*time.Second, fmt.Sprintf("all %d trees of %s", produced, s.prefix), func([]mqtttest.Message) bool { return count(s.prefix) >= produced })
		seen := map[string]bool{}
		for _, m := range sub.Messages("") {
			if strings.HasPrefix(m.Topic, s.prefix+"/") && strings.HasSuffix(m.Topic, "/tree") {
				var tr tree.Tree
				if err := json.Unmarshal([]byte(m.Payload), &tr); err != nil {
					t.Fatal(err)
				}
				seen[tr.ID] = true
			}
		}
		if len(seen) != produced || produced == 0 {
			t.Errorf("%s: produced %d trees, %d distinct arrived at the central broker", s.prefix, produced, len(seen))
		}
		t.Logf("%s: %d of %d trees through the bridge across its restart", s.prefix, len(seen), produced)
	}

	devices := map[string]bool{}
	for _, m := range sub.Messages("") {
		if !strings.HasPrefix(m.Topic, "homeassistant/") || m.Payload == "" {
			continue
		}
		var d struct {
			Device struct {
				Identifiers []string `json:"identifiers"`
			} `json:"device"`
		}
		if json.Unmarshal([]byte(m.Payload), &d) == nil && len(d.Device.Identifiers) > 0 {
			devices[strings.Join(d.Device.Identifiers, ",")] = true
		}
	}
	if len(devices) != 2 {
		t.Errorf("HA discovery on the central broker shows %d devices (%v), want 2", len(devices), devices)
	}
}
