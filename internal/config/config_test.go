package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/internal/testenv"
)

func parse(t *testing.T, y string) (*Config, error) {
	t.Helper()
	return Parse("test.yaml", []byte(y))
}

func mustErr(t *testing.T, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one mentioning %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

func TestEmbeddedDefaultIsValid(t *testing.T) {
	t.Chdir(testenv.Root())
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	cam := c.Cameras["sample"]
	if cam.Source != "deps/media/Megamind.avi" || !cam.Loop || !On(cam.Realtime, false) || c.MQTT.Broker != "" {
		t.Fatalf("default config: %+v", c)
	}
	if c.HTTP.Listen != "127.0.0.1:8080" || *c.MQTT.QoS != 1 || time.Duration(c.MQTT.StatsInterval) != 10*time.Second {
		t.Fatalf("defaults not applied: %+v", c)
	}
}

func TestCamerasOverrideDefaultsKeyByKey(t *testing.T) {
	c, err := parse(t, `
defaults:
  fps: 10
  realtime: false
  window: {fps: 2, length: 16}
cameras:
  a:
    source: rtsp://cam-a/stream
  b:
    source: rtsp://cam-b/stream
    realtime: true
    window: {length: 8}
`)
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Cameras["a"], c.Cameras["b"]
	if a.FPS != 10 || a.Window.FPS != 2 || a.Window.Length != 16 || a.Window.Stride != 8 || On(a.Realtime, true) {
		t.Fatalf("a: %+v", a)
	}
	// b overrides length only: fps stays the default's, stride follows length.
	if b.Window.FPS != 2 || b.Window.Length != 8 || b.Window.Stride != 4 || !On(b.Realtime, false) {
		t.Fatalf("b: %+v", b)
	}
	if On(a.Realtime, true) {
		t.Fatal("b's override leaked into a through a shared pointer")
	}
}

func TestEnvSubstitution(t *testing.T) {
	t.Setenv("EDGEMO_TEST_PW", "s3cret$")
	c, err := parse(t, `
mqtt:
  broker: tcp://broker:1883
  password: ${EDGEMO_TEST_PW}
  username: ${EDGEMO_TEST_USER:-edgemo}
cameras:
  a: {source: "rtsp://u:${EDGEMO_TEST_PW}@cam/s"}
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.MQTT.Password != "s3cret$" || c.MQTT.Username != "edgemo" || c.Cameras["a"].Source != "rtsp://u:s3cret$@cam/s" {
		t.Fatalf("%+v", c.MQTT)
	}
	_, err = parse(t, "mqtt:\n  password: ${EDGEMO_TEST_UNSET_VAR}\ncameras:\n  a: {source: 0}\n")
	mustErr(t, err, "test.yaml:2", "EDGEMO_TEST_UNSET_VAR is not set")
}

func TestErrorsNameTheLineAndKey(t *testing.T) {
	cases := map[string]struct {
		yaml string
		want []string
	}{
		"malformed": {"cameras:\n  a: {source: x\n", []string{"test.yaml:1: did not find expected"}},
		"unknown top-level key": {"mqtt:\n  brokr: tcp://x:1883\ncameras:\n  a: {source: 0}\n",
			[]string{"test.yaml:2", `unknown key "brokr"`, "in mqtt", "broker"}},
		"unknown camera key": {"cameras:\n  door:\n    source: 0\n    sourc: 1\n",
			[]string{"test.yaml:4: cameras.door", `unknown key "sourc"`}},
		"unknown nested key": {"cameras:\n  door:\n    source: 0\n    window: {lenght: 3}\n", //nolint:misspell // the misspelt key is the test
			[]string{"cameras.door", `unknown key "lenght" in window`}}, //nolint:misspell
		"wrong type": {"cameras:\n  door:\n    source: 0\n    fps: fast\n", []string{"test.yaml:4: cameras.door", "fast"}},
		"bad stride": {"cameras:\n  door:\n    source: 0\n    window: {length: 4, stride: 9}\n",
			[]string{"test.yaml:4", "cameras.door.window.stride", "between 1 and window.length (4)"}},
		"missing file source": {"cameras:\n  door:\n    source: /nonexistent/clip.mp4\n",
			[]string{"test.yaml:3", "cameras.door.source", "/nonexistent/clip.mp4", "not found"}},
		"bad scheme":      {"cameras:\n  door:\n    source: ftp://cam/x\n", []string{"cameras.door.source", "unsupported scheme"}},
		"no cameras":      {"log_level: info\n", []string{"no camera configured"}},
		"bad qos":         {"mqtt: {qos: 3}\ncameras:\n  a: {source: 0}\n", []string{"test.yaml:1", "mqtt.qos"}},
		"bad broker":      {"mqtt: {broker: 'broker:1883'}\ncameras:\n  a: {source: 0}\n", []string{"mqtt.broker", "tcp://"}},
		"bad listen":      {"http: {listen: 8080}\ncameras:\n  a: {source: 0}\n", []string{"http.listen", "host:port"}},
		"bad duration":    {"mqtt: {stats_interval: soon}\ncameras:\n  a: {source: 0}\n", []string{"test.yaml:1", "soon", "duration"}},
		"bad camera name": {"cameras:\n  front door: {source: 0}\n", []string{"cameras.front door", "letters, digits"}},
		"negative read_timeout": {"cameras:\n  door:\n    source: rtsp://cam/x\n    read_timeout: -1s\n",
			[]string{"test.yaml:4", "cameras.door.read_timeout", "-1s"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := parse(t, c.yaml)
			mustErr(t, err, c.want...)
			t.Log(err)
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "edgemo.yaml"))
	mustErr(t, err, "edgemo.yaml")
}

func TestExampleFileMatchesEmbeddedDefault(t *testing.T) {
	b, err := os.ReadFile(testenv.Path(t, "edgemo.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != string(Example()) {
		t.Fatal("edgemo.example.yaml differs from internal/config/default.yaml: copy it again (cp internal/config/default.yaml edgemo.example.yaml)")
	}
}

func TestDetectorAndHeads(t *testing.T) {
	c, err := parse(t, "engine: {heads: [mesh], optional_heads: true}\ncameras:\n  a: {source: 0}\n  b: {source: 1, detector: blazeface-front}\n  c: {source: 2, cascade: /usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Cameras["a"].Detector != "blazeface-back" || c.Cameras["b"].Detector != "blazeface-front" || c.Cameras["c"].Detector != "haar" {
		t.Fatalf("detectors: %q %q %q", c.Cameras["a"].Detector, c.Cameras["b"].Detector, c.Cameras["c"].Detector)
	}
	if c.Engine.Heads == nil || len(*c.Engine.Heads) != 1 || !c.Engine.OptionalHeads {
		t.Fatalf("heads: %+v", c.Engine)
	}
	_, err = parse(t, "cameras:\n  a: {source: 0, detector: yolo}\n")
	mustErr(t, err, "cameras.a.detector", "yolo", "blazeface-back")
	_, err = parse(t, "engine: {heads: [aura]}\ncameras:\n  a: {source: 0}\n")
	mustErr(t, err, "engine.heads", "aura")
}

// read_timeout: 5s unless the defaults or the camera say otherwise, key by
// key like every camera setting.
func TestReadTimeout(t *testing.T) {
	c, err := parse(t, `
defaults:
  read_timeout: 2s
cameras:
  a: {source: rtsp://cam-a/stream}
  b: {source: http://cam-b/video.mjpg, read_timeout: 500ms}
`)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := time.Duration(c.Cameras["a"].ReadTimeout), time.Duration(c.Cameras["b"].ReadTimeout); a != 2*time.Second || b != 500*time.Millisecond {
		t.Errorf("read_timeout a %v, b %v; want 2s (defaults), 500ms (camera)", a, b)
	}
	c, err = parse(t, "cameras:\n  a: {source: rtsp://cam-a/stream}\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(c.Cameras["a"].ReadTimeout); got != 5*time.Second {
		t.Errorf("default read_timeout %v, want 5s", got)
	}
	t.Chdir(testenv.Root())
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if got := time.Duration(d.Defaults.ReadTimeout); got != capture.DefaultReadTimeout {
		t.Errorf("default.yaml sets read_timeout %v, capture's default is %v: keep them equal", got, capture.DefaultReadTimeout)
	}
}

// privacy.face_images is off unless a file turns it on, in the embedded
// default too; a misspelt privacy key is an error, not silently "off".
func TestPrivacyFaceImages(t *testing.T) {
	c, err := parse(t, "cameras:\n  a: {source: 0}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Privacy.FaceImages {
		t.Error("privacy.face_images is on without being set")
	}
	c, err = parse(t, "privacy: {face_images: true}\ncameras:\n  a: {source: 0}\n")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Privacy.FaceImages {
		t.Error("privacy.face_images: true not read")
	}
	_, err = parse(t, "privacy: {face_image: true}\ncameras:\n  a: {source: 0}\n")
	mustErr(t, err, "test.yaml:1", "face_image", "face_images")
	t.Chdir(testenv.Root())
	d, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	if d.Privacy.FaceImages {
		t.Error("the embedded default publishes face images: it must not")
	}
}

func TestVidEmoQuestionBatch(t *testing.T) {
	c, err := parse(t, "models: {videmo_question_batch: 6}\ncameras:\n  a: {source: 0}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Models.VidEmoQuestionBatch != 6 {
		t.Errorf("models.videmo_question_batch = %d, want 6", c.Models.VidEmoQuestionBatch)
	}
	_, err = parse(t, "models: {videmo_question_batch: -1}\ncameras:\n  a: {source: 0}\n")
	mustErr(t, err, "test.yaml:1", "models.videmo_question_batch", "-1", "between 0 and 32")
}

// models.videmo_caption_tokens: 0 (the manifest's) by default, any budget
// in [0, 4096] kept, outside it an error naming the key and the bounds.
func TestVidEmoCaptionTokens(t *testing.T) {
	c, err := parse(t, "cameras:\n  a: {source: 0}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Models.VidEmoCaptionTokens != 0 {
		t.Errorf("default models.videmo_caption_tokens = %d, want 0 (the manifest's)", c.Models.VidEmoCaptionTokens)
	}
	for _, n := range []int{0, 1, 2048, MaxCaptionTokens} {
		c, err := parse(t, fmt.Sprintf("models: {videmo_caption_tokens: %d}\ncameras:\n  a: {source: 0}\n", n))
		if err != nil {
			t.Fatalf("videmo_caption_tokens %d: %v", n, err)
		}
		if c.Models.VidEmoCaptionTokens != n {
			t.Errorf("models.videmo_caption_tokens = %d, want %d", c.Models.VidEmoCaptionTokens, n)
		}
	}
	for _, n := range []int{-1, MaxCaptionTokens + 1} {
		_, err := parse(t, fmt.Sprintf("models:\n  videmo_caption_tokens: %d\ncameras:\n  a: {source: 0}\n", n))
		mustErr(t, err, "test.yaml:2", "models.videmo_caption_tokens", fmt.Sprint(n), "between 0", "4096")
	}
}

// models.videmo_remote: refused without privacy.remote_inference (the
// error names the key), with models.videmo as its plan, with defaults and
// bounds; the daemon's TestRemoteVidEmoOutage shows url and timeout reach
// the remote engine.
func TestVidEmoRemote(t *testing.T) {
	t.Chdir(testenv.Root())
	const plan = "models:\n  videmo: models/videmo-tiny/videmo.manifest.json\n  videmo_remote: {url: http://gpu:8000/v1%s}\n%scameras:\n  a: {source: 0}\n"
	_, err := parse(t, fmt.Sprintf(plan, "", ""))
	mustErr(t, err, "models.videmo_remote.url", "privacy.remote_inference: true")
	c, err := parse(t, fmt.Sprintf(plan, "", "privacy: {remote_inference: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Models.VidEmoRemote
	if r.URL != "http://gpu:8000/v1" || time.Duration(r.Timeout) != 30*time.Second || r.MaxInFlight != 4 || r.TopLogprobs != 20 {
		t.Errorf("defaults: %+v", r)
	}
	for _, bad := range []struct{ extra, key string }{
		{", timeout: 10ms", "models.videmo_remote.timeout"},
		{", max_in_flight: 1000", "models.videmo_remote.max_in_flight"},
		{", top_logprobs: -3", "models.videmo_remote.top_logprobs"},
	} {
		_, err := parse(t, fmt.Sprintf(plan, bad.extra, "privacy: {remote_inference: true}\n"))
		mustErr(t, err, bad.key)
	}
	_, err = parse(t, "models:\n  videmo_remote: {url: 'gpu:8000'}\nprivacy: {remote_inference: true}\ncameras:\n  a: {source: 0}\n")
	mustErr(t, err, "models.videmo_remote.url", "http(s)://host:port/v1", "models.videmo")
}
