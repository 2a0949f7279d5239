package parts

import (
	"fmt"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/facetrack"
)

func (d *blazeDetector) openRegions(o Options, rt *engine.Runtime) error {
	part, _ := registry.Detectors.Get(DetectorBlazeFaceFront)
	m, err := engine.LoadManifest(o.FaceManifest(part.Manifest))
	if err != nil {
		return fmt.Errorf("detector %s: region verifier: %w", d.Name(), err)
	}
	run, err := engine.NewBlazeFaceRunner(rt, m)
	if err != nil {
		return fmt.Errorf("detector %s: region verifier: %w", d.Name(), err)
	}
	bf, err := facetrack.NewBlazeFace(run, facetrack.BlazeFaceConfig{Name: DetectorBlazeFaceFront})
	if err != nil {
		run.Close()
		return err
	}
	d.regions, d.regionsRun = bf, run
	return nil
}

// regionDetector is a blazeDetector with a region verifier.
type regionDetector struct{ *blazeDetector }

// DetectRegions implements facetrack.RegionDetector.
func (d *regionDetector) DetectRegions(img gocv.Mat, rois []facetrack.Rect) ([]facetrack.Detection, error) {
	return d.regions.DetectRegions(img, rois)
}
