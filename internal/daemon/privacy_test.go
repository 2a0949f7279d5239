package daemon

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// imageMarkers are the signs of image data in a payload: JPEG and PNG
// signatures, raw and base64-encoded.
var imageMarkers = map[string]string{
	"JPEG":        "\xff\xd8\xff",
	"PNG":         "\x89PNG\r\n\x1a\n",
	"base64 JPEG": "/9j/",
	"base64 PNG":  "iVBOR",
}

// imageIn names the image marker found in b, or "".
func imageIn(b []byte) string {
	for name, m := range imageMarkers {
		if bytes.Contains(b, []byte(m)) {
			return name
		}
	}
	return ""
}

func countSuffix(ms []mqtttest.Message, suffix string) int {
	n := 0
	for _, m := range ms {
		if strings.HasSuffix(m.Topic, suffix) {
			n++
		}
	}
	return n
}

// Privacy: "no face image leaves the device unless the config says so".
// The daemon on the sample with the default privacy settings: everything a
// subscriber to # sees over several trees, and everything the dashboard's
// HTTP listener serves, carries no image data.
func TestNoFaceImageLeavesByDefault(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	r, _ := start(t, daemonConfig(t, "  broker: "+mq.URL(), astronaut))
	all := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "#")
	ms := all.Wait(30*time.Second, "6 trees and a stats message", func(ms []mqtttest.Message) bool {
		return countSuffix(ms, "/tree") >= 6 && countSuffix(ms, "edgemo/stats") >= 1
	})
	topics := map[string]int{}
	for _, m := range ms {
		topics[m.Topic]++
		if what := imageIn([]byte(m.Payload)); what != "" {
			t.Errorf("%s carries %s data (%d bytes) with privacy.face_images off", m.Topic, what, len(m.Payload))
		}
		if strings.HasSuffix(m.Topic, "/face") {
			t.Errorf("%s published with privacy.face_images off", m.Topic)
		}
	}
	t.Logf("%d messages on %d topics, none with an image: %v", len(ms), len(topics), topics)

	// The dashboard listener: the page, its assets, signalling.
	base := "http://" + r.d.HTTPAddr()
	for _, path := range []string{"/", "/index.html", "/app.js", "/style.css", "/api/webrtc", "/favicon.ico"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "image/") {
			t.Errorf("GET %s serves %s", path, ct)
		}
		if what := imageIn(b); what != "" {
			t.Errorf("GET %s serves %s data", path, what)
		}
	}
}

