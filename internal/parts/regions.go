package parts

import (
	"errors"
	"fmt"
	"log/slog"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/facetrack"
)

func (d *blazeDetector) openRegions(o Options, threads int, log *slog.Logger) error {
	part, _ := registry.Detectors.Get(DetectorBlazeFaceFront)
	m, err := engine.LoadManifest(o.FaceManifest(part.Manifest))
	if err != nil {
		return fmt.Errorf("detector %s: region verifier: %w", d.Name(), err)
	}
	run, release, err := shareRunner(o, m, threads, log)
	if err != nil {
		return fmt.Errorf("detector %s: region verifier: %w", d.Name(), err)
	}
	bf, err := facetrack.NewBlazeFace(run, facetrack.BlazeFaceConfig{Name: DetectorBlazeFaceFront})
	if err != nil {
		return errors.Join(err, release())
	}
	d.regions, d.regionsRelease = bf, release
	return nil
}

// regionDetector is a blazeDetector with a region verifier.
type regionDetector struct{ *blazeDetector }

// DetectRegions implements facetrack.RegionDetector.
func (d *regionDetector) DetectRegions(img gocv.Mat, rois []facetrack.Rect) ([]facetrack.Detection, error) {
	return d.regions.DetectRegions(img, rois)
}
