package daemon

import (
	"testing"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/config"
)

// Adaptive detection and the motion gate are on by default and every key
// of theirs reaches the camera's pipeline.
func TestScheduleConfigReachesPipeline(t *testing.T) {
	cfg, err := config.Parse("test.yaml", []byte(`
cameras:
  door:
    source: rtsp://10.0.0.5/stream
    detect_every: 2
    detect_max_every: 12
    detect_region_every: 3
    motion_threshold: 0.01
    motion_outside: 0.2
  desk:
    source: rtsp://10.0.0.6/stream
  hall:
    source: rtsp://10.0.0.7/stream
    detect_adaptive: false
    motion_gate: false
`))
	if err != nil {
		t.Fatal(err)
	}
	sched := func(name string) facetrack.ScheduleConfig {
		return (&camera{name: name, cfg: cfg.Cameras[name]}).pipelineConfig(cameraDeps{}).Schedule
	}
	door := sched("door")
	if !door.Adaptive || !door.Motion || door.MaxEvery != 12 || door.RegionEvery != 3 || door.MotionThreshold != 0.01 || door.MotionOutside != 0.2 {
		t.Errorf("door: %+v", door)
	}
	desk := sched("desk")
	if !desk.Adaptive || !desk.Motion || desk.MaxEvery != config.DefaultDetectMaxEvery || desk.RegionEvery != config.DefaultDetectRegionEvery ||
		desk.MotionThreshold != config.DefaultMotionThreshold || desk.MotionOutside != config.DefaultMotionOutside {
		t.Errorf("desk (defaults): %+v", desk)
	}
	if hall := sched("hall"); hall.Adaptive || hall.Motion {
		t.Errorf("hall: adaptive %v motion %v, want both off", hall.Adaptive, hall.Motion)
	}
	// The pipeline's scheduler takes the values (none is out of its range).
	for _, n := range []string{"door", "desk", "hall"} {
		s, err := facetrack.NewScheduler(sched(n))
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		s.Close()
	}
}
