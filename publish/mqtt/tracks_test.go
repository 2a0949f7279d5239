package mqtt_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// trackEv is a track event of camera cam1 with x as the box's x, so a
// receiver can tell which update arrived.
func trackEv(typ string, id int, x float64) publish.TrackEvent {
	return publish.TrackEvent{Type: typ, Camera: "cam1", TrackID: id, Box: [4]float64{x, 10, 100, 100}, Score: 0.9, Time: time.Now()}
}

// tracksOf decodes the track messages among ms as "type:x".
func tracksOf(t *testing.T, ms []mqtttest.Message) []string {
	t.Helper()
	var out []string
	for _, m := range ms {
		if !strings.HasSuffix(m.Topic, "/tracks") {
			continue
		}
		var v struct {
			Type  string             `json:"type"`
			Track publish.TrackEvent `json:"track"`
		}
		if err := json.Unmarshal([]byte(m.Payload), &v); err != nil {
			t.Fatalf("track payload %q: %v", m.Payload, err)
		}
		out = append(out, fmt.Sprintf("%s:%g", v.Type, v.Track.Box[0]))
	}
	return out
}

// Per-frame updates are rate-limited per track: the latest held-back one is
// sent when the interval has passed, a lifecycle event supersedes a held-back
// one, and new/lost/end go out at once. Suppressed updates are counted.
func TestTrackUpdatesRateLimited(t *testing.T) {
	const interval = 300 * time.Millisecond
	mq := mqtttest.StartMosquitto(t)
	s, _ := newSink(t, mqtt.Config{Broker: mq.URL(), TrackUpdateInterval: interval})
	waitConnected(t, s)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/tracks")

	start := time.Now()
	s.Track(trackEv("new", 1, 0))
	for x := 1; x <= 10; x++ { // a burst within the interval: only the latest (x=10) is sent, after it
		s.Track(trackEv("update", 1, float64(x)))
	}
	if d := time.Since(start); d >= interval {
		t.Fatalf("the burst took %v, longer than the interval %v: raise it", d, interval)
	}
	m := sub.WaitTopic(wait, "edgemo/cam1/tracks", func(m mqtttest.Message) bool { return strings.Contains(m.Payload, `"type":"update"`) })
	if d := m.At.Sub(start); d < interval {
		t.Errorf("the held-back update arrived %v after new, before the interval %v", d, interval)
	}
	if got := tracksOf(t, sub.Messages("")); strings.Join(got, " ") != "new:0 update:10" {
		t.Fatalf("tracks %v, want [new:0 update:10] (the latest update wins)", got)
	}
	if n := s.TrackUpdatesSuppressed(); n != 9 {
		t.Errorf("suppressed %d, want 9", n)
	}

	time.Sleep(interval) // precondition, not an assertion: the next update is due at once
	s.Track(trackEv("update", 1, 11))
	for x := 12; x <= 15; x++ {
		s.Track(trackEv("update", 1, float64(x))) // held back, then superseded by lost
	}
	s.Track(trackEv("lost", 1, 16))
	s.Track(trackEv("end", 1, 16))
	s.Track(trackEv("new", 2, 20)) // another track is not limited by track 1
	s.Track(trackEv("update", 3, 30))
	want := "new:0 update:10 update:11 lost:16 end:16 new:20 update:30"
	sub.Wait(wait, want, func(ms []mqtttest.Message) bool { return len(tracksOf(t, ms)) >= 7 })
	time.Sleep(2 * interval) // nothing else may come: no held-back update of track 1 survives its end
	if got := strings.Join(tracksOf(t, sub.Messages("")), " "); got != want {
		t.Fatalf("tracks\n %s\nwant\n %s", got, want)
	}
	if n := s.TrackUpdatesSuppressed(); n != 9+4 {
		t.Errorf("suppressed %d, want 13", n)
	}
	eventually(t, wait, "all acknowledged", func() bool { return s.Sent() == 7 && s.QueueLen() == 0 })
}

