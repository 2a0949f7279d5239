package engine

import (
	"math/rand"
	"runtime"
	"testing"

	"github.com/edgemo/edgemo/facetrack"
)

// TestPreprocessIdentitySize: a crop of the input's own size (the mesh's
// 192 on 192, the pipeline's crop size) skips the bilinear pass, and gives
// the same floats, bit for bit, as that pass would.
func TestPreprocessIdentitySize(t *testing.T) {
	pp, err := newPreprocessor(faceManifest(t, "facemesh"))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewSource(1))
	crop := facetrack.Crop{W: pp.w, H: pp.h, Pix: make([]byte, pp.w*pp.h*3)}
	for i := range crop.Pix {
		crop.Pix[i] = byte(rng.Intn(256))
	}
	fast := make([]float32, pp.size())
	if err := pp.run(crop, fast); err != nil {
		t.Fatal(err)
	}
	slow := make([]float32, pp.size())
	pp.bilinear(crop, slow) // the taps are this crop's, from run
	for i := range fast {
		if fast[i] != slow[i] {
			t.Fatalf("value %d: %v without the resize, %v with it", i, fast[i], slow[i])
		}
	}
}

// perTap is the bilinear resize as TF.js's resizeBilinear writes it: four
// converted taps a value, blended across then down. bilinear computes each
// row's blend across once; it must give these floats.
func perTap(pp *preprocessor, crop facetrack.Crop) []float32 {
	out := make([]float32, pp.size())
	off, sc := pp.p.Offset, pp.p.Scale
	for y, ty := range pp.ry {
		r0, r1 := ty.i0*crop.W, ty.i1*crop.W
		for x, tx := range pp.rx {
			for ch := 0; ch < pp.c; ch++ {
				tl, tr := pp.at(crop.Pix, r0+tx.i0, ch), pp.at(crop.Pix, r0+tx.i1, ch)
				bl, br := pp.at(crop.Pix, r1+tx.i0, ch), pp.at(crop.Pix, r1+tx.i1, ch)
				top := tl + (tr-tl)*tx.f
				bot := bl + (br-bl)*tx.f
				v := float32((top + (bot-top)*ty.f + off) * sc)
				if pp.nchw {
					out[(ch*pp.h+y)*pp.w+x] = v
				} else {
					out[(y*pp.w+x)*pp.c+ch] = v
				}
			}
		}
	}
	return out
}

// TestBilinearIsPerTap: for every head, for crops smaller, larger and of
// the input's size, of odd shapes, with each of TF.js's coordinate flags
// and in both layouts, the separable resize gives the per-tap formula's
// floats. Bit for bit on amd64, whose Go compiler does not fuse
// multiply-adds; within float32 rounding where it may (arm64).
func TestBilinearIsPerTap(t *testing.T) {
	rng := rand.New(rand.NewSource(2))
	tol := float32(0)
	if runtime.GOARCH != "amd64" {
		tol = 1e-6
	}
	for _, name := range []string{"facemesh", "faceres", "antispoof", "emotion"} {
		m := faceManifest(t, name)
		for _, flags := range [][2]bool{{false, false}, {true, false}, {false, true}} {
			for _, layout := range []string{m.Input.Layout, "NCHW"} {
				mm := *m
				mm.Preprocessing.AlignCorners, mm.Preprocessing.HalfPixelCenters = flags[0], flags[1]
				if layout == "NCHW" && m.Input.Layout != "NCHW" { // the same input, channels first
					s := m.Input.Shape
					mm.Input.Layout, mm.Input.Shape = "NCHW", []int64{s[0], s[3], s[1], s[2]}
				}
				pp, err := newPreprocessor(&mm)
				if err != nil {
					t.Fatal(err)
				}
				for _, sz := range [][2]int{{192, 192}, {pp.w, pp.h}, {37, 53}, {300, 211}, {1, 1}, {2, 700}} {
					crop := facetrack.Crop{W: sz[0], H: sz[1], Pix: make([]byte, sz[0]*sz[1]*3)}
					for i := range crop.Pix {
						crop.Pix[i] = byte(rng.Intn(256))
					}
					got := make([]float32, pp.size())
					if err := pp.run(crop, got); err != nil {
						t.Fatal(err)
					}
					want := perTap(pp, crop)
					for i := range want {
						if d := got[i] - want[i]; d > tol || d < -tol {
							t.Fatalf("%s %s align=%v half=%v crop %dx%d: value %d is %v, the per-tap formula gives %v",
								name, layout, flags[0], flags[1], sz[0], sz[1], i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}
