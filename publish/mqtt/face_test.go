package mqtt_test

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/jpeg"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/publish"
	"github.com/edgemo/edgemo/publish/mqtt"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// testJPEG is a real w×h JPEG.
func testJPEG(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// With face images on, a track's image goes out on its own topic and, for
// the most salient face, on the camera's (the Home Assistant camera
// entity's), neither retained; the camera entity's discovery config points
// at the camera topic.
func TestFaceImagesOn(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	s, _ := newSink(t, mqtt.Config{Broker: mq.URL(), Cameras: []string{"door"}, HADiscovery: true, FaceImages: true, Version: "0.3.0"})
	waitConnected(t, s)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/#", "homeassistant/#")

	big, small := sampleTree("door", 1, 0), sampleTree("door", 2, 0)
	small.Face.Box = [4]float64{0, 0, 40, 40} // less salient than track 1
	img1, img2 := testJPEG(t, 64, 64), testJPEG(t, 32, 32)
	for _, p := range []struct {
		tr  *tree.Tree
		img []byte
	}{{big, img1}, {small, img2}} {
		if err := s.Publish(context.Background(), p.tr); err != nil {
			t.Fatal(err)
		}
		s.FaceImage("door", p.tr.TrackID, p.tr.ID, p.img)
	}
	ms := sub.Wait(wait, "both track images and the salient one", func(ms []mqtttest.Message) bool {
		return countTopic(ms, "edgemo/door/1/face") == 1 && countTopic(ms, "edgemo/door/2/face") == 1 && countTopic(ms, "edgemo/door/face") == 1
	})
	for _, m := range ms {
		if !strings.HasSuffix(m.Topic, "/face") {
			continue
		}
		if m.Retained {
			t.Errorf("%s is retained: images must not stay on the broker", m.Topic)
		}
		want := img1
		if m.Topic == "edgemo/door/2/face" {
			want = img2
		}
		if m.Payload != string(want) {
			t.Errorf("%s: payload is not the JPEG handed over (%d bytes, want %d)", m.Topic, len(m.Payload), len(want))
		}
	}
	if s.FacesSent() != 3 {
		t.Errorf("FacesSent = %d, want 3", s.FacesSent())
	}

	late := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/#", "homeassistant/camera/#")
	m := late.WaitTopic(wait, "homeassistant/camera/edgemo/door_face/config", func(m mqtttest.Message) bool { return m.Payload != "" })
	if !m.Retained {
		t.Errorf("camera discovery config not retained")
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(m.Payload), &c); err != nil {
		t.Fatalf("camera discovery config: %v: %s", err, m.Payload)
	}
	for k, v := range map[string]any{"topic": "edgemo/door/face", "unique_id": "edgemo_door_face", "name": "door face",
		"availability_topic": "edgemo/available", "payload_available": "online", "payload_not_available": "offline"} {
		if c[k] != v {
			t.Errorf("camera discovery %s = %v, want %v (%s)", k, c[k], v, m.Payload)
		}
	}
	if _, ok := c["image_encoding"]; ok {
		t.Errorf("camera discovery sets image_encoding, but the payload is raw JPEG: %s", m.Payload)
	}
	if dev, _ := c["device"].(map[string]any); dev["sw_version"] != "0.3.0" || dev["identifiers"] == nil {
		t.Errorf("camera discovery device block: %v", c["device"])
	}
	time.Sleep(200 * time.Millisecond) // anything retained has arrived by now
	for _, m := range late.Messages("") {
		if strings.HasSuffix(m.Topic, "/face") {
			t.Errorf("a late subscriber got an image on %s: images must not be retained", m.Topic)
		}
	}
}

// With face images off (the default), FaceImage sends nothing, and the
// camera entity an earlier run may have left is deleted.
func TestFaceImagesOffSendsNothing(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	// An earlier run with images on left its camera entity retained.
	on, _ := newSink(t, mqtt.Config{Broker: mq.URL(), ClientID: "earlier", Cameras: []string{"door"}, HADiscovery: true, FaceImages: true})
	waitConnected(t, on)
	eventually(t, wait, "the earlier run's camera entity", func() bool {
		return mqtttest.Retained(t, mq.URL(), "homeassistant/#")["homeassistant/camera/edgemo/door_face/config"] != ""
	})
	_ = on.Close()

	s, _ := newSink(t, mqtt.Config{Broker: mq.URL(), Cameras: []string{"door"}, HADiscovery: true})
	waitConnected(t, s)
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "#")
	if err := s.Publish(context.Background(), sampleTree("door", 1, 0)); err != nil {
		t.Fatal(err)
	}
	s.FaceImage("door", 1, "door-1-000000", testJPEG(t, 16, 16))
	s.CameraStatus("door", publish.StatusOnline)
	sub.WaitTopic(wait, "edgemo/door/status", func(m mqtttest.Message) bool { return m.Payload == "online" })
	sub.WaitTopic(wait, "edgemo/door/1/tree", func(mqtttest.Message) bool { return true })
	time.Sleep(200 * time.Millisecond)
	for _, m := range sub.Messages("") {
		if strings.HasSuffix(m.Topic, "/face") || strings.Contains(m.Payload, "\xff\xd8\xff") {
			t.Errorf("face images off, yet %s carried %d bytes", m.Topic, len(m.Payload))
		}
	}
	if s.FacesSent() != 0 {
		t.Errorf("FacesSent = %d with face images off", s.FacesSent())
	}
	eventually(t, wait, "the earlier camera entity deleted", func() bool {
		_, ok := mqtttest.Retained(t, mq.URL(), "homeassistant/#")["homeassistant/camera/edgemo/door_face/config"]
		return !ok
	})
}
