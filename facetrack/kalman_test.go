package facetrack

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestKalmanConstantVelocity(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	truth := func(k int) Rect {
		return Rect{X: 100 + 6*float64(k), Y: 300 - 2.5*float64(k), W: 80, H: 100 + 0.2*float64(k)}
	}
	noisy := func(r Rect) Rect {
		r.X += rng.NormFloat64() * 0.7
		r.Y += rng.NormFloat64() * 0.7
		return r
	}
	kf := NewKalman(noisy(truth(0)))
	var early, late float64
	for k := 1; k <= 40; k++ {
		kf.Predict()
		px, py := kf.Box().Center()
		tx, ty := truth(k).Center()
		e := math.Hypot(px-tx, py-ty)
		if k <= 3 {
			early += e / 3
		}
		if k > 30 {
			late += e / 10
		}
		kf.Update(noisy(truth(k)))
	}
	t.Logf("one-step prediction error: first 3 frames %.2f px, last 10 frames %.2f px", early, late)
	if !(late < early/3) || late > 2.5 {
		t.Fatalf("prediction error did not shrink: early %.2f px, late %.2f px", early, late)
	}
	if vx, vy := kf.Velocity(); math.Abs(vx-6) > 0.5 || math.Abs(vy+2.5) > 0.5 {
		t.Fatalf("velocity estimate (%.2f, %.2f), want (6, -2.5)", vx, vy)
	}

	// No measurements: the box keeps moving at the learnt velocity and the
	// uncertainty grows every step.
	prevVar := kf.Cov[0][0]
	for k := 41; k <= 50; k++ {
		kf.Predict()
		if kf.Cov[0][0] <= prevVar {
			t.Fatalf("step %d: position variance %.3f did not grow from %.3f", k, kf.Cov[0][0], prevVar)
		}
		prevVar = kf.Cov[0][0]
	}
	px, py := kf.Box().Center()
	tx, ty := truth(50).Center()
	if e := math.Hypot(px-tx, py-ty); e > 8 {
		t.Fatalf("after 10 predict-only steps the centre is %.1f px off (%.1f,%.1f vs %.1f,%.1f)", e, px, py, tx, ty)
	}
	// A new measurement pulls it back.
	kf.Predict()
	kf.Update(truth(51))
	px, py = kf.Box().Center()
	tx, ty = truth(51).Center()
	if e := math.Hypot(px-tx, py-ty); e > 2 {
		t.Fatalf("after re-measurement the centre is %.1f px off", e)
	}
}

func TestInv4(t *testing.T) {
	m := [4][4]float64{{4, 1, 0, 2}, {1, 3, 0.5, 0}, {0, 0.5, 2, 1}, {2, 0, 1, 5}}
	inv, ok := inv4(m)
	if !ok {
		t.Fatal("invertible matrix reported singular")
	}
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			var s float64
			for k := 0; k < 4; k++ {
				s += m[i][k] * inv[k][j]
			}
			want := 0.0
			if i == j {
				want = 1
			}
			if math.Abs(s-want) > 1e-12 {
				t.Fatalf("M·M⁻¹[%d][%d] = %g", i, j, s)
			}
		}
	}
	if _, ok := inv4([4][4]float64{}); ok {
		t.Fatal("zero matrix reported invertible")
	}
}
