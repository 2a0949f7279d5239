package engine

import (
	"fmt"
	"math"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
)

func init() {
	registerHead(registry.HeadMesh, func(rt *Runtime, m *Manifest) (Head, error) { return NewMeshHead(rt, m) })
}

// MeshPoints is the number of facemesh landmarks.
const MeshPoints = 468

// Mesh is one facemesh result: 468 points (x, y in crop pixels scaled to
// 0..1 of the crop side, z in the same unit, relative depth) and the
// model's face-presence score (0..1).
type Mesh struct {
	P    [MeshPoints][3]float64
	Face float64
}

// MeshHead runs facemesh on aligned face crops (a crop from CropAligned with
// margin 0.25 is the 1.5× enlarged square facemesh was trained on).
//
// The mesh is the fast tier's cue source: the analyzer turns each
// sample's *Mesh into AU cues against the track's neutral baseline and
// fuses them with the classifier (cues.go), so the mesh writes no
// attribute of its own; head pose comes from the cues.
type MeshHead struct{ *FaceModel }

var _ Head = (*MeshHead)(nil)

// Name is the registry name.
func (h *MeshHead) Name() string { return registry.HeadMesh }

// Observe is Predict, one *Mesh per crop.
func (h *MeshHead) Observe(crops []facetrack.Crop) ([]any, error) {
	res, err := h.Predict(crops)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(res))
	for i := range res {
		out[i] = &res[i]
	}
	return out, nil
}

// Summarize writes nothing: the mesh's evidence reaches the tree as cues.
func (h *MeshHead) Summarize([]any, *tree.Attributes) {}

// NewMeshHead opens the facemesh manifest.
func NewMeshHead(rt *Runtime, m *Manifest) (*MeshHead, error) {
	outs := m.OutputSpecs()
	if len(outs) != 2 || outs[0].Shape[len(outs[0].Shape)-1] != 3*MeshPoints || outs[1].Shape[len(outs[1].Shape)-1] != 1 {
		return nil, fmt.Errorf("%s: not a facemesh manifest (want outputs [-1,1404] mesh then [-1,1] face flag)", m.Path)
	}
	f, err := NewFaceModel(rt, m, 0)
	if err != nil {
		return nil, err
	}
	return &MeshHead{f}, nil
}

// Predict runs every crop in one batch.
func (h *MeshHead) Predict(crops []facetrack.Crop) ([]Mesh, error) {
	out, err := h.FaceModel.Predict(crops)
	if err != nil {
		return nil, err
	}
	side := float64(h.pp.w)
	res := make([]Mesh, len(crops))
	for i := range res {
		pts := out[0][i*3*MeshPoints : (i+1)*3*MeshPoints]
		for j := range MeshPoints {
			res[i].P[j] = [3]float64{float64(pts[3*j]) / side, float64(pts[3*j+1]) / side, float64(pts[3*j+2]) / side}
		}
		res[i].Face = faceFlag(float64(out[1][i]))
	}
	return res, nil
}

// faceFlag maps the model's face-presence output to 0..1: this conversion
// of facemesh already ends in a sigmoid, so values in [0, 1] pass through;
// a raw logit (other conversions) is squashed.
func faceFlag(v float64) float64 {
	if v >= 0 && v <= 1 {
		return v
	}
	return 1 / (1 + math.Exp(-v))
}

// MediaPipe canonical face-mesh indices used by the geometric cues (the
// subject's right is the image's left).
const (
	lmRightEyeOuter, lmRightEyeInner, lmRightEyeUpper, lmRightEyeLower = 33, 133, 159, 145
	lmLeftEyeOuter, lmLeftEyeInner, lmLeftEyeUpper, lmLeftEyeLower     = 263, 362, 386, 374
	lmRightBrowInner, lmRightBrowOuter, lmRightBrowMid                 = 107, 70, 105
	lmLeftBrowInner, lmLeftBrowOuter, lmLeftBrowMid                    = 336, 300, 334
	lmMouthRight, lmMouthLeft, lmLipUpperInner, lmLipLowerInner        = 61, 291, 13, 14
	lmRightCheek, lmLeftCheek                                          = 205, 425
	lmNoseTip, lmChin, lmForehead                                      = 1, 152, 10
)

// Geometry is one frame's face geometry, every distance divided by the
// inter-ocular distance (outer eye corners) and measured in the face's own
// frame (x along the eye line, y down the face), so it does not change with
// face size, position or roll.
type Geometry struct {
	MouthWidth float64 // lip corner to lip corner
	CornerLift float64 // lip corners above the inner-lip midpoint (+ = up)
	MouthOpen  float64 // inner upper to inner lower lip
	InnerBrow  float64 // inner brow above the inner eye corners
	OuterBrow  float64 // outer brow above the outer eye corners
	BrowGap    float64 // inner brow to inner brow
	CheekToEye float64 // cheek point to lower eyelid (smaller = cheeks raised)
	EyeOpen    float64 // mean eye aspect ratio (lid gap / eye width), not IOD-scaled
	Yaw, Pitch float64 // degrees, from the mesh's 3-D eye line and face axis
	Roll       float64 // degrees, in the crop (add the crop's alignment roll)
	Valid      bool
}

