package engine

import (
	"math/rand"
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
