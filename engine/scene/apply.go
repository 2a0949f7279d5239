package scene

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/engine/tree"
)

// Apply puts s into t as its scene block, low_light judged by threshold
// (LowLight by default, 0: never). In low light it multiplies the
// confidences of the face levels — attributes, expression, emotion and its
// Mikels estimate — by Discount(s.Brightness, threshold) and says so
// at the end of emotion.rationale; scores and cue intensities, which are
// measurements rather than beliefs, are kept. Levels are copied before they
// change: a tiered tree shares them with the VLM tree it was merged from.
func Apply(t *tree.Tree, s tree.Scene, threshold float64) {
	Mark(&s, threshold)
	t.Scene = &s
	if !s.LowLight {
		return
	}
	f := Discount(s.Brightness, threshold)
	scale := func(c float64) float64 { return math.Round(c*f*1e4) / 1e4 }
	if a := t.Attributes; a != nil {
		c := *a
		if a.Age != nil {
			v := *a.Age
			v.Confidence = scale(v.Confidence)
			c.Age = &v
		}
		for _, p := range []**tree.LabelValue{&c.Gender, &c.Liveness} {
			if *p != nil {
				v := **p
				v.Confidence = scale(v.Confidence)
				*p = &v
			}
		}
		if len(a.Other) > 0 {
			c.Other = append([]tree.NamedValue(nil), a.Other...)
			for i := range c.Other {
				c.Other[i].Confidence = scale(c.Other[i].Confidence)
			}
		}
		t.Attributes = &c
	}
	if e := t.Expression; e != nil {
		c := *e
		c.Confidence = scale(c.Confidence)
		t.Expression = &c
	}
	var emo tree.Emotion
	if t.Emotion != nil {
		emo = *t.Emotion
	}
	emo.Confidence = scale(emo.Confidence)
	if m := emo.Mikels; m != nil {
		c := *m
		c.Confidence = scale(c.Confidence)
		emo.Mikels = &c
	}
	note := fmt.Sprintf("low light (brightness %.2f < %.2f): face confidences × %.2f", s.Brightness, threshold, f)
	if emo.Rationale != "" {
		note = emo.Rationale + "; " + note
	}
	emo.Rationale = note
	t.Emotion = &emo
}
