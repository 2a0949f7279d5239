package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/internal/daemon"
	"github.com/edgemo/edgemo/internal/testenv"
)

// writeConfig writes yaml to a temp edgemo.yaml and returns its path.
func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "edgemo.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Issue 10, defect 2: crop_size 100000 passed --check and then aborted the
// daemon on the first face; negative sizes passed too. --check now refuses
// each with file:line, the key, the value and the range.
func TestCheckRejectsOutOfBounds(t *testing.T) {
	t.Chdir(testenv.Root())
	for _, c := range []struct{ key, want string }{
		{"crop_size: 100000", "cameras.door.crop_size: 100000: must be between 32 and 1024"},
		{"crop_size: -192", "cameras.door.crop_size: -192: must be between 32 and 1024"},
		{"crop_margin: -0.25", "cameras.door.crop_margin: -0.25: must be between 0 and 2"},
		{"detect_width: -640", "cameras.door.detect_width: -640: must be between 64 and 3840"},
		{"fps: two", `cameras.door.fps: "two" is not a number; want a number of frames per second`},
	} {
		p := writeConfig(t, "cameras:\n  door:\n    source: deps/media/Megamind.avi\n    "+c.key+"\n")
		code, stdout, stderr := edgemo(t, "run", "--check", "--config", p)
		if code != 1 || !strings.Contains(stderr, p+":4: "+c.want) || strings.Contains(stdout, "ok") {
			t.Errorf("%s: exit %d, want 1 and %q\nstdout: %s\nstderr: %s", c.key, code, p+":4: "+c.want, stdout, stderr)
		}
	}
	p := writeConfig(t, "cameras:\n  door: {source: deps/media/Megamind.avi}\n  door: {source: deps/media/astronaut.png}\n")
	if code, _, stderr := edgemo(t, "run", "--check", "--config", p); code != 1 || !strings.Contains(stderr, p+":3: cameras.door: duplicate camera name (first at line 2)") {
		t.Errorf("duplicate camera: exit %d\n%s", code, stderr)
	}
}

// Issue 10, defect 6: --check said ok for a models.emotion that does not
// exist. It now loads every manifest the config names with the daemon's
// loaders, and names the manifest, the key's line and the fix.
func TestCheckLoadsEveryModel(t *testing.T) {
	t.Chdir(testenv.Root())
	cam := "cameras:\n  door: {source: deps/media/Megamind.avi}\n"
	cases := []struct {
		name, yaml string
		want       []string
	}{
		{"missing emotion", "models:\n  emotion: models/nope.manifest.json\n" + cam, []string{":2: models.emotion: models/nope.manifest.json", "fix:"}},
		{"wrong emotion", "models:\n  emotion: models/blazeface-back.manifest.json\n" + cam, []string{":2: models.emotion:", `"face-detection" model, not "expression-classification"`, "fix:"}},
		{"missing videmo", "models:\n  videmo: /nonexistent/videmo.manifest.json\n" + cam, []string{":2: models.videmo", "/nonexistent/videmo.manifest.json"}},
		{"wrong videmo", "models:\n  videmo: models/emotion.manifest.json\n" + cam, []string{":2: models.videmo:", "models/emotion.manifest.json", "fix:"}},
		{"missing cascade", "cameras:\n  door:\n    source: deps/media/Megamind.avi\n    cascade: /nonexistent/face.xml\n", []string{":4: cameras.door.cascade:", "/nonexistent/face.xml", "fix:"}},
	}
	for _, c := range cases {
		p := writeConfig(t, c.yaml)
		code, stdout, stderr := edgemo(t, "run", "--check", "--config", p)
		if code != 1 {
			t.Errorf("%s: exit %d, want 1\n%s%s", c.name, code, stdout, stderr)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: error lacks %q:\n%s", c.name, w, stderr)
			}
		}
	}
	// A good config, with VidEmo and every detector, is ok.
	p := writeConfig(t, "models:\n  videmo: models/videmo-tiny/videmo.manifest.json\ncameras:\n"+
		"  a: {source: deps/media/Megamind.avi, detector: blazeface-back}\n  b: {source: deps/media/Megamind.avi, detector: blazeface-front}\n  c: {source: deps/media/Megamind.avi, detector: haar}\n")
	if code, stdout, stderr := edgemo(t, "run", "--check", "--config", p); code != 0 || !strings.Contains(stdout, "ok (3 cameras") {
		t.Fatalf("good config: exit %d\n%s%s", code, stdout, stderr)
	}
}

