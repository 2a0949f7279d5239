package mqtt_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// camTopics are the retained topics the sink keeps for one camera with the
// default prefix and node id: three Home Assistant discovery configs and
// the camera's status, emotion and faces.
func camTopics(cam string) []string {
	return []string{
		"homeassistant/sensor/edgemo/" + cam + "_emotion/config",
		"homeassistant/sensor/edgemo/" + cam + "_faces/config",
		"homeassistant/sensor/edgemo/" + cam + "_status/config",
		"edgemo/" + cam + "/status",
		"edgemo/" + cam + "/emotion",
		"edgemo/" + cam + "/faces",
	}
}

// checkRetained fails unless the broker holds a non-empty retained value on
// every topic of present and none on any topic of the cameras in gone.
func checkRetained(t *testing.T, url, when string, present, gone []string) {
	t.Helper()
	got := mqtttest.Retained(t, url, "edgemo/#", "homeassistant/#")
	for _, cam := range present {
		for _, tp := range camTopics(cam) {
			if got[tp] == "" {
				t.Errorf("%s: %s has no retained value; camera %s must keep its entities", when, tp, cam)
			}
		}
	}
	for _, cam := range gone {
		for tp, p := range got {
			if isCam(cam)(tp) {
				t.Errorf("%s: removed camera %s still has %s retained: %.80s", when, cam, tp, p)
			}
		}
	}
}

// Removing a camera deletes its Home Assistant entities and clears its
// retained state on the broker, leaves the other cameras alone, is not
// undone by a reconnect, works while the broker is away, and a camera seen
// again afterwards is announced anew.
func TestCameraRemovedClearsRetained(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	px := mqtttest.StartProxy(t, mq.Addr())
	cams := []string{"door", "desk", "hall"}
	s, _ := newSink(t, mqtt.Config{Broker: px.URL(), Cameras: cams, HADiscovery: true})
	waitConnected(t, s)
	for _, cam := range cams {
		s.CameraStatus(cam, publish.StatusOnline)
		s.Faces(cam, 1)
		if err := s.Publish(context.Background(), sampleTree(cam, 1, 0)); err != nil {
			t.Fatal(err)
		}
	}
	live := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/#", "homeassistant/#")
	live.Wait(wait, "every camera's emotion", func(ms []mqtttest.Message) bool {
		for _, cam := range cams {
			if countTopic(ms, "edgemo/"+cam+"/emotion") == 0 {
				return false
			}
		}
		return true
	})
	checkRetained(t, mq.URL(), "before the removal", cams, nil)
	if t.Failed() {
		t.FailNow()
	}

	// Removal: an empty retained payload on each of desk's topics.
	s.CameraRemoved("desk")
	live.Wait(wait, "empty payloads on all of desk's topics", func(ms []mqtttest.Message) bool {
		for _, tp := range camTopics("desk") {
			if !hasPayload(ms, tp, "") {
				return false
			}
		}
		return true
	})
	checkRetained(t, mq.URL(), "after removing desk", []string{"door", "hall"}, []string{"desk"})
	// Once the broker has acknowledged the deletions, the sink forgets them.
	eventually(t, wait, "the sink to forget desk's topics", func() bool {
		return !slices.ContainsFunc(mqtt.RetainedTopics(s), isCam("desk"))
	})

	// A reconnect re-publishes the retained state (door's and hall's), and
	// nothing of desk: the sink forgot it once the broker had cleared it.
	n := len(live.Messages(""))
	px.Cut()
	ms := live.Wait(wait, "the sink online again after the cut", func(ms []mqtttest.Message) bool {
		for _, m := range ms[n:] {
			if m.Topic == "edgemo/available" && m.Payload == mqtt.AvailableOnline {
				return true
			}
		}
		return false
	})[n:]
	for _, tp := range camTopics("door") {
		if countTopic(ms, tp) == 0 {
			t.Errorf("after the reconnect %s was not published again: the test no longer sees the re-publish", tp)
		}
	}
	for _, m := range ms {
		if isCam("desk")(m.Topic) {
			t.Errorf("after the reconnect the sink published %s (%q) for the removed camera", m.Topic, m.Payload)
		}
	}

	// Removed while the broker is unreachable: cleared on the reconnect.
	px.SetDown(true)
	px.Cut()
	eventually(t, wait, "the sink to see the connection gone", func() bool { return !s.Connected() })
	s.CameraRemoved("hall")
	px.SetDown(false)
	waitConnected(t, s)
	checkRetained(t, mq.URL(), "after removing hall while disconnected", []string{"door"}, []string{"desk", "hall"})

	// A removed camera that reports again is announced anew.
	s.CameraStatus("desk", publish.StatusOnline)
	s.Faces("desk", 2)
	if err := s.Publish(context.Background(), sampleTree("desk", 7, 0)); err != nil {
		t.Fatal(err)
	}
	live.Wait(wait, "desk's emotion again", func(ms []mqtttest.Message) bool {
		for _, m := range ms[n:] {
			if m.Topic == "edgemo/desk/emotion" && m.Payload != "" {
				return true
			}
		}
		return false
	})
	checkRetained(t, mq.URL(), "after desk came back", []string{"door", "desk"}, []string{"hall"})
}

// isCam matches the topics of camera cam (discovery and state).
func isCam(cam string) func(topic string) bool {
	return func(tp string) bool {
		return strings.HasPrefix(tp, "homeassistant/sensor/edgemo/"+cam+"_") || strings.HasPrefix(tp, "edgemo/"+cam+"/")
	}
}

// hasPayload reports whether topic got payload (a live subscriber
// sees a retained publish with the retain flag off).
func hasPayload(ms []mqtttest.Message, topic, payload string) bool {
	for _, m := range ms {
		if m.Topic == topic && m.Payload == payload {
			return true
		}
	}
	return false
}
