package facetrack

import "math"

// Kalman is a constant-velocity Kalman filter over a box in (cx, cy, a, h)
// form — centre, aspect ratio w/h, height — with velocities, the 8-dim state
// used by DeepSORT and ByteTrack. One step is one frame (dt = 1). Noise is
// proportional to the box height, with DeepSORT's weights (position 1/20,
// velocity 1/160), so the filter behaves the same for near and far faces.
//
// The zero value is not usable; start one with NewKalman.
type Kalman struct {
	Mean [8]float64    // cx, cy, a, h, vcx, vcy, va, vh
	Cov  [8][8]float64 // state covariance
}

const (
	kfStdPos = 1.0 / 20
	kfStdVel = 1.0 / 160
)

// NewKalman starts a filter at box with zero velocity and a wide velocity
// uncertainty.
func NewKalman(box Rect) *Kalman {
	k := &Kalman{}
	z := toXYAH(box)
	copy(k.Mean[:4], z[:])
	h := z[3]
	std := [8]float64{
		2 * kfStdPos * h, 2 * kfStdPos * h, 1e-2, 2 * kfStdPos * h,
		10 * kfStdVel * h, 10 * kfStdVel * h, 1e-5, 10 * kfStdVel * h,
	}
	for i, s := range std {
		k.Cov[i][i] = s * s
	}
	return k
}

// Predict advances the state by one frame: x = F x, P = F P Fᵀ + Q.
func (k *Kalman) Predict() {
	h := k.Mean[3]
	for i := 0; i < 4; i++ {
		k.Mean[i] += k.Mean[i+4]
	}
	// P = F P Fᵀ with F = [I I; 0 I], done in place blockwise:
	// rows: P[i] += P[i+4] for i<4; then columns likewise.
	p := k.Cov
	for i := 0; i < 4; i++ {
		for j := 0; j < 8; j++ {
			p[i][j] += p[i+4][j]
		}
	}
	for j := 0; j < 4; j++ {
		for i := 0; i < 8; i++ {
			p[i][j] += p[i][j+4]
		}
	}
	q := [8]float64{
		kfStdPos * h, kfStdPos * h, 1e-2, kfStdPos * h,
		kfStdVel * h, kfStdVel * h, 1e-5, kfStdVel * h,
	}
	for i, s := range q {
		p[i][i] += s * s
	}
	k.Cov = p
}

// Update corrects the state with a measured box.
func (k *Kalman) Update(box Rect) {
	z := toXYAH(box)
	h := k.Mean[3]
	r := [4]float64{kfStdPos * h, kfStdPos * h, 1e-1, kfStdPos * h}

	// S = H P Hᵀ + R (top-left 4×4 block of P plus R).
	var s [4][4]float64
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			s[i][j] = k.Cov[i][j]
		}
		s[i][i] += r[i] * r[i]
	}
	sInv, ok := inv4(s)
	if !ok {
		return // degenerate covariance: keep the prediction
	}
	// K = P Hᵀ S⁻¹ (8×4); P Hᵀ is the first 4 columns of P.
	var gain [8][4]float64
	for i := 0; i < 8; i++ {
		for j := 0; j < 4; j++ {
			var acc float64
			for l := 0; l < 4; l++ {
				acc += k.Cov[i][l] * sInv[l][j]
			}
			gain[i][j] = acc
		}
	}
	var innov [4]float64
	for i := 0; i < 4; i++ {
		innov[i] = z[i] - k.Mean[i]
	}
	for i := 0; i < 8; i++ {
		for j := 0; j < 4; j++ {
			k.Mean[i] += gain[i][j] * innov[j]
		}
	}
	// P = P − K H P  (K H P = K · first 4 rows of P).
	p := k.Cov
	for i := 0; i < 8; i++ {
		for j := 0; j < 8; j++ {
			var acc float64
			for l := 0; l < 4; l++ {
				acc += gain[i][l] * k.Cov[l][j]
			}
			p[i][j] -= acc
		}
	}
	// Keep it symmetric against rounding drift.
	for i := 0; i < 8; i++ {
		for j := i + 1; j < 8; j++ {
			m := (p[i][j] + p[j][i]) / 2
			p[i][j], p[j][i] = m, m
		}
	}
	k.Cov = p
}

// Box returns the current state as a box.
func (k *Kalman) Box() Rect { return fromXYAH(k.Mean[0], k.Mean[1], k.Mean[2], k.Mean[3]) }

// Velocity returns the centre velocity in pixels per frame.
func (k *Kalman) Velocity() (vx, vy float64) { return k.Mean[4], k.Mean[5] }

func toXYAH(b Rect) [4]float64 {
	cx, cy := b.Center()
	a := 1.0
	if b.H > 0 {
		a = b.W / b.H
	}
	return [4]float64{cx, cy, a, b.H}
}

func fromXYAH(cx, cy, a, h float64) Rect {
	h = math.Max(h, 0)
	w := math.Max(a*h, 0)
	return Rect{X: cx - w/2, Y: cy - h/2, W: w, H: h}
}

// inv4 inverts a 4×4 matrix by Gauss–Jordan elimination with partial
// pivoting; ok is false for a singular matrix.
func inv4(m [4][4]float64) (out [4][4]float64, ok bool) {
	var a [4][8]float64
	for i := 0; i < 4; i++ {
		copy(a[i][:4], m[i][:])
		a[i][4+i] = 1
	}
	for col := 0; col < 4; col++ {
		piv := col
		for r := col + 1; r < 4; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[piv][col]) {
				piv = r
			}
		}
		if math.Abs(a[piv][col]) < 1e-300 {
			return out, false
		}
		a[col], a[piv] = a[piv], a[col]
		d := a[col][col]
		for j := range a[col] {
			a[col][j] /= d
		}
		for r := 0; r < 4; r++ {
			if r == col || a[r][col] == 0 {
				continue
			}
			f := a[r][col]
			for j := range a[r] {
				a[r][j] -= f * a[col][j]
			}
		}
	}
	for i := 0; i < 4; i++ {
		copy(out[i][:], a[i][4:])
	}
	return out, true
}