// While the broker is away, track events hold at most a quarter of the
// queue (updates pushed out before lifecycle events), and trees may use all
// of it: no tree is dropped while any track event is queued.
func TestTreesNeverCrowdedOutByTracks(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	px := mqtttest.StartProxy(t, mq.Addr())
	px.SetDown(true)
	const size = 100 // track share: 25
	s, _ := newSink(t, mqtt.Config{Broker: px.URL(), QueueSize: size, TrackUpdateInterval: -1})
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree", "edgemo/+/tracks")

	publishSeq(t, s, 0, 10)
	s.Track(trackEv("new", 7, -1))
	for x := 0; x < 60; x++ {
		s.Track(trackEv("update", 7, float64(x)))
	}
	publishSeq(t, s, 10, 20)
	if q, d, td := s.QueueLen(), s.TrackEventsDropped(), s.TreesDropped(); q != 20+25 || d != 36 || td != 0 {
		t.Fatalf("queued %d, track events dropped %d, trees dropped %d; want 45 36 0", q, d, td)
	}
	px.SetDown(false)
	ms := sub.Wait(wait, "20 trees and 25 track events", func(ms []mqtttest.Message) bool { return len(ms) >= 45 })
	if seqs := treeSeqs(t, ms); len(seqs) != 20 || seqs[0] != 0 || seqs[19] != 19 {
		t.Fatalf("trees %v, want 0..19", seqs)
	}
	tr := tracksOf(t, ms)
	if len(tr) != 25 || tr[0] != "new:-1" || tr[1] != "update:36" || tr[24] != "update:59" {
		t.Fatalf("tracks %v, want new:-1 then update:36..59 (the oldest updates dropped, the lifecycle event kept)", tr)
	}
	eventually(t, wait, "all acknowledged", func() bool { return s.QueueLen() == 0 && s.Sent() == 45 })

	// Second outage: trees fill the whole queue, pushing every track event out.
	px.SetDown(true)
	px.Cut()
	eventually(t, wait, "Connected() false", func() bool { return !s.Connected() })
	for i := 20; i < 20+size; i++ {
		publishSeq(t, s, i, i+1)
		s.Track(trackEv("update", 7, float64(100+i)))
	}
	if q, td := s.QueueLen(), s.TreesDropped(); q != size || td != 0 {
		t.Fatalf("queued %d, trees dropped %d; want %d 0 (trees take the whole queue)", q, td, size)
	}
	publishSeq(t, s, 20+size, 21+size) // only now, with nothing but trees queued, the oldest tree goes
	if td, d := s.TreesDropped(), s.Dropped(); td != 1 || d != 36+size+1 {
		t.Fatalf("trees dropped %d, dropped %d; want 1 %d", td, d, 36+size+1)
	}
	px.SetDown(false)
	ms = sub.Wait(wait, "the second outage's trees", func(ms []mqtttest.Message) bool { return len(treeSeqs(t, ms)) >= 20+size })
	uniq, _ := firstSeen(treeSeqs(t, ms)[20:])
	if len(uniq) != size || uniq[0] != 21 || uniq[size-1] != 20+size {
		t.Fatalf("second outage delivered %d trees %v…, want 21..%d", len(uniq), uniq[:min(3, len(uniq))], 20+size)
	}
}

// Another client overwriting edgemo's retained topics (here on mosquitto,
// an external broker) gets edgemo's value back within a second.
func TestRetainedTopicsReasserted(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	s, logs := newSink(t, mqtt.Config{Broker: mq.URL(), Cameras: []string{"door"}, HADiscovery: true})
	s.CameraStatus("door", "online")
	waitConnected(t, s)
	disco := "homeassistant/sensor/edgemo/door_status/config"
	before := mqtttest.Retained(t, mq.URL(), "edgemo/#", "homeassistant/#")
	if before["edgemo/available"] != "online" || before["edgemo/door/status"] != "online" || before[disco] == "" {
		t.Fatalf("retained before: %v", before)
	}
	watch := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/#", "homeassistant/#")
	intruder := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{ClientID: "intruder"}, "unused")
	for _, w := range []struct{ topic, payload string }{
		{"edgemo/available", "offline"},
		{"edgemo/door/status", "offline"},
		{disco, `{"name":"hijacked"}`},
		{"edgemo/door/status", ""}, // a deletion is an overwrite too
	} {
		n := len(watch.Messages(w.topic))
		at := time.Now()
		if tok := intruder.Client().Publish(w.topic, 1, true, w.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("intruder publish: %v", tok.Error())
		}
		want := before[w.topic]
		watch.Wait(time.Second, fmt.Sprintf("%s back to %q after %q", w.topic, want, w.payload), func(ms []mqtttest.Message) bool {
			var on []mqtttest.Message
			for _, m := range ms {
				if m.Topic == w.topic {
					on = append(on, m)
				}
			}
			return len(on) >= n+2 && on[len(on)-1].Payload == want && on[len(on)-2].Payload == w.payload
		})
		t.Logf("%s restored %v after the overwrite", w.topic, time.Since(at).Round(time.Millisecond))
	}
	after := mqtttest.Retained(t, mq.URL(), "edgemo/#", "homeassistant/#")
	for topic, p := range before {
		if after[topic] != p {
			t.Errorf("retained %s = %q, want edgemo's %q", topic, after[topic], p)
		}
	}
	if n := s.Reasserted(); n != 4 {
		t.Errorf("Reasserted() = %d, want 4", n)
	}
	if !strings.Contains(logs.String(), "another client overwrote a retained edgemo topic") {
		t.Errorf("the overwrite is not logged:\n%s", logs.String())
	}
	_ = s.Close()
	if got := mqtttest.Retained(t, mq.URL(), "edgemo/#")["edgemo/available"]; got != mqtt.AvailableStopped {
		t.Errorf("after Close available = %q, want stopped (not re-asserted online)", got)
	}
}