// The flags take every registered name (and a list of them), and refuse
// an unknown one with the known names, as the config does.
func TestFlagsTakeTheRegistry(t *testing.T) {
	parse := func(args ...string) (modelFlags, error) {
		var mf modelFlags
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		mf.register(fs)
		return mf, fs.Parse(args)
	}
	mf, err := parse()
	if err != nil || mf.providers != strings.Join(registry.Providers.Defaults(), ",") || mf.heads != strings.Join(registry.Heads.Defaults(), ",") || mf.detector != "" {
		t.Fatalf("defaults: %+v %v", mf, err)
	}
	for _, d := range registry.Detectors.Names() {
		if mf, err := parse("--detector", d); err != nil || mf.options().Detector != d {
			t.Errorf("--detector %s: %v", d, err)
		}
	}
	if mf, err := parse("--heads", strings.Join(registry.Heads.Names(), ",")); err != nil || len(mf.options().Heads) != len(registry.Heads.Parts) {
		t.Errorf("--heads all: %v", err)
	}
	if mf, err := parse("--heads", "none"); err != nil || len(mf.options().Heads) != 0 {
		t.Errorf("--heads none: %v", err)
	}
	for _, p := range registry.Providers.Parts {
		for _, n := range append([]string{p.Name, strings.ToUpper(p.Name), p.ORT}, p.Aliases...) {
			if _, err := parse("--providers", n+",cpu"); err != nil {
				t.Errorf("--providers %s: %v", n, err)
			}
		}
	}
	for _, c := range []struct {
		flag, value string
		l           registry.List
	}{
		{"--detector", "yolo", registry.Detectors},
		{"--heads", "mesh,aura", registry.Heads},
		{"--providers", "cuda,rocm", registry.Providers},
	} {
		_, err := parse(c.flag, c.value)
		if err == nil {
			t.Errorf("%s %s accepted", c.flag, c.value)
			continue
		}
		for _, w := range append([]string{c.flag[2:], "unknown " + c.l.Kind}, c.l.Names()...) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %s: error %q lacks %q", c.flag, c.value, err, w)
			}
		}
	}
	// Through the CLI: a usage error, before any model loads.
	if code, _, stderr := edgemo(t, "analyze", testenv.Media(t, "astronaut.png"), "--detector", "yolo"); code != 2 || !strings.Contains(stderr, "blazeface-front") {
		t.Errorf("analyze --detector yolo: exit %d\n%s", code, stderr)
	}
}

type logBuffer = testenv.SyncBuffer

// No accepted config crashes the daemon: one camera per extreme of the
// bounds that reach OpenCV and the allocators (the largest crop with the
// largest window it allows and the widest margin, the smallest crop,
// Haar at the smallest detection width, the highest rates) runs on
// Megamind.avi for a few seconds; every camera reads frames, crops never
// fail, the big-crop camera makes windows, and the daemon stops cleanly.
func TestDaemonRunsAtTheBounds(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the daemon for ~10 s")
	}
	t.Chdir(testenv.Root())
	p := writeConfig(t, `
engine: {providers: [cpu]}
mqtt: {enabled: false}
webrtc: {enabled: false}
http: {listen: "127.0.0.1:0", dashboard: false}
metrics: {listen: "off"}
defaults:
  source: deps/media/Megamind.avi
  loop: true
cameras:
  big:   {crop_size: 1024, crop_margin: 2, window: {fps: 10, length: 21, stride: 1}}
  small: {crop_size: 32, crop_margin: 0.01, window: {fps: 60, length: 1, stride: 1}}
  haar:  {detector: haar, detect_width: 64, detect_every: 1, fps: 240}
  sparse: {detect_every: 300, read_timeout: 100ms, window: {length: 64, stride: 64}}
`)
	var logs logBuffer
	d := daemon.New(daemon.Options{ConfigPath: p, Version: "test", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	deadline := time.Now().Add(60 * time.Second)
	windows := func() (snap string, ok bool) {
		s := d.Snapshot()
		ok = s.Ready && len(s.Cameras) == 4
		for _, c := range s.Cameras {
			snap += fmt.Sprintf("%s: %d frames %d detections %d windows; ", c.Name, c.Frames, c.Detections, c.Windows)
			ok = ok && c.Frames > 0 && (c.Name != "big" || c.Windows > 0)
		}
		return snap, ok
	}
	for {
		snap, ok := windows()
		if ok {
			t.Log(snap)
			break
		}
		select {
		case err := <-done:
			t.Fatalf("daemon exited: %v\n%s", err, logs.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("after 60 s: %s\n%s", snap, logs.String())
		}
	}
	time.Sleep(3 * time.Second) // keep cropping at the extremes a while
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("daemon stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
	if l := logs.String(); strings.Contains(l, "crop failed") || strings.Contains(l, "level=ERROR") {
		t.Fatalf("errors at the bounds:\n%s", l)
	}
}
