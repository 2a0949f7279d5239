package engine

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
)

// AU proxies measured from the mesh geometry, in the order trees list them.
var auCues = []struct{ Name, AU string }{
	{"lip_corner_puller", "AU12"},
	{"cheek_raiser", "AU6"},
	{"inner_brow_raiser", "AU1"},
	{"outer_brow_raiser", "AU2"},
	{"brow_lowerer", "AU4"},
	{"jaw_drop", "AU26"},
}

const (
	auOnset      = 0.3 // intensity at which a cue counts as present (onset, sustained)
	closedRatio  = 0.5 // eye aspect ratio below this fraction of the neutral one: eyes closed
	blinkMaxSecs = 0.5 // a closure shorter than this is a blink (AU45), longer is AU43
)

// neutralPrior is the geometry a track's baseline starts from: the mean of
// the 18 Megamind.avi samples the emotion head labels neutral (facemesh on
// aligned 192 px crops). A population prior, so a single image or the first
// frames of a track are measured against a typical face at rest, not
// against themselves.
var neutralPrior = Geometry{MouthWidth: 0.49, CornerLift: 0.05, MouthOpen: 0.035, InnerBrow: 0.30, OuterBrow: 0.23,
	BrowGap: 0.35, CheekToEye: 0.39, EyeOpen: 0.42, Valid: true}

// baseline is a track's running neutral geometry: it starts at
// neutralPrior and follows frames the emotion head calls neutral quickly
// (rate 0.2) and all other frames slowly (0.02), so a sustained expression
// is measured against the face at rest rather than absorbed into it.
// It also holds the track's mesh gate (trustMesh), so both start afresh
// with a new track and are forgotten with it.
type baseline struct {
	g           Geometry
	ok          bool
	meshTrusted bool
}

func (b *baseline) update(g Geometry, neutral bool) {
	if !g.Valid {
		return
	}
	if !b.ok {
		b.g, b.ok = neutralPrior, true
	}
	a := 0.02
	if neutral {
		a = 0.2
	}
	mix := func(x *float64, v float64) { *x += a * (v - *x) }
	mix(&b.g.MouthWidth, g.MouthWidth)
	mix(&b.g.CornerLift, g.CornerLift)
	mix(&b.g.MouthOpen, g.MouthOpen)
	mix(&b.g.InnerBrow, g.InnerBrow)
	mix(&b.g.OuterBrow, g.OuterBrow)
	mix(&b.g.BrowGap, g.BrowGap)
	mix(&b.g.CheekToEye, g.CheekToEye)
	mix(&b.g.EyeOpen, g.EyeOpen)
}

// frameAUs are one frame's AU intensities (0..1, in auCues order) against
// the baseline, and its eye closure (0 open as at rest, 1 shut).
type frameAUs struct {
	au      [6]float64
	closure float64
}

func ramp(delta, full float64) float64 { return clamp01(delta / full) }

// measureAUs: each proxy is the change from the neutral baseline in units
// of the inter-ocular distance, scaled so that a typical full-strength
// action reaches 1 (spans from the MediaPipe canonical face's proportions:
// a broad smile widens the mouth by ~0.12 IOD and lifts the corners ~0.06).
func measureAUs(g, b Geometry) frameAUs {
	var f frameAUs
	f.au[0] = 0.5*ramp(g.MouthWidth-b.MouthWidth, 0.12) + 0.5*ramp(g.CornerLift-b.CornerLift, 0.06)
	eyeNarrow := 0.0
	if b.EyeOpen > 0 {
		eyeNarrow = ramp(b.EyeOpen-g.EyeOpen, 0.4*b.EyeOpen)
	}
	f.au[1] = 0.6*ramp(b.CheekToEye-g.CheekToEye, 0.05) + 0.4*eyeNarrow*f.au[0] // narrowing counts with a smile only (else it is a blink)
	f.au[2] = ramp(g.InnerBrow-b.InnerBrow, 0.06)
	f.au[3] = ramp(g.OuterBrow-b.OuterBrow, 0.06)
	f.au[4] = 0.5*ramp(b.InnerBrow-g.InnerBrow, 0.05) + 0.5*ramp(b.BrowGap-g.BrowGap, 0.06)
	f.au[5] = ramp(g.MouthOpen-b.MouthOpen, 0.25)
	if b.EyeOpen > 0 {
		f.closure = clamp01(1 - g.EyeOpen/b.EyeOpen)
	}
	return f
}

