package engine

import "github.com/edgemo/edgemo/engine/tree"

// windowGaze keeps, per sample the face mesh measured, the head pose and
// eye closure that attention is judged on (engine/audience, with the
// camera's looking cone: the analyzer is shared by cameras whose cones
// differ, so it reports the measurements and the judging happens per
// camera). Samples without a trusted mesh are left out: unknown is not
// "looking away".
func windowGaze(frames []frameCue) []tree.Gaze {
	var out []tree.Gaze
	for _, f := range frames {
		if !f.valid {
			continue
		}
		out = append(out, tree.Gaze{Time: f.t, Yaw: f.geom.Yaw, Pitch: f.geom.Pitch, Closure: f.aus.closure})
	}
	return out
}
