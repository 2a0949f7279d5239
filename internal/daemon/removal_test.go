package daemon

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// retainedOf is the part of got that belongs to camera cam: its Home
// Assistant discovery configs and its state topics.
func retainedOf(got map[string]string, cam string) []string {
	var out []string
	for tp := range got {
		if strings.HasPrefix(tp, "homeassistant/sensor/edgemo/"+cam+"_") || strings.HasPrefix(tp, "edgemo/"+cam+"/") {
			out = append(out, tp)
		}
	}
	return out
}

// waitRetained polls what a new subscriber gets retained until ok holds.
func waitRetained(t *testing.T, url, what string, ok func(map[string]string) bool) map[string]string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := mqtttest.Retained(t, url, "edgemo/#", "homeassistant/#")
		if ok(got) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; retained now: %v", what, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A reload that removes camera b and changes camera a deletes b's Home
// Assistant entities and clears its retained state; a, restarted, keeps its
// entities.
func TestHotReloadRemovedCameraClearsItsEntities(t *testing.T) {
	mq := mqtttest.StartMosquitto(t)
	two := `  a:
    source: deps/media/astronaut.png
    loop: true
    window: {fps: 4, length: 4, stride: 2}
  b:
    source: deps/media/astronaut.png
    loop: true
    window: {fps: 4, length: 4, stride: 2}
`
	r, path := start(t, daemonConfig(t, "  broker: "+mq.URL(), two))
	d := r.d
	objects := []string{"emotion", "faces", "status"}
	complete := func(got map[string]string, cam string) bool {
		for _, o := range objects {
			if got["homeassistant/sensor/edgemo/"+cam+"_"+o+"/config"] == "" {
				return false
			}
		}
		return got["edgemo/"+cam+"/status"] == "online" && got["edgemo/"+cam+"/faces"] != ""
	}
	waitRetained(t, mq.URL(), "both cameras' entities, status and faces", func(got map[string]string) bool {
		return complete(got, "a") && complete(got, "b")
	})
	d.mu.Lock()
	a0 := d.cams["a"]
	d.mu.Unlock()

	b, _ := os.ReadFile(path)
	i := strings.Index(string(b), "  b:\n")
	if i < 0 {
		t.Fatal("camera b not in the test config")
	}
	edited := strings.Replace(string(b[:i]), "stride: 2", "stride: 1", 1) // change a, drop b (the last section)
	if err := os.WriteFile(path+".tmp", []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for d.Reloads() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("config change not applied within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if names := d.CameraNames(); len(names) != 1 || names[0] != "a" {
		t.Fatalf("cameras after the reload: %v, want [a]", names)
	}
	d.mu.Lock()
	a1 := d.cams["a"]
	d.mu.Unlock()
	if a1 == a0 || a1.cfg.Window.Stride != 1 {
		t.Fatal("camera a was not restarted with its new settings: the test no longer covers a changed camera")
	}

	got := waitRetained(t, mq.URL(), "camera b's retained topics cleared", func(got map[string]string) bool {
		return len(retainedOf(got, "b")) == 0
	})
	if !complete(got, "a") {
		t.Errorf("camera a (changed, not removed) lost its entities or state: %v", retainedOf(got, "a"))
	}
	if got["edgemo/available"] != "online" {
		t.Errorf("edgemo/available = %q, want online", got["edgemo/available"])
	}
}
