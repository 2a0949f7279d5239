package engine

import (
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
)

// BenchmarkEmotionHead measures Predict (preprocessing + one ORT Run) per
// crop at batch 1 and 16, CPU provider, 1 intra-op thread.
func BenchmarkEmotionHead(b *testing.B) {
	crops, _ := faceCrops(b, "astronaut.png", 0.1, 16)
	h := newTestHead(b)
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch%d", n), func(b *testing.B) {
			batch := crops[:n]
			if _, err := h.Predict(batch); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.Predict(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n)/1e6, "ms/crop")
		})
	}
}

// BenchmarkFaceModels measures Predict per crop for each face head's model
// (batch 1, CPU provider, one intra-op thread): the cost the heads table in
// the README quotes.
//
//	go test ./engine -run '^$' -bench FaceModels
func BenchmarkFaceModels(b *testing.B) {
	crops, _ := faceCrops(b, "astronaut.png", 0.25, 1)
	for _, name := range []string{"emotion", "facemesh", "faceres", "antispoof"} {
		f, err := NewFaceModel(newTestRuntime(b, quietLogger()), faceManifest(b, name), 1)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := f.Predict(crops); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e6, "ms/crop")
		})
	}
}

// BenchmarkPreprocess is the Go share of Predict: BGR crop -> 64x64 gray input.
func BenchmarkPreprocess(b *testing.B) {
	crops, _ := faceCrops(b, "astronaut.png", 0.1, 1)
	h := newTestHead(b)
	dst := make([]float32, h.pp.size())
	for b.Loop() {
		if err := h.pp.run(crops[0], dst); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPreprocessHeads is each face head's input conversion from a
// 192-pixel crop (the pipeline's crop size): the mesh's same-size copy,
// faceres' and antispoof's colour resizes, the emotion head's grey one.
func BenchmarkPreprocessHeads(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	crop := facetrack.Crop{W: 192, H: 192, Pix: make([]byte, 192*192*3)}
	for i := range crop.Pix {
		crop.Pix[i] = byte(rng.Intn(256))
	}
	for _, name := range []string{"facemesh", "faceres", "antispoof", "emotion"} {
		b.Run(name, func(b *testing.B) {
			pp, err := newPreprocessor(faceManifest(b, name))
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]float32, pp.size())
			for b.Loop() {
				if err := pp.run(crop, dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestConcurrentUse: runtimes opened and closed from several goroutines
// share one environment, and one head serves concurrent Predict calls.
func TestConcurrentUse(t *testing.T) {
	checkGoroutines(t)
	crops, _ := faceCrops(t, "astronaut.png", 0.1, 8)
	h := newTestHead(t) // holds the environment for the whole test
	want, err := h.Predict(crops[:1])
	if err != nil {
		t.Fatal(err)
	}
	lib := testenv.ORTLib(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 5 {
				if i%2 == 0 { // open and close extra runtimes
					rt, err := NewRuntime(RuntimeConfig{LibraryPath: lib, Providers: []string{"cpu"}, Logger: quietLogger()})
					if err != nil {
						errs <- err
						return
					}
					rt.Close()
					continue
				}
				batch := []facetrack.Crop{crops[0]}
				batch = append(batch, crops[1:1+(i+j)%7]...)
				got, err := h.Predict(batch)
				if err != nil {
					errs <- err
					return
				}
				if got[0][3] != want[0][3] {
					errs <- fmt.Errorf("batch %d: p(happy) %v, alone %v", len(batch), got[0][3], want[0][3])
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
