package engine

import (
	"fmt"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/facetrack"
)

// FaceModel is one multi-output ONNX model of the face tier (detector, mesh,
// attribute and liveness heads): BGR crops in, one flat float32 slice per
// manifest output out. Crops are preprocessed per the manifest and batched
// into one Run per MaxBatch chunk (a model whose batch axis is fixed at 1
// runs one crop per Run). Safe for concurrent use (calls are serialised:
// they share the input tensors).
type FaceModel struct {
	m        *Manifest
	sess     *Session
	pp       *preprocessor
	outs     []OutputSpec
	outSize  []int // floats per item, per output
	maxBatch int

	mu      sync.Mutex
	tensors map[int]*multiIO
	order   []int

	onRun func(n int) // test hook: items per Run
}

type multiIO struct {
	in   *ort.Tensor[float32]
	outs []*ort.Tensor[float32]
	vals []ort.Value // outs as ort.Values, for Run
	data [][]float32 // outs' data, for RunOne
}

func (t *multiIO) destroy() {
	t.in.Destroy()
	for _, o := range t.outs {
		o.Destroy()
	}
}

// NewFaceModel opens a session for m on rt. maxBatch <= 0 means 32.
func NewFaceModel(rt *Runtime, m *Manifest, maxBatch int) (*FaceModel, error) {
	pp, err := newPreprocessor(m)
	if err != nil {
		return nil, err
	}
	if maxBatch <= 0 {
		maxBatch = 32
	}
	if m.Input.Shape[0] > 0 {
		maxBatch = int(m.Input.Shape[0]) // fixed batch axis (BlazeFace: 1)
	}
	f := &FaceModel{m: m, pp: pp, outs: m.OutputSpecs(), maxBatch: maxBatch, tensors: map[int]*multiIO{}}
	for _, o := range f.outs {
		n := 1
		for _, d := range o.Shape[1:] {
			n *= int(d)
		}
		f.outSize = append(f.outSize, n)
	}
	s, err := rt.NewSession(m)
	if err != nil {
		return nil, err
	}
	f.sess = s
	return f, nil
}

// Share is another FaceModel on f's session, with tensors and a lock of
// its own: the two run in parallel while the weights and the session's
// memory are held once. Each is closed on its own; the session goes with
// the last.
func (f *FaceModel) Share() (*FaceModel, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sess == nil {
		return nil, fmt.Errorf("%s: model is closed", f.m.Name)
	}
	pp, err := newPreprocessor(f.m) // it keeps per-crop scratch
	if err != nil {
		return nil, err
	}
	return &FaceModel{m: f.m, sess: f.sess.share(), pp: pp, outs: f.outs, outSize: f.outSize, maxBatch: f.maxBatch, tensors: map[int]*multiIO{}}, nil
}

// Manifest is the model's manifest.
func (f *FaceModel) Manifest() *Manifest { return f.m }

// Provider is the ORT execution provider the session runs on.
func (f *FaceModel) Provider() string { return f.sess.Provider }

// Ref is the manifest's "<name>@<sha prefix>".
func (f *FaceModel) Ref() string { return f.m.Ref() }

// InputSize is the model's input (height, width).
func (f *FaceModel) InputSize() (int, int) { return f.pp.h, f.pp.w }

// Predict preprocesses crops and runs them; out[o] holds len(crops) rows of
// output o, each as many floats as its shape holds after the batch axis.
func (f *FaceModel) Predict(crops []facetrack.Crop) ([][]float32, error) {
	return f.RunInputs(len(crops), func(i int, dst []float32) error {
		if err := f.pp.run(crops[i], dst); err != nil {
			return fmt.Errorf("crop %d: %w", i, err)
		}
		return nil
	})
}

