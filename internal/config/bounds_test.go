package config

import (
	"fmt"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine/registry"
)

// Every bounded key: a value just outside (and a negative, a NaN where it
// applies) is rejected naming file:line, the key, the value and the range;
// the bound itself is accepted.
func TestBoundsNameKeyLineValueAndRange(t *testing.T) {
	type bound struct {
		section string // "camera" (under cameras.door) or a top-level yaml prefix
		key     string // the key's yaml, {} replaced by the value
		full    string // the dotted key in the error
		ok, bad []string
		rng     string // in the error
	}
	bs := []bound{
		{"camera", "crop_size: {}", "cameras.door.crop_size", []string{"32", "1024", "192"}, []string{"100000", "31", "1025", "-1"}, "between 32 and 1024"},
		{"camera", "crop_margin: {}", "cameras.door.crop_margin", []string{"0.01", "2", "0"}, []string{"-0.5", "2.5", ".nan", ".inf"}, "between 0 and 2"},
		{"camera", "detect_width: {}", "cameras.door.detect_width", []string{"64", "3840"}, []string{"-640", "63", "3841"}, "between 64 and 3840"},
		{"camera", "detect_every: {}", "cameras.door.detect_every", []string{"1", "300"}, []string{"-1", "301"}, "between 1 and 300"},
		{"camera", "detect_max_every: {}", "cameras.door.detect_max_every", []string{"1", "300"}, []string{"-1", "301"}, "between 1 and 300"},
		{"camera", "detect_max_every: {}\n    detect_every: 4", "cameras.door.detect_max_every", []string{"4", "300"}, []string{"3"}, "between 4 and 300"},
		{"camera", "detect_region_every: {}", "cameras.door.detect_region_every", []string{"1", "300"}, []string{"-1", "301"}, "between 1 and 300"},
		{"camera", "motion_threshold: {}", "cameras.door.motion_threshold", []string{"0.0001", "0.99"}, []string{"-0.1", "1", ".nan"}, "above 0 and at most 0.99"},
		{"camera", "motion_outside: {}", "cameras.door.motion_outside", []string{"0.0001", "0.99"}, []string{"-0.1", "1", ".inf"}, "above 0 and at most 0.99"},
		{"camera", "fps: {}", "cameras.door.fps", []string{"0", "0.5", "240"}, []string{"-1", "241", ".nan", "-.inf"}, "above 0 and at most 240"},
		{"camera", "read_timeout: {}", "cameras.door.read_timeout", []string{"100ms", "10m"}, []string{"-1s", "99ms", "11m"}, "between 100ms and 10m0s"},
		{"camera", "window: {fps: {}}", "cameras.door.window.fps", []string{"0.1", "60"}, []string{"-4", "61", ".nan"}, "above 0 and at most 60"},
		{"camera", "window: {length: {}, stride: 1}", "cameras.door.window.length", []string{"1", "64"}, []string{"-8", "65"}, "between 1 and 64"},
		{"camera", "window: {length: 4, stride: {}}", "cameras.door.window.stride", []string{"1", "4"}, []string{"-1", "5"}, "between 1 and window.length (4)"},
		{"camera", "low_light: {}", "cameras.door.low_light", []string{"0", "0.15", "1"}, []string{"-0.1", "1.5", ".nan"}, "between 0 and 1"},
		{"camera", "attention: {yaw: {}}", "cameras.door.attention.yaw", []string{"0.5", "90"}, []string{"-12", "91", ".nan"}, "above 0 and at most 90"},
		{"camera", "attention: {pitch: {}}", "cameras.door.attention.pitch", []string{"1", "90"}, []string{"-1", "90.5"}, "above 0 and at most 90"},
		{"camera", "attention: {yaw_offset: {}}", "cameras.door.attention.yaw_offset", []string{"-90", "0", "90"}, []string{"-91", "91", ".inf"}, "between -90 and 90"},
		{"camera", "attention: {pitch_offset: {}}", "cameras.door.attention.pitch_offset", []string{"-90", "0", "90"}, []string{"-91", "91", ".nan"}, "between -90 and 90"},
		{"camera", "audience: {period: {}}", "cameras.door.audience.period", []string{"1s", "1h"}, []string{"-10s", "999ms", "2h"}, "between 1s and 1h0m0s"},
		{"mqtt:\n  ", "queue_size: {}", "mqtt.queue_size", []string{"1", "100000"}, []string{"-1", "100001"}, "between 1 and 100000"},
		{"mqtt:\n  ", "stats_interval: {}", "mqtt.stats_interval", []string{"1s", "1h"}, []string{"-10s", "999ms", "2h"}, "between 1s and 1h0m0s"},
		{"engine:\n  ", "threads: {}", "engine.threads", []string{"1", "256"}, []string{"-1", "257"}, "between 1 and 256"},
		{"models:\n  ", "videmo_question_batch: {}", "models.videmo_question_batch", []string{"0", "32"}, []string{"-1", "33"}, "between 0 and 32"},
	}
	doc := func(b bound, v string) string {
		line := strings.ReplaceAll(b.key, "{}", v)
		if b.section == "camera" {
			return "cameras:\n  door:\n    source: rtsp://cam/x\n    " + line + "\n" // the key is on line 4
		}
		return "\n\n" + b.section + line + "\ncameras:\n  door: {source: rtsp://cam/x}\n" // line 4 too
	}
	for _, b := range bs {
		for _, v := range b.ok {
			if _, err := parse(t, doc(b, v)); err != nil {
				t.Errorf("%s %s rejected: %v", b.full, v, err)
			}
		}
		for _, v := range b.bad {
			_, err := parse(t, doc(b, v))
			if err == nil {
				t.Errorf("%s %s accepted", b.full, v)
				continue
			}
			// The value as the error prints it: yaml's .nan is NaN, 99ms stays.
			shown := map[string]string{".nan": "NaN", ".inf": "+Inf", "-.inf": "-Inf", "11m": "11m0s", "2h": "2h0m0s", "-10s": "-10s"}[v]
			if shown == "" {
				shown = v
			}
			for _, w := range []string{"test.yaml:4: " + b.full + ": " + shown + ": must be", b.rng} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s %s: error %q does not mention %q", b.full, v, err, w)
				}
			}
		}
	}
}

