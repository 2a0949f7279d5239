package mqtt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	mochi "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/publish/broker"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

const wait = 10 * time.Second

// happyPath runs the common flow against any broker URL: availability,
// trees, track events, retained state on change only, stats, clean close.
func happyPath(t *testing.T, url string) {
	s, _ := newSink(t, mqtt.Config{
		Broker: url, Cameras: []string{"cam1"}, HADiscovery: true, Version: "1.2.3",
		StatsInterval: 50 * time.Millisecond,
		Stats:         func() any { return map[string]any{"fps": 12.5} },
	})
	waitConnected(t, s)

	// A subscriber that arrives after the sink sees it online (retained).
	late := mqtttest.Subscribe(t, url, mqtttest.SubOptions{}, "edgemo/available")
	m := late.WaitTopic(wait, "edgemo/available", nil)
	if m.Payload != "online" || !m.Retained {
		t.Fatalf("edgemo/available = %q retained=%v, want online retained", m.Payload, m.Retained)
	}

	sub := mqtttest.Subscribe(t, url, mqtttest.SubOptions{}, "edgemo/#")
	// A broker may send a new subscription's retained messages after its
	// SUBACK (mochi does): a status published in between would arrive twice,
	// live and retained. The retained "available" arriving means the
	// broker's retained pass for this subscription is over.
	sub.WaitTopic(wait, "edgemo/available", func(m mqtttest.Message) bool { return m.Retained })
	s.CameraStatus("cam1", publish.StatusOnline)
	s.Track(publish.TrackEvent{Type: "new", Camera: "cam1", TrackID: 7, Box: [4]float64{10, 20, 100, 100}, Score: 0.9, Time: time.Now()})
	for i := range 5 {
		if err := s.Publish(context.Background(), sampleTree("cam1", 7, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
	s.Track(publish.TrackEvent{Type: "end", Camera: "cam1", TrackID: 7, Time: time.Now()})
	ms := sub.Wait(wait, "5 trees and 2 track events", func(ms []mqtttest.Message) bool {
		return len(treeSeqs(t, ms)) == 5 && countTopic(ms, "edgemo/cam1/tracks") == 2
	})
	var order []string // trees and track events, in arrival order
	for _, m := range ms {
		switch {
		case strings.HasSuffix(m.Topic, "/tree"):
			if m.Topic != "edgemo/cam1/7/tree" {
				t.Errorf("tree on %s, want edgemo/cam1/7/tree", m.Topic)
			}
			if err := tree.ValidateJSON([]byte(m.Payload)); err != nil {
				t.Errorf("tree on %s: %v", m.Topic, err)
			}
			order = append(order, "tree"+strconv.FormatUint(treeSeq(t, m.Payload), 10))
		case m.Topic == "edgemo/cam1/tracks":
			var tm struct {
				Type  string `json:"type"`
				Track struct {
					Camera  string     `json:"camera"`
					TrackID int        `json:"track_id"`
					Box     [4]float64 `json:"box"`
				} `json:"track"`
			}
			if err := json.Unmarshal([]byte(m.Payload), &tm); err != nil {
				t.Fatalf("tracks payload: %v: %s", err, m.Payload)
			}
			if tm.Track.Camera != "cam1" || tm.Track.TrackID != 7 {
				t.Errorf("tracks payload %s", m.Payload)
			}
			order = append(order, tm.Type)
		}
	}
	if want := []string{"new", "tree0", "tree1", "tree2", "tree3", "tree4", "end"}; !slices.Equal(order, want) {
		t.Errorf("trees and track events arrived as %v, want %v (one queue, in order)", order, want)
	}

	// Status retained; emotion of the (ended) only track cleared to none.
	sub.WaitTopic(wait, "edgemo/cam1/status", func(m mqtttest.Message) bool { return m.Payload == "online" })
	sub.WaitTopic(wait, "edgemo/cam1/emotion", func(m mqtttest.Message) bool { return strings.Contains(m.Payload, `"label":"none"`) })

	// Faces: the same count twice is one message.
	s.Faces("cam1", 2)
	sub.WaitTopic(wait, "edgemo/cam1/faces", func(m mqtttest.Message) bool { return m.Payload == "2" })
	s.Faces("cam1", 2)
	s.Faces("cam1", 3)
	sub.WaitTopic(wait, "edgemo/cam1/faces", func(m mqtttest.Message) bool { return m.Payload == "3" })
	if got := payloads(sub.Messages("edgemo/cam1/faces")); !slices.Equal(got, []string{"2", "3"}) {
		t.Errorf("edgemo/cam1/faces got %q, want [2 3]: only changes are published", got)
	}
	if got := payloads(sub.Messages("edgemo/cam1/status")); len(got) != 1 {
		t.Errorf("edgemo/cam1/status got %q, want one message", got)
	}

	// Stats, periodic and JSON.
	st := sub.WaitTopic(wait, "edgemo/stats", nil)
	var stats map[string]any
	if err := json.Unmarshal([]byte(st.Payload), &stats); err != nil || stats["fps"] != 12.5 {
		t.Errorf("edgemo/stats = %s (%v), want {\"fps\":12.5}", st.Payload, err)
	}

	// Retained state for a newcomer.
	late2 := mqtttest.Subscribe(t, url, mqtttest.SubOptions{}, "edgemo/+/status", "edgemo/+/faces", "edgemo/+/emotion")
	late2.Wait(wait, "retained status, faces and emotion", func(ms []mqtttest.Message) bool {
		return hasRetained(ms, "edgemo/cam1/status", "online") && hasRetained(ms, "edgemo/cam1/faces", "3") &&
			hasRetained(ms, "edgemo/cam1/emotion", `{"track_id":null,"label":"none","confidence":0}`)
	})

	if s.Sent() != 7 || s.Dropped() != 0 || s.QueueLen() != 0 {
		t.Errorf("sent %d dropped %d queued %d, want 7 0 0", s.Sent(), s.Dropped(), s.QueueLen())
	}

	// Clean close: stopped, retained.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	late.WaitTopic(wait, "edgemo/available", func(m mqtttest.Message) bool { return m.Payload == "stopped" })
	after := mqtttest.Subscribe(t, url, mqtttest.SubOptions{}, "edgemo/available")
	if m := after.WaitTopic(wait, "edgemo/available", nil); m.Payload != "stopped" || !m.Retained {
		t.Fatalf("after Close, edgemo/available = %q retained=%v, want stopped retained", m.Payload, m.Retained)
	}
	if got := payloads(after.Messages("edgemo/available")); slices.Contains(got, "offline") {
		t.Errorf("a clean close must not trigger the last will: %q", got)
	}
	if err := s.Publish(context.Background(), sampleTree("cam1", 7, 9)); err == nil {
		t.Error("Publish after Close succeeded")
	}
}

func countTopic(ms []mqtttest.Message, topic string) int {
	n := 0
	for _, m := range ms {
		if m.Topic == topic {
			n++
		}
	}
	return n
}

func hasRetained(ms []mqtttest.Message, topic, payload string) bool {
	for _, m := range ms {
		if m.Topic == topic && m.Payload == payload && m.Retained {
			return true
		}
	}
	return false
}

func TestMosquittoHappyPath(t *testing.T) {
	happyPath(t, mqtttest.StartMosquitto(t).URL())
}

func TestEmbeddedBrokerHappyPath(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b, err := broker.Start(ctx, "127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	happyPath(t, b.URL())
}

// audienceSensors: each audience sensor's template and unit.
var audienceSensors = map[string]struct{ template, unit any }{
	"visitors":  {"{{ value_json.visitors }}", "visitors"},
	"attention": {"{{ ((value_json.attention_share | float(0)) * 100) | round(0) }}", "%"},
	"dwell":     {"{{ value_json.dwell_mean_s }}", "s"},
	"mood":      {"{{ value_json.mood if value_json.mood else 'none' }}", nil},
}

func TestHomeAssistantDiscovery(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	s, _ := newSink(t, mqtt.Config{
		Broker: mq.URL(), TopicPrefix: "edgemo-lab", Cameras: []string{"door", "desk"},
		HADiscovery: true, Version: "0.3.0",
	})
	waitConnected(t, s)
	s.CameraStatus("door", publish.StatusOnline)
	s.CameraStatus("desk", publish.StatusReconnecting)
	s.Faces("door", 1)
	s.Faces("desk", 0)
	share, val := 0.75, 0.2
	s.Audience(audience.Audience{Camera: "door", PeriodS: 60, Faces: 1, Visitors: 3, DwellMeanS: 12.5, DwellP90S: 20, AttentionShare: &share,
		EmotionMix: map[string]float64{"happiness": 0.6, "neutral": 0.4}, Mood: "happiness", ValenceMean: &val, Trees: 10})
	s.Audience(audience.Audience{Camera: "desk", PeriodS: 60, EmotionMix: map[string]float64{}})
	for _, cam := range []string{"door", "desk"} {
		if err := s.Publish(context.Background(), sampleTree(cam, 1, 0)); err != nil {
			t.Fatal(err)
		}
	}

	done := func(ms []mqtttest.Message) bool {
		n := 0
		for _, m := range ms {
			if strings.HasPrefix(m.Topic, "homeassistant/") {
				n++
			}
		}
		return n >= 14 && countTopic(ms, "edgemo-lab/door/audience") > 0 && countTopic(ms, "edgemo-lab/desk/audience") > 0 && countTopic(ms, "edgemo-lab/door/emotion") > 0 && countTopic(ms, "edgemo-lab/desk/emotion") > 0 &&
			countTopic(ms, "edgemo-lab/desk/faces") > 0 && countTopic(ms, "edgemo-lab/desk/status") > 0
	}
	first := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "homeassistant/#", "edgemo-lab/#")
	first.Wait(wait, "14 discovery configs and the state", done)
	// Everything is on the broker now: a newcomer gets it all retained.
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "homeassistant/#", "edgemo-lab/#")
	ms := sub.Wait(wait, "14 retained discovery configs and retained state", done)
	retainedTopics := map[string]bool{}
	for _, m := range ms {
		if m.Retained && m.Payload != "" {
			retainedTopics[m.Topic] = true
		}
	}
	uniq := map[string]bool{}
	var objects []string
	for _, m := range ms {
		if !strings.HasPrefix(m.Topic, "homeassistant/") {
			continue
		}
		if !m.Retained {
			t.Errorf("%s is not retained", m.Topic)
		}
		parts := strings.Split(m.Topic, "/")
		if len(parts) != 5 || parts[1] != "sensor" || parts[2] != "edgemo-lab" || parts[4] != "config" {
			t.Errorf("discovery topic %s, want homeassistant/sensor/<node>/<object>/config", m.Topic)
			continue
		}
		objects = append(objects, parts[3])
		var c map[string]any
		if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		for _, k := range []string{"name", "unique_id", "state_topic", "availability_topic", "payload_available", "payload_not_available", "device"} {
			if c[k] == nil || c[k] == "" {
				t.Errorf("%s lacks %q: %s", m.Topic, k, m.Payload)
			}
		}
		if c["availability_topic"] != "edgemo-lab/available" || c["payload_available"] != "online" || c["payload_not_available"] != "offline" {
			t.Errorf("%s availability: %v %v %v", m.Topic, c["availability_topic"], c["payload_available"], c["payload_not_available"])
		}
		if !retainedTopics[c["state_topic"].(string)] {
			t.Errorf("%s state_topic %v has no retained value: it must point at a topic edgemo publishes", m.Topic, c["state_topic"])
		}
		id := c["unique_id"].(string)
		if uniq[id] {
			t.Errorf("unique_id %s used twice", id)
		}
		uniq[id] = true
		dev, _ := c["device"].(map[string]any)
		for _, k := range []string{"identifiers", "name", "model", "sw_version"} {
			if dev[k] == nil {
				t.Errorf("%s device lacks %q", m.Topic, k)
			}
		}
		if dev["sw_version"] != "0.3.0" {
			t.Errorf("%s sw_version %v", m.Topic, dev["sw_version"])
		}
		if tpl, ok := audienceSensors[strings.TrimPrefix(strings.TrimPrefix(parts[3], "door_"), "desk_")]; ok {
			cam := strings.SplitN(parts[3], "_", 2)[0]
			if c["state_topic"] != "edgemo-lab/"+cam+"/audience" || c["value_template"] != tpl.template || c["unit_of_measurement"] != tpl.unit {
				t.Errorf("%s audience sensor: state_topic %v value_template %v unit %v", m.Topic, c["state_topic"], c["value_template"], c["unit_of_measurement"])
			}
		}
		if strings.HasSuffix(parts[3], "_emotion") {
			if c["value_template"] != "{{ value_json.label }}" || c["json_attributes_topic"] != c["state_topic"] {
				t.Errorf("%s emotion sensor: value_template %v json_attributes_topic %v", m.Topic, c["value_template"], c["json_attributes_topic"])
			}
		}
	}
	slices.Sort(objects)
	var want []string
	for _, cam := range []string{"desk", "door"} {
		for _, o := range []string{"attention", "dwell", "emotion", "faces", "mood", "status", "visitors"} {
			want = append(want, cam+"_"+o)
		}
	}
	if !slices.Equal(objects, want) {
		t.Errorf("discovery objects %v, want %v", objects, want)
	}
	// The sensors' templates read fields the audience payload has.
	var a map[string]any
	if err := json.Unmarshal([]byte(sub.Messages("edgemo-lab/door/audience")[0].Payload), &a); err != nil {
		t.Fatal(err)
	}
	if a["visitors"] != 3.0 || a["attention_share"] != 0.75 || a["dwell_mean_s"] != 12.5 || a["mood"] != "happiness" || a["emotion_mix"] == nil {
		t.Errorf("door audience %v", a)
	}
	var e mqtt.Emotion
	_ = json.Unmarshal([]byte(sub.Messages("edgemo-lab/door/emotion")[0].Payload), &e)
	if e.Label != "happiness" || e.TrackID == nil || *e.TrackID != 1 || e.Confidence != 0.78 {
		t.Errorf("door emotion %+v", e)
	}
}

func TestSalientEmotion(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	s, _ := newSink(t, mqtt.Config{Broker: mq.URL()})
	waitConnected(t, s)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/cam1/emotion")

	treeOf := func(track int, seq uint64, w, conf float64, label string) *tree.Tree {
		tr := sampleTree("cam1", track, seq)
		tr.Face.Box = [4]float64{0, 0, w, w}
		tr.Emotion.Label, tr.Emotion.Confidence = label, conf
		return tr
	}
	steps := 0
	step := func(want string, do func()) {
		t.Helper()
		do()
		steps++
		sub.Wait(wait, fmt.Sprintf("emotion message %d = %s", steps, want), func(ms []mqtttest.Message) bool {
			return len(ms) >= steps && ms[steps-1].Payload == want
		})
	}
	// 100² × 0.9 = 9000 beats nothing.
	step(`{"track_id":1,"label":"happiness","confidence":0.9}`, func() {
		_ = s.Publish(context.Background(), treeOf(1, 0, 100, 0.9, "happiness"))
	})
	// 200² × 0.5 = 20000 beats 9000.
	step(`{"track_id":2,"label":"sadness","confidence":0.5}`, func() {
		_ = s.Publish(context.Background(), treeOf(2, 0, 200, 0.5, "sadness"))
	})
	// The same tree again changes nothing; track 1 comes closer: 300² × 0.9 wins.
	step(`{"track_id":1,"label":"happiness","confidence":0.9}`, func() {
		_ = s.Publish(context.Background(), treeOf(2, 1, 200, 0.5, "sadness"))
		s.Track(publish.TrackEvent{Type: "update", Camera: "cam1", TrackID: 1, Box: [4]float64{0, 0, 300, 300}})
	})
	// Track 1 ends: back to track 2.
	step(`{"track_id":2,"label":"sadness","confidence":0.5}`, func() {
		s.Track(publish.TrackEvent{Type: "end", Camera: "cam1", TrackID: 1})
	})
	// Last track ends: none.
	step(`{"track_id":null,"label":"none","confidence":0}`, func() {
		s.Track(publish.TrackEvent{Type: "end", Camera: "cam1", TrackID: 2})
	})
	got := payloads(sub.Messages("edgemo/cam1/emotion"))
	want := []string{
		`{"track_id":1,"label":"happiness","confidence":0.9}`,
		`{"track_id":2,"label":"sadness","confidence":0.5}`,
		`{"track_id":1,"label":"happiness","confidence":0.9}`,
		`{"track_id":2,"label":"sadness","confidence":0.5}`,
		`{"track_id":null,"label":"none","confidence":0}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("emotion messages:\n%s\nwant (on change only):\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// Cutting the sink's connection abruptly makes the broker publish the last
// will; the sink reconnects and goes online again with its retained state.
func TestLastWillOnCutConnection(t *testing.T) {
	t.Run("mosquitto", func(t *testing.T) { lastWill(t, mqtttest.StartMosquitto(t).Addr()) })
	t.Run("embedded", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		b, err := broker.Start(ctx, "127.0.0.1:0", nil)
		if err != nil {
			t.Fatal(err)
		}
		lastWill(t, b.Addr())
	})
}

func lastWill(t *testing.T, addr string) {
	url := "tcp://" + addr
	px := mqtttest.StartProxy(t, addr)
	s, _ := newSink(t, mqtt.Config{Broker: px.URL(), Cameras: []string{"cam1"}})
	waitConnected(t, s)
	s.Faces("cam1", 4)
	sub := mqtttest.Subscribe(t, url, mqtttest.SubOptions{}, "edgemo/available", "edgemo/cam1/faces")
	sub.WaitTopic(wait, "edgemo/cam1/faces", func(m mqtttest.Message) bool { return m.Payload == "4" })

	px.SetDown(true)
	px.Cut()
	sub.WaitTopic(wait, "edgemo/available", func(m mqtttest.Message) bool { return m.Payload == "offline" })
	eventually(t, wait, "Connected() false", func() bool { return !s.Connected() })
	late := mqtttest.Subscribe(t, url, mqtttest.SubOptions{}, "edgemo/available")
	if m := late.WaitTopic(wait, "edgemo/available", nil); m.Payload != "offline" || !m.Retained {
		t.Fatalf("after the cut, edgemo/available = %q retained=%v, want offline (last will) retained", m.Payload, m.Retained)
	}

	// Wipe the retained face count, as a restarted broker would have lost it.
	if tok := sub.Client().Publish("edgemo/cam1/faces", 1, true, ""); !tok.WaitTimeout(wait) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	px.SetDown(false)
	late.WaitTopic(wait, "edgemo/available", func(m mqtttest.Message) bool { return m.Payload == "online" })
	sub.Wait(wait, "faces re-published after reconnect", func(ms []mqtttest.Message) bool {
		return countTopic(ms, "edgemo/cam1/faces") >= 3 && ms[len(ms)-1].Payload != "" // 4, "" (wipe), 4
	})
	got := payloads(sub.Messages("edgemo/available"))
	if want := []string{"online", "offline", "online"}; !slices.Equal(got[len(got)-3:], want) {
		t.Errorf("availability %q, want to end with %q", got, want)
	}
}

// publishSeq publishes trees seq from..to-1 on cam1 track 1.
func publishSeq(t *testing.T, s *mqtt.Sink, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if err := s.Publish(context.Background(), sampleTree("cam1", 1, uint64(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// A broker unreachable at start is not fatal: trees queue in order, the
// log says so, and all arrive once it is up. A cut mid-flush loses nothing:
// unacknowledged trees are sent again.
func TestUnreachableAtStartThenCutMidFlush(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	px := mqtttest.StartProxy(t, mq.Addr())
	px.SetDown(true)
	const n = 5000
	s, logs := newSink(t, mqtt.Config{Broker: px.URL(), QueueSize: n})
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree")

	start := time.Now()
	publishSeq(t, s, 0, n)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("publishing %d trees to an unreachable broker took %v: Publish must not block", n, d)
	}
	eventually(t, wait, "the unreachable warning", func() bool {
		return strings.Contains(logs.String(), "MQTT broker "+px.URL()+" unreachable") &&
			strings.Contains(logs.String(), fmt.Sprintf("trees are queued (max %d) until it comes back", n))
	})
	if s.Connected() || s.QueueLen() != n || s.LastError() == nil {
		t.Fatalf("connected %v queued %d last error %v, want false %d non-nil", s.Connected(), s.QueueLen(), s.LastError(), n)
	}

	px.SetDown(false)
	sub.Wait(wait, "the flush to start", func(ms []mqtttest.Message) bool { return len(ms) >= 300 })
	px.SetDown(true)
	px.Cut()
	queuedAtCut := s.QueueLen()
	if queuedAtCut == 0 {
		t.Fatal("the flush finished before the cut: nothing was tested (raise n)")
	}
	eventually(t, wait, "Connected() false", func() bool { return !s.Connected() })
	time.Sleep(100 * time.Millisecond)
	px.SetDown(false)

	ms := sub.Wait(wait, fmt.Sprintf("all %d trees", n), func(ms []mqtttest.Message) bool {
		u, _ := firstSeen(treeSeqs(t, ms))
		return len(u) == n
	})
	uniq, dups := firstSeen(treeSeqs(t, ms))
	for i, seq := range uniq {
		if seq != uint64(i) {
			t.Fatalf("tree %d arrived at position %d: order broken", seq, i)
		}
	}
	eventually(t, wait, "Sent() == n", func() bool { return s.Sent() == n })
	if s.Dropped() != 0 || s.QueueLen() != 0 {
		t.Errorf("dropped %d queued %d, want 0 0", s.Dropped(), s.QueueLen())
	}
	t.Logf("cut with %d of %d still queued; %d duplicates re-sent after the cut (at least once)", queuedAtCut, n, dups)
}

// SIGKILL mosquitto mid-stream, keep publishing, restart it on the same
// port: every tree the dead broker had not acknowledged arrives, in order.
func TestBrokerKilledMidStream(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	px := mqtttest.StartProxy(t, mq.Addr()) // holds the sink back until the subscriber is back
	s, _ := newSink(t, mqtt.Config{Broker: px.URL()})
	waitConnected(t, s)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree")

	const n, killAt, restartAt = 1500, 400, 1000 // outage holds 600 trees < queue size 1000
	seq := 0
	produce := func(to int) {
		for ; seq < to; seq++ {
			publishSeq(t, s, seq, seq+1)
			time.Sleep(500 * time.Microsecond)
		}
	}
	produce(killAt)
	px.SetDown(true)
	mq.Kill()
	eventually(t, wait, "Connected() false", func() bool { return !s.Connected() })
	sentAtKill := s.Sent()
	produce(restartAt)
	if q := s.QueueLen(); q < restartAt-killAt {
		t.Errorf("queued %d during the outage, want >= %d", q, restartAt-killAt)
	}
	mq.Start()
	sub.WaitSubscribed(2, wait)
	px.SetDown(false)
	produce(n)

	var uniq []uint64
	var dups int
	sub.Wait(wait, "every tree not acknowledged by the dead broker", func(ms []mqtttest.Message) bool {
		uniq, dups = firstSeen(treeSeqs(t, ms))
		return len(uniq) > 0 && uniq[len(uniq)-1] == n-1 && s.QueueLen() == 0
	})
	got := map[uint64]bool{}
	for i, q := range uniq {
		if i > 0 && q <= uniq[i-1] {
			t.Fatalf("tree %d arrived after %d: order broken", q, uniq[i-1])
		}
		got[q] = true
	}
	var lostByBroker []int
	for i := range n {
		if !got[uint64(i)] {
			if uint64(i) >= sentAtKill {
				t.Errorf("tree %d lost: the broker never acknowledged it (sent at kill %d), so the sink must resend it", i, sentAtKill)
			}
			lostByBroker = append(lostByBroker, i)
		}
	}
	if s.Dropped() != 0 {
		t.Errorf("dropped %d, want 0 (outage under the queue bound)", s.Dropped())
	}
	if s.Sent() != n {
		t.Errorf("Sent() = %d, want %d", s.Sent(), n)
	}
	t.Logf("received %d of %d, %d duplicates; lost inside the killed broker after it acknowledged them: %v", len(uniq), n, dups, lostByBroker)
}

// A small queue drops the oldest trees during an outage and counts them.
func TestQueueOverflowDropsOldest(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	px := mqtttest.StartProxy(t, mq.Addr())
	px.SetDown(true)
	s, logs := newSink(t, mqtt.Config{Broker: px.URL(), QueueSize: 100})
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/+/+/tree")
	publishSeq(t, s, 0, 250)
	if s.Dropped() != 150 || s.QueueLen() != 100 {
		t.Fatalf("dropped %d queued %d, want 150 100", s.Dropped(), s.QueueLen())
	}
	if !strings.Contains(logs.String(), "MQTT queue full") {
		t.Errorf("overflow not logged:\n%s", logs.String())
	}
	px.SetDown(false)
	sub.Wait(wait, "the 100 newest trees", func(ms []mqtttest.Message) bool { return len(ms) >= 100 })
	time.Sleep(100 * time.Millisecond)
	ms := sub.Messages("")
	seqs := treeSeqs(t, ms)
	if len(seqs) != 100 || seqs[0] != 150 || seqs[99] != 249 {
		t.Fatalf("received %d trees %v…, want exactly 150..249 (the oldest are the ones dropped)", len(seqs), seqs[:min(5, len(seqs))])
	}
	for i, q := range seqs {
		if q != uint64(150+i) {
			t.Fatalf("position %d holds tree %d, want %d", i, q, 150+i)
		}
	}
	if s.Sent() != 100 || s.Dropped() != 150 {
		t.Errorf("sent %d dropped %d, want 100 150", s.Sent(), s.Dropped())
	}
}

// Close while the broker is away: the queued trees are counted as dropped,
// and Close returns promptly.
func TestCloseWhileUnreachable(t *testing.T) {
	port := mqtttest.FreePort(t)
	s, logs := newSink(t, mqtt.Config{Broker: fmt.Sprintf("tcp://127.0.0.1:%d", port)})
	publishSeq(t, s, 0, 10)
	eventually(t, wait, "a failed attempt", func() bool { return s.LastError() != nil })
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v while unreachable", d)
	}
	if s.Dropped() != 10 || s.QueueLen() != 0 {
		t.Errorf("dropped %d queued %d, want 10 0", s.Dropped(), s.QueueLen())
	}
	if !strings.Contains(logs.String(), "dropped=10") {
		t.Errorf("the loss at close is not logged:\n%s", logs.String())
	}
}

// Trees arrive in order at every QoS, and over WebSockets.
func TestQoSLevelsAndWebSockets(t *testing.T) {
	// Unlimited in-flight towards the subscriber: with the default 20,
	// mosquitto 2.0.11 stalls QoS 2 deliveries to it (the sink had all 200
	// PUBCOMPs; only the subscriber side stalled).
	mq := mqtttest.StartMosquitto(t, "max_inflight_messages 0")
	for _, qos := range []int{0, 1, 2} {
		t.Run(fmt.Sprintf("qos%d", qos), func(t *testing.T) {
			prefix := fmt.Sprintf("edgemo-q%d", qos)
			sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, prefix+"/+/+/tree")
			s, _ := newSink(t, mqtt.Config{Broker: mq.URL(), TopicPrefix: prefix, QoS: intp(qos)})
			waitConnected(t, s)
			publishSeq(t, s, 0, 200)
			ms := sub.Wait(wait, "200 trees", func(ms []mqtttest.Message) bool { return len(ms) >= 200 })
			if seqs := treeSeqs(t, ms); !slices.IsSorted(seqs) || len(seqs) != 200 {
				t.Fatalf("got %d trees, sorted=%v", len(seqs), slices.IsSorted(seqs))
			}
			eventually(t, wait, "Sent() == 200", func() bool { return s.Sent() == 200 })
		})
	}
	t.Run("ws", func(t *testing.T) {
		// Debian's mosquitto 2.0.11 cannot open a websockets listener here
		// ("Unable to start any listening sockets"): use mochi's.
		srv := mochi.New(&mochi.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		_ = srv.AddHook(new(auth.AllowHook), nil)
		addr := fmt.Sprintf("127.0.0.1:%d", mqtttest.FreePort(t))
		if err := srv.AddListener(listeners.NewWebsocket(listeners.Config{ID: "ws", Address: addr})); err != nil {
			t.Fatal(err)
		}
		if err := srv.Serve(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.Close() })
		url := "ws://" + addr
		s, _ := newSink(t, mqtt.Config{Broker: url})
		waitConnected(t, s)
		sub := mqtttest.Subscribe(t, url, mqtttest.SubOptions{}, "edgemo/#")
		publishSeq(t, s, 0, 10)
		sub.Wait(wait, "10 trees over WebSockets", func(ms []mqtttest.Message) bool { return len(treeSeqs(t, ms)) == 10 })
	})
}
