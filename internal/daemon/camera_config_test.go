package daemon

import (
	"testing"
	"time"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine/audience"
	"github.com/edgemo/edgemo/engine/scene"
	"github.com/edgemo/edgemo/internal/config"
)

// A camera's config reaches its pipeline: the capture settings (the network
// read bound included, default or per camera) and the per-frame controls.
func TestCameraConfigReachesPipeline(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
cameras:
  door:
    source: rtsp://10.0.0.5/stream
    read_timeout: 12s
    fps: 8
    detect_every: 3
    attention: {yaw: 25, pitch: 18, yaw_offset: -5, pitch_offset: 0}
    audience: {period: 30s}
    low_light: 0.3
  desk:
    source: http://10.0.0.6/video.mjpg
`))
	if err != nil {
		t.Fatal(err)
	}
	door := (&camera{name: "door", cfg: cfg.Cameras["door"]}).pipelineConfig(cameraDeps{})
	if door.Source.ReadTimeout != 12*time.Second || door.Source.FPS != 8 || door.DetectEvery != 3 {
		t.Errorf("door: read timeout %v, fps %v, detect every %d; want 12s, 8, 3", door.Source.ReadTimeout, door.Source.FPS, door.DetectEvery)
	}
	desk := (&camera{name: "desk", cfg: cfg.Cameras["desk"]}).pipelineConfig(cameraDeps{})
	if desk.Source.ReadTimeout != capture.DefaultReadTimeout {
		t.Errorf("desk: read timeout %v, want the default %v", desk.Source.ReadTimeout, capture.DefaultReadTimeout)
	}
	// the looking cone and the audience period reach the camera's meter;
	// pitch_offset 0 is kept (not taken for "unset")
	if got, want := door.Audience.Config(), (audience.Config{Cone: audience.Cone{Yaw: 25, Pitch: 18, YawOffset: -5, PitchOffset: 0}, Period: 30 * time.Second}); got != want {
		t.Errorf("door: audience %+v, want %+v", got, want)
	}
	if got, want := desk.Audience.Config(), (audience.Config{Cone: audience.DefaultCone(), Period: audience.DefaultPeriod}); got != want {
		t.Errorf("desk: audience %+v, want the defaults %+v", got, want)
	}
	// the low-light threshold reaches the pipeline (which applies it:
	// internal/pipeline TestSceneInEveryTree)
	if door.LowLight == nil || *door.LowLight != 0.3 || desk.LowLight == nil || *desk.LowLight != scene.LowLight {
		t.Errorf("low_light: door %v, desk %v; want 0.3 and the default %g", door.LowLight, desk.LowLight, scene.LowLight)
	}
	if desk.Source.Source != "http://10.0.0.6/video.mjpg" || desk.Camera != "desk" {
		t.Errorf("desk: source %q camera %q", desk.Source.Source, desk.Camera)
	}
}
