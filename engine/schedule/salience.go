package schedule

import (
	"math"

	"github.com/edgemo/edgemo/window"
)

// SalienceSide is the face side, in source pixels, at and above which a face
// counts as fully salient: VidEmo sees a square crop of about twice the face
// box at 308×308 pixels (VIDEO_MAX_PIXELS = 100352), so a face of 154 px or
// more reaches the model at full resolution; a smaller one is upsampled and
// the model sees fewer real pixels of it, in proportion to its area.
const SalienceSide = 154.0

// Salience is the face salience of w in [0, 1]: the mean over its samples of
//
//	score × min(1, box area / SalienceSide²)
//
// — the detector's confidence that it is a face, times the fraction of the
// model's resolution the face fills. The mean over the window keeps one
// jittery box or one low-score frame from deciding. 0 for a window without
// samples.
func Salience(w window.Window) float64 {
	if len(w.Samples) == 0 {
		return 0
	}
	var sum float64
	for _, s := range w.Samples {
		area := s.Box.Area()
		if math.IsNaN(area) {
			area = 0
		}
		sum += clamp01(float64(s.Score)) * min(1, area/(SalienceSide*SalienceSide))
	}
	return clamp01(sum / float64(len(w.Samples)))
}