// MeshGeometry measures m.
func MeshGeometry(m *Mesh) Geometry {
	p := func(i int) [3]float64 { return m.P[i] }
	ro, lo := p(lmRightEyeOuter), p(lmLeftEyeOuter)
	ex := [3]float64{lo[0] - ro[0], lo[1] - ro[1], lo[2] - ro[2]}
	iod := math.Hypot(ex[0], ex[1])
	if !(iod > 1e-3) {
		return Geometry{}
	}
	// 2-D face frame: u along the eye line, v perpendicular (down the face)
	ux, uy := ex[0]/iod, ex[1]/iod
	vx, vy := -uy, ux
	proj := func(i int) (float64, float64) {
		q := p(i)
		return (q[0]*ux + q[1]*uy) / iod, (q[0]*vx + q[1]*vy) / iod
	}
	d := func(a, b int) float64 {
		ax, ay := proj(a)
		bx, by := proj(b)
		return math.Hypot(ax-bx, ay-by)
	}
	var g Geometry
	g.Valid = true
	g.MouthWidth = d(lmMouthRight, lmMouthLeft)
	_, yr := proj(lmMouthRight)
	_, yl := proj(lmMouthLeft)
	_, yu := proj(lmLipUpperInner)
	_, yd := proj(lmLipLowerInner)
	g.CornerLift = (yu+yd)/2 - (yr+yl)/2
	g.MouthOpen = math.Max(0, yd-yu)
	_, bri := proj(lmRightBrowInner)
	_, bli := proj(lmLeftBrowInner)
	_, eri := proj(lmRightEyeInner)
	_, eli := proj(lmLeftEyeInner)
	g.InnerBrow = ((eri - bri) + (eli - bli)) / 2
	_, bro := proj(lmRightBrowOuter)
	_, blo := proj(lmLeftBrowOuter)
	_, ero := proj(lmRightEyeOuter)
	_, elo := proj(lmLeftEyeOuter)
	g.OuterBrow = ((ero - bro) + (elo - blo)) / 2
	g.BrowGap = d(lmRightBrowInner, lmLeftBrowInner)
	g.CheekToEye = (d(lmRightCheek, lmRightEyeLower) + d(lmLeftCheek, lmLeftEyeLower)) / 2
	ear := func(up, low, outer, inner int) float64 {
		w := d(outer, inner)
		if w <= 0 {
			return 0
		}
		return d(up, low) / w
	}
	g.EyeOpen = (ear(lmRightEyeUpper, lmRightEyeLower, lmRightEyeOuter, lmRightEyeInner) +
		ear(lmLeftEyeUpper, lmLeftEyeLower, lmLeftEyeOuter, lmLeftEyeInner)) / 2

	// head pose from a 3-D face frame: X along the eye line, Y from
	// forehead to chin orthogonalised against X, Z = X × Y (towards the
	// back of the head for a frontal face in image coordinates).
	X := unit(ex)
	fc := sub3(p(lmChin), p(lmForehead))
	Y := unit(sub3(fc, scale3(X, dot3(fc, X))))
	Z := cross3(X, Y)
	// rotation R = [X Y Z] (columns); yaw about Y, pitch about X, roll about Z
	g.Yaw = deg(math.Asin(clampF(-Z[0], -1, 1)))
	g.Pitch = deg(math.Atan2(Z[1], Z[2]))
	g.Roll = deg(math.Atan2(X[1], X[0]))
	return g
}

func sub3(a, b [3]float64) [3]float64 { return [3]float64{a[0] - b[0], a[1] - b[1], a[2] - b[2]} }
func scale3(a [3]float64, s float64) [3]float64 {
	return [3]float64{a[0] * s, a[1] * s, a[2] * s}
}
func dot3(a, b [3]float64) float64 { return a[0]*b[0] + a[1]*b[1] + a[2]*b[2] }
func cross3(a, b [3]float64) [3]float64 {
	return [3]float64{a[1]*b[2] - a[2]*b[1], a[2]*b[0] - a[0]*b[2], a[0]*b[1] - a[1]*b[0]}
}
func unit(a [3]float64) [3]float64 {
	n := math.Sqrt(dot3(a, a))
	if n == 0 {
		return a
	}
	return scale3(a, 1/n)
}
func deg(r float64) float64 { return r * 180 / math.Pi }
func clampF(x, lo, hi float64) float64 {
	return math.Min(hi, math.Max(lo, x))
}