// The reproduction: crop_size 100000 aborted the daemon on the
// first face; now the config is refused, with the line.
func TestCropSize100000IsRejected(t *testing.T) {
	_, err := parse(t, "cameras:\n  door:\n    source: rtsp://cam/x\n    crop_size: 100000\n")
	mustErr(t, err, "test.yaml:4: cameras.door.crop_size: 100000: must be between 32 and 1024")
	// Through defaults, the camera key is the one named.
	_, err = parse(t, "defaults:\n  crop_size: -5\ncameras:\n  door: {source: rtsp://cam/x}\n")
	mustErr(t, err, "test.yaml:2: cameras.door.crop_size: -5: must be between 32 and 1024", "(set in defaults.crop_size)")
}

// A window of big crops is bounded as a whole: each bound alone passes,
// together they would hold 192 MiB per face.
func TestWindowBytesBound(t *testing.T) {
	_, err := parse(t, "cameras:\n  door:\n    source: rtsp://cam/x\n    crop_size: 1024\n    window: {length: 64, stride: 8}\n")
	mustErr(t, err, "cameras.door.window.length", "64 crops of 1024×1024", "at most 21")
	if _, err := parse(t, "cameras:\n  door:\n    source: rtsp://cam/x\n    crop_size: 1024\n    window: {length: 21, stride: 8}\n"); err != nil {
		t.Fatal(err)
	}
}

func TestDefaultsFilledAndBounded(t *testing.T) {
	c, err := parse(t, "cameras:\n  door: {source: rtsp://cam/x}\n")
	if err != nil {
		t.Fatal(err)
	}
	cam := c.Cameras["door"]
	if cam.CropSize != DefaultCropSize || cam.CropMargin != DefaultCropMargin || cam.DetectWidth != DefaultDetectWidth || c.MQTT.QueueSize != 1000 || c.Engine.Threads != 1 {
		t.Fatalf("defaults: crop %d margin %v width %d queue %d threads %d", cam.CropSize, cam.CropMargin, cam.DetectWidth, c.MQTT.QueueSize, c.Engine.Threads)
	}
	if err := safe(c); err != nil {
		t.Fatalf("the defaults break an invariant: %v", err)
	}
}

// Two cameras with one name: an error naming both lines, not the last one
// silently winning. The same for any other key given twice.
func TestDuplicateKeys(t *testing.T) {
	_, err := parse(t, "cameras:\n  door:\n    source: rtsp://a/x\n  door:\n    source: rtsp://b/x\n")
	mustErr(t, err, "test.yaml:4: cameras.door: duplicate camera name (first at line 2)")
	_, err = parse(t, "mqtt:\n  qos: 1\n  qos: 2\ncameras:\n  door: {source: 0}\n")
	mustErr(t, err, "test.yaml:3: mqtt.qos: duplicate key (first at line 2)")
	_, err = parse(t, "cameras:\n  door:\n    source: 0\n    window: {fps: 4, fps: 2}\n")
	mustErr(t, err, "test.yaml:4: cameras.door.window.fps: duplicate key (first at line 4)")
	_, err = parse(t, "cameras:\n  a: {source: 0}\ncameras:\n  b: {source: 1}\n")
	mustErr(t, err, "test.yaml:3: cameras: duplicate key (first at line 1)")
}