// privacy.face_images: true: each tree's track gets the JPEG of its latest
// aligned crop, at the configured crop size, on <prefix>/<camera>/<id>/face,
// at most once per tree and not retained; the most salient face goes to
// <prefix>/<camera>/face, shown by a Home Assistant camera entity.
func TestFaceImagesOptIn(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	const size = 128
	cams := strings.Replace(astronaut, "    loop: true\n", fmt.Sprintf("    loop: true\n    crop_size: %d\n", size), 1)
	r, _ := start(t, "privacy: {face_images: true}\n"+daemonConfig(t, "  broker: "+mq.URL(), cams))
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/#", "homeassistant/#")
	sub.Wait(30*time.Second, "3 per-track face images and one on the camera topic", func(ms []mqtttest.Message) bool {
		n, cam := 0, 0
		for _, m := range ms {
			switch {
			case m.Topic == "edgemo/astro/face":
				cam++
			case strings.HasSuffix(m.Topic, "/face"):
				n++
			}
		}
		return n >= 3 && cam >= 1
	})
	// what was sent is counted, in the stats and in /metrics
	if m := r.d.Snapshot().MQTT; m == nil || m.FaceImagesSent == 0 {
		t.Errorf("stats count no face images sent: %+v", m)
	}
	if body := httpGet(t, "http://"+r.d.MetricsAddr()+"/metrics"); !regexp.MustCompile(`edgemo_mqtt_face_images_total\{outcome="sent"\} [1-9]`).MatchString(body) {
		t.Errorf("/metrics counts no face image sent")
	}
	r.stop(t) // trees are flushed; now the counts are final
	ms := sub.Messages("")

	trees, faces := map[string]int{}, map[string]int{}
	for _, m := range ms {
		parts := strings.Split(m.Topic, "/")
		switch {
		case len(parts) == 4 && parts[3] == "tree":
			trees[parts[2]]++
		case len(parts) == 4 && parts[3] == "face":
			faces[parts[2]]++
			fallthrough
		case m.Topic == "edgemo/astro/face":
			if m.Retained {
				t.Errorf("%s is retained: images must not stay on the broker", m.Topic)
			}
			cfg, err := jpeg.DecodeConfig(strings.NewReader(m.Payload))
			if err != nil {
				t.Fatalf("%s: not a JPEG: %v", m.Topic, err)
			}
			if _, err := jpeg.Decode(strings.NewReader(m.Payload)); err != nil {
				t.Fatalf("%s: JPEG does not decode: %v", m.Topic, err)
			}
			if cfg.Width != size || cfg.Height != size {
				t.Errorf("%s: %d×%d JPEG, want the %d×%d crop", m.Topic, cfg.Width, cfg.Height, size, size)
			}
		}
	}
	for id, n := range faces {
		if n > trees[id] {
			t.Errorf("track %s: %d face images for %d trees, want at most one per tree", id, n, trees[id])
		}
	}
	t.Logf("trees per track %v, face images per track %v", trees, faces)

	var disc *mqtttest.Message
	for i, m := range ms {
		if m.Topic == "homeassistant/camera/edgemo/astro_face/config" && m.Payload != "" {
			disc = &ms[i]
		}
	}
	if disc == nil {
		t.Fatal("no Home Assistant camera discovery config for astro")
	}
	var c map[string]any
	if err := json.Unmarshal([]byte(disc.Payload), &c); err != nil {
		t.Fatalf("camera discovery: %v: %s", err, disc.Payload)
	}
	for _, k := range []string{"name", "unique_id", "availability_topic", "device"} {
		if c[k] == nil || c[k] == "" {
			t.Errorf("camera discovery lacks %s: %s", k, disc.Payload)
		}
	}
	if c["topic"] != "edgemo/astro/face" {
		t.Errorf("camera discovery topic = %v, want edgemo/astro/face", c["topic"])
	}
}

// Turning privacy.face_images off by a reload stops the images from the
// next tree on and deletes the Home Assistant camera entity.
func TestFaceImagesOffByReload(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	cfg := daemonConfig(t, "  broker: "+mq.URL(), astronaut)
	r, path := start(t, "privacy: {face_images: true}\n"+cfg)
	const entity = "homeassistant/camera/edgemo/astro_face/config"
	sub := mqtttest.Subscribe(t, mq.URL(), mqtttest.SubOptions{}, "edgemo/#")
	sub.Wait(30*time.Second, "a face image", func(ms []mqtttest.Message) bool { return countSuffix(ms, "/face") > 0 })
	waitRetained(t, mq.URL(), "the camera entity", func(got map[string]string) bool { return got[entity] != "" })

	if err := os.WriteFile(path+".tmp", []byte("privacy: {face_images: false}\n"+cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for r.d.Reloads() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("config change not applied within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The restarted MQTT sink's predecessor said "stopped" after its last
	// message: what comes after that is the new settings' doing.
	n := 0
	sub.Wait(10*time.Second, "the old MQTT sink stopped", func(ms []mqtttest.Message) bool {
		for i, m := range ms {
			if m.Topic == "edgemo/available" && m.Payload == "stopped" {
				n = i + 1
				return true
			}
		}
		return false
	})
	ms := sub.Wait(30*time.Second, "3 trees after the reload", func(ms []mqtttest.Message) bool { return countSuffix(ms[n:], "/tree") >= 3 })
	for _, m := range ms[n:] {
		if what := imageIn([]byte(m.Payload)); what != "" || strings.HasSuffix(m.Topic, "/face") {
			t.Errorf("after turning face images off: %s (%d bytes, %s)", m.Topic, len(m.Payload), what)
		}
	}
	waitRetained(t, mq.URL(), "the camera entity deleted", func(got map[string]string) bool { _, ok := got[entity]; return !ok })
}

// httpGet is the body of a GET that must answer 200.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	return string(b)
}