// RunInputs runs n items whose inputs fill writes (dst has the model's input
// size per item) and returns the outputs as Predict does.
func (f *FaceModel) RunInputs(n int, fill func(i int, dst []float32) error) ([][]float32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sess == nil {
		return nil, fmt.Errorf("%s: model is closed", f.m.Name)
	}
	out := make([][]float32, len(f.outs))
	for o := range out {
		out[o] = make([]float32, 0, n*f.outSize[o])
	}
	sz := f.pp.size()
	for start := 0; start < n; start += f.maxBatch {
		k := min(f.maxBatch, n-start)
		t, err := f.ioFor(k)
		if err != nil {
			return nil, err
		}
		in := t.in.GetData()
		for i := range k {
			if err := fill(start+i, in[i*sz:(i+1)*sz]); err != nil {
				return nil, err
			}
		}
		if f.onRun != nil {
			f.onRun(k)
		}
		vals := make([]ort.Value, len(t.outs))
		for i, o := range t.outs {
			vals[i] = o
		}
		if err := f.sess.Run([]ort.Value{t.in}, vals); err != nil {
			return nil, fmt.Errorf("%s: run: %w", f.sess.Model, err)
		}
		for o, ot := range t.outs {
			out[o] = append(out[o], ot.GetData()[:k*f.outSize[o]]...)
		}
	}
	return out, nil
}

// RunOne runs one item whose input fill writes in place and hands use the
// outputs in place (valid only during use): once the tensors exist it
// allocates nothing, which the detector, run on every frame, relies on.
func (f *FaceModel) RunOne(fill func(dst []float32) error, use func(outs [][]float32) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sess == nil {
		return fmt.Errorf("%s: model is closed", f.m.Name)
	}
	t, err := f.ioFor(1)
	if err != nil {
		return err
	}
	if err := fill(t.in.GetData()[:f.pp.size()]); err != nil {
		return err
	}
	if f.onRun != nil {
		f.onRun(1)
	}
	if t.vals == nil {
		for i, o := range t.outs {
			t.vals = append(t.vals, o)
			t.data = append(t.data, o.GetData()[:f.outSize[i]])
		}
	}
	if err := f.sess.Run([]ort.Value{t.in}, t.vals); err != nil {
		return fmt.Errorf("%s: run: %w", f.sess.Model, err)
	}
	return use(t.data)
}

// maxCachedBatchShapes bounds the tensor sets kept for reuse, one per batch
// size seen (least recently used goes first).
const maxCachedBatchShapes = 4

// ioFor returns input/output tensors for batch n, reusing them when the
// batch size repeats (a window's new samples every stride is the common case).
func (f *FaceModel) ioFor(n int) (*multiIO, error) {
	if t, ok := f.tensors[n]; ok {
		f.touch(n)
		return t, nil
	}
	shape := append([]int64{int64(n)}, f.m.Input.Shape[1:]...)
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(shape...))
	if err != nil {
		return nil, fmt.Errorf("%s: input tensor %v: %w", f.m.Name, shape, err)
	}
	t := &multiIO{in: in}
	for _, o := range f.outs {
		os := append([]int64{int64(n)}, o.Shape[1:]...)
		ot, err := ort.NewEmptyTensor[float32](ort.NewShape(os...))
		if err != nil {
			t.destroy()
			return nil, fmt.Errorf("%s: output tensor %v: %w", f.m.Name, os, err)
		}
		t.outs = append(t.outs, ot)
	}
	f.tensors[n] = t
	f.order = append(f.order, n)
	if len(f.order) > maxCachedBatchShapes {
		old := f.order[0]
		f.order = f.order[1:]
		f.tensors[old].destroy()
		delete(f.tensors, old)
	}
	return t, nil
}

func (f *FaceModel) touch(n int) {
	for i, k := range f.order {
		if k == n {
			f.order = append(append(f.order[:i:i], f.order[i+1:]...), n)
			return
		}
	}
}

// Close frees the session and tensors; closing twice is a no-op. It does
// not close the Runtime.
func (f *FaceModel) Close() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, t := range f.tensors {
		t.destroy()
	}
	f.tensors, f.order = map[int]*multiIO{}, nil
	if f.sess == nil {
		return nil
	}
	err := f.sess.Close()
	f.sess = nil
	return err
}