// A type error names the key, the line and what to write.
func TestTypeErrorsNameKeyAndType(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"cameras:\n  door:\n    source: 0\n    fps: two\n", `test.yaml:4: cameras.door.fps: "two" is not a number; want a number of frames per second`},
		{"cameras:\n  door:\n    source: 0\n    crop_size: 1.5\n", `test.yaml:4: cameras.door.crop_size: "1.5" is not a whole number; want a whole number of pixels`},
		{"cameras:\n  door:\n    source: 0\n    loop: often\n", `test.yaml:4: cameras.door.loop: "often" is not true or false`},
		{"cameras:\n  door:\n    source: 0\n    window: 8\n", `test.yaml:4: cameras.door.window: "8" is not a mapping`},
		{"mqtt:\n  queue_size: [1]\ncameras:\n  door: {source: 0}\n", `test.yaml:2: mqtt.queue_size: a list is not a whole number; want a whole number of trees`},
		{"engine:\n  providers: cpu\ncameras:\n  door: {source: 0}\n", `test.yaml:2: engine.providers: "cpu" is not a list`},
		{"mqtt:\n  stats_interval: soon\ncameras:\n  door: {source: 0}\n", `test.yaml:2: mqtt.stats_interval: "soon" is not a duration`},
		{"cameras:\n  door: 5\n", `test.yaml:2: cameras.door: "5" is not a mapping`},
		{"defaults:\n  detect_every: x\ncameras:\n  door: {source: 0}\n", `test.yaml:2: defaults.detect_every: "x" is not a whole number`},
	}
	for _, c := range cases {
		_, err := parse(t, c.yaml)
		mustErr(t, err, c.want)
		if err != nil && strings.Contains(err.Error(), "cannot unmarshal") {
			t.Errorf("yaml's own message leaks: %v", err)
		}
	}
}

// Every registered detector, head, precision and provider is accepted by the config;
// an unknown one is rejected with the list of known names.
func TestRegistryNamesAccepted(t *testing.T) {
	for _, d := range registry.Detectors.Names() {
		c, err := parse(t, fmt.Sprintf("cameras:\n  a: {source: 0, detector: %s}\n", d))
		if err != nil || c.Cameras["a"].Detector != d {
			t.Errorf("detector %s: %v", d, err)
		}
	}
	for _, h := range registry.Heads.Names() {
		if _, err := parse(t, fmt.Sprintf("engine: {heads: [%s]}\ncameras:\n  a: {source: 0}\n", h)); err != nil {
			t.Errorf("head %s: %v", h, err)
		}
	}
	for _, p := range registry.Providers.Parts {
		for _, name := range append([]string{p.Name, strings.ToUpper(p.Name), p.ORT}, p.Aliases...) {
			if _, err := parse(t, fmt.Sprintf("engine: {providers: [%s]}\ncameras:\n  a: {source: 0}\n", name)); err != nil {
				t.Errorf("provider %s: %v", name, err)
			}
		}
	}
	for _, p := range registry.Precisions.Names() {
		if c, err := parse(t, fmt.Sprintf("models: {precision: %s}\ncameras:\n  a: {source: 0}\n", p)); err != nil || c.Models.Precision != p {
			t.Errorf("precision %s: %v", p, err)
		}
	}
	c, err := parse(t, "cameras:\n  a: {source: 0}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(c.Engine.Providers, ","), strings.Join(registry.Providers.Defaults(), ","); got != want {
		t.Errorf("default providers %s, registry's %s", got, want)
	}
	if c.Cameras["a"].Detector != registry.Detectors.Default() {
		t.Errorf("default detector %s, registry's %s", c.Cameras["a"].Detector, registry.Detectors.Default())
	}
	for _, u := range []struct {
		yaml, key string
		l         registry.List
	}{
		{"cameras:\n  a: {source: 0, detector: yolo}\n", "cameras.a.detector", registry.Detectors},
		{"engine: {heads: [aura]}\ncameras:\n  a: {source: 0}\n", "engine.heads", registry.Heads},
		{"engine: {providers: [rocm]}\ncameras:\n  a: {source: 0}\n", "engine.providers", registry.Providers},
		{"models: {precision: int4}\ncameras:\n  a: {source: 0}\n", "models.precision", registry.Precisions},
	} {
		_, err := parse(t, u.yaml)
		mustErr(t, err, append([]string{u.key, "unknown " + u.l.Kind}, u.l.Names()...)...)
	}
}