// frameCue is what a window keeps of one sample for the cues.
type frameCue struct {
	t     time.Time
	aus   frameAUs
	geom  Geometry
	roll  float64 // crop alignment roll, degrees
	valid bool
}

// windowCues aggregates a window's frames: per AU the peak intensity and
// the onset (first sample at or above auOnset); eye closures split into
// blinks and eyes-closed; the sustained time of each AU above auOnset.
type windowCues struct {
	cues      []tree.Cue
	peak      map[string]float64 // by AU
	sustained map[string]time.Duration
	blinks    int
	closedFor time.Duration
	pose      *tree.HeadPose
}

func aggregateCues(frames []frameCue) windowCues {
	w := windowCues{peak: map[string]float64{}, sustained: map[string]time.Duration{}}
	var valid []frameCue
	for _, f := range frames {
		if f.valid {
			valid = append(valid, f)
		}
	}
	if len(valid) == 0 {
		return w
	}
	sort.SliceStable(valid, func(i, j int) bool { return valid[i].t.Before(valid[j].t) })
	step := func(i int) time.Duration { // time a sample stands for
		if i+1 < len(valid) {
			return valid[i+1].t.Sub(valid[i].t)
		}
		if i > 0 {
			return valid[i].t.Sub(valid[i-1].t)
		}
		return 0
	}
	for k, c := range auCues {
		var peak float64
		var onset *tree.Time
		for i, f := range valid {
			v := f.aus.au[k]
			peak = math.Max(peak, v)
			if v >= auOnset {
				if onset == nil {
					t := tree.Time(f.t)
					onset = &t
				}
				w.sustained[c.AU] += step(i)
			}
		}
		w.peak[c.AU] = peak
		w.cues = append(w.cues, tree.Cue{Name: c.Name, AU: c.AU, Intensity: round(peak, 2), Onset: onset, Evidence: tree.EvidenceLandmarks})
	}
	// eye closures: runs of samples with closure >= 1 - closedRatio
	var blinkPeak, closedPeak float64
	var blinkOnset, closedOnset *tree.Time
	for i := 0; i < len(valid); {
		if valid[i].aus.closure < 1-closedRatio {
			i++
			continue
		}
		j, peak := i, 0.0
		var dur time.Duration
		for ; j < len(valid) && valid[j].aus.closure >= 1-closedRatio; j++ {
			peak = math.Max(peak, valid[j].aus.closure)
			dur += step(j)
		}
		t := tree.Time(valid[i].t)
		if dur.Seconds() < blinkMaxSecs {
			w.blinks++
			blinkPeak = math.Max(blinkPeak, peak)
			if blinkOnset == nil {
				blinkOnset = &t
			}
		} else {
			w.closedFor += dur
			closedPeak = math.Max(closedPeak, peak)
			if closedOnset == nil {
				closedOnset = &t
			}
		}
		i = j
	}
	if w.blinks > 0 {
		w.peak["AU45"] = blinkPeak
		w.cues = append(w.cues, tree.Cue{Name: "blink", AU: "AU45", Intensity: round(blinkPeak, 2), Onset: blinkOnset, Evidence: tree.EvidenceLandmarks})
	}
	if w.closedFor > 0 {
		w.peak["AU43"] = closedPeak
		w.cues = append(w.cues, tree.Cue{Name: "eyes_closed", AU: "AU43", Intensity: round(closedPeak, 2), Onset: closedOnset, Evidence: tree.EvidenceLandmarks})
	}
	var yaw, pitch, roll float64
	for _, f := range valid {
		yaw += f.geom.Yaw
		pitch += f.geom.Pitch
		roll += f.geom.Roll + f.roll
	}
	n := float64(len(valid))
	w.pose = &tree.HeadPose{Yaw: round(clampF(yaw/n, -180, 180), 1), Pitch: round(clampF(pitch/n, -180, 180), 1), Roll: round(clampF(roll/n, -180, 180), 1)}
	return w
}

