package facetrack

import (
	"testing"

	"gocv.io/x/gocv"
)

// byteModel takes bytes only: the two-pass path (letterbox to RGB bytes,
// then bytes to floats), as before BlazeFaceFiller.
type byteModel struct{ size int }

func (m byteModel) InputSize() int { return m.size }
func (m byteModel) Infer(rgb []byte) ([]float32, []float32, error) {
	return nil, nil, nil
}

func letterboxFrame(tb testing.TB) (*BlazeFace, gocv.Mat) {
	tb.Helper()
	b, err := NewBlazeFace(byteModel{256}, BlazeFaceConfig{})
	if err != nil {
		tb.Fatal(err)
	}
	return b, noiseFrame(1280, 720)
}

// The one-pass letterbox writes exactly what the two passes did.
func TestLetterboxIntoMatchesTwoPasses(t *testing.T) {
	b, frame := letterboxFrame(t)
	defer b.Close()
	defer frame.Close()
	const k, bias = 2.0 / 255, -1
	dst := make([]float32, 256*256*3)
	lb1, err := b.letterboxInto(frame, dst, k, bias)
	if err != nil {
		t.Fatal(err)
	}
	lb2, err := b.letterbox(frame)
	if err != nil {
		t.Fatal(err)
	}
	if lb1 != lb2 {
		t.Fatalf("mappings differ: %+v vs %+v", lb1, lb2)
	}
	for i, v := range b.rgb {
		if want := float32(v)*k + bias; dst[i] != want {
			t.Fatalf("value %d: %v, two passes give %v", i, dst[i], want)
		}
	}
}

// go test -tags matprofile -run '^$' -bench Letterbox -benchmem ./facetrack/
// One pass (resize, then RGB·k+bias straight into the input tensor)
// against two (RGB bytes, then bytes to floats); allocs/op must be 0.
func BenchmarkLetterboxOnePass(b *testing.B) {
	bf, frame := letterboxFrame(b)
	defer bf.Close()
	defer frame.Close()
	dst := make([]float32, 256*256*3)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := bf.letterboxInto(frame, dst, 2.0/255, -1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkLetterboxTwoPasses(b *testing.B) {
	bf, frame := letterboxFrame(b)
	defer bf.Close()
	defer frame.Close()
	dst := make([]float32, 256*256*3)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := bf.letterbox(frame); err != nil {
			b.Fatal(err)
		}
		for i, v := range bf.rgb {
			dst[i] = float32(v)*(2.0/255) - 1
		}
	}
}