// fuse combines the classifier's window scores with the landmark cues into
// the emotion distribution: each cue pattern adds evidence to the label it
// is characteristic of (smile with cheeks: happy; brows up with jaw drop:
// surprise; brows lowered: anger; inner brows up without a smile: sadness),
// then the scores are renormalised. Weights are small (<= 0.3) so the
// classifier still dominates when it is confident.
func fuse(labels []string, mean []float64, w windowCues) []float64 {
	out := append([]float64(nil), mean...)
	if len(w.peak) == 0 {
		return out
	}
	add := func(label string, v float64) {
		for i, l := range labels {
			if l == label {
				out[i] += v
			}
		}
	}
	au := w.peak
	add("happy", 0.3*au["AU12"]*(0.5+0.5*au["AU6"]))
	add("surprise", 0.2*math.Max(au["AU1"], au["AU2"])*au["AU26"])
	add("angry", 0.2*au["AU4"])
	add("sad", 0.1*au["AU1"]*(1-au["AU12"]))
	var s float64
	for _, v := range out {
		s += v
	}
	for i := range out {
		out[i] /= s
	}
	return out
}

// valenceArousal estimates valence (-1..1) and arousal (-1..1, 0 = calm
// baseline) from the fused scores and the cues.
func valenceArousal(labels []string, p []float64, w windowCues) (float64, float64) {
	score := map[string]float64{}
	for i, l := range labels {
		score[l] = p[i]
	}
	val := score["happy"] + 0.5*score["surprise"]*w.peak["AU12"] - score["sad"] - score["angry"] - score["disgust"] - 0.8*score["fear"]
	val += 0.3 * (w.peak["AU12"] - w.peak["AU4"])
	ar := score["surprise"] + score["fear"] + score["angry"] + 0.5*score["happy"] - 0.5*score["neutral"] - 0.5*score["sad"]
	ar += 0.3*math.Max(w.peak["AU26"], math.Max(w.peak["AU1"], w.peak["AU2"])) - 0.3*w.peak["AU43"]
	return round(clampF(val, -1, 1), 2), round(clampF(ar, -1, 1), 2)
}

// rationale states the evidence in a short sentence: the classifier's
// verdict, then the strongest cues with their intensities and durations.
func rationale(label string, votes, frames int, p float64, w windowCues) string {
	parts := []string{fmt.Sprintf("%s in %d of %d frames (p %.2f)", label, votes, frames, p)}
	if w.peak["AU12"] >= auOnset {
		s := fmt.Sprintf("smile (AU12 %.1f)", w.peak["AU12"])
		if d := w.sustained["AU12"]; d > 0 {
			s += fmt.Sprintf(" sustained %.1f s", d.Seconds())
		}
		if w.peak["AU6"] >= auOnset {
			s += ", cheeks raised"
		}
		parts = append(parts, s)
	}
	if b := math.Max(w.peak["AU1"], w.peak["AU2"]); b >= auOnset {
		parts = append(parts, fmt.Sprintf("brows raised (AU1/AU2 %.1f)", b))
	}
	if w.peak["AU4"] >= auOnset {
		parts = append(parts, fmt.Sprintf("brows lowered (AU4 %.1f)", w.peak["AU4"]))
	}
	if w.peak["AU26"] >= auOnset {
		parts = append(parts, fmt.Sprintf("jaw dropped (AU26 %.1f)", w.peak["AU26"]))
	}
	if w.blinks > 0 {
		parts = append(parts, fmt.Sprintf("%d blink(s)", w.blinks))
	}
	if w.closedFor > 0 {
		parts = append(parts, fmt.Sprintf("eyes closed %.1f s", w.closedFor.Seconds()))
	}
	if len(parts) == 1 && len(w.peak) > 0 {
		parts = append(parts, "no facial action above 0.3")
	}
	return strings.Join(parts, "; ")
}
