package engine

import (
	"errors"
	"fmt"
	"math"
	"sync"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/facetrack"
)

// HeadOption configures an EmotionHead.
type HeadOption func(*EmotionHead)

// WithMaxBatch bounds how many crops go into one Run (default 32); larger
// calls are split.
func WithMaxBatch(n int) HeadOption {
	return func(h *EmotionHead) {
		if n > 0 {
			h.maxBatch = n
		}
	}
}

// EmotionHead is the fast per-frame expression classifier: crops in,
// per-crop class probabilities over the manifest's labels out. Safe for
// concurrent use (calls are serialised: they share the input tensors).
type EmotionHead struct {
	m        *Manifest
	sess     *Session
	pp       *preprocessor
	maxBatch int

	mu      sync.Mutex
	tensors map[int]*ioTensors // by batch size, reused across calls
	order   []int              // LRU of tensors' keys

	onPredict func(n int) // test hook: crops per Predict
}

type ioTensors struct {
	in, out *ort.Tensor[float32]
}

const maxCachedBatchShapes = 4

// NewEmotionHead opens a session for the manifest's model on rt.
func NewEmotionHead(rt *Runtime, m *Manifest, opts ...HeadOption) (*EmotionHead, error) {
	pp, err := newPreprocessor(m)
	if err != nil {
		return nil, err
	}
	switch m.Output.Activation {
	case "softmax", "logits", "":
	default:
		return nil, fmt.Errorf("%s: output.activation %q: want softmax (applied in the graph) or logits", m.Path, m.Output.Activation)
	}
	s, err := rt.NewSession(m)
	if err != nil {
		return nil, err
	}
	h := &EmotionHead{m: m, sess: s, pp: pp, maxBatch: 32, tensors: map[int]*ioTensors{}}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// Labels are the output classes, in order.
func (h *EmotionHead) Labels() []string { return h.m.Output.Labels }

// Provider is the ORT execution provider the session runs on.
func (h *EmotionHead) Provider() string { return h.sess.Provider }

// Ref is the manifest's "<name>@<sha prefix>".
func (h *EmotionHead) Ref() string { return h.m.Ref() }

// Manifest is the model's manifest.
func (h *EmotionHead) Manifest() *Manifest { return h.m }

// Predict returns one probability vector (len(Labels())) per crop. Crops are
// BGR (facetrack.Crop); all of them go into one Run per WithMaxBatch chunk.
func (h *EmotionHead) Predict(crops []facetrack.Crop) ([][]float32, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sess == nil {
		return nil, errors.New("emotion head is closed")
	}
	if h.onPredict != nil {
		h.onPredict(len(crops))
	}
	out := make([][]float32, 0, len(crops))
	for start := 0; start < len(crops); start += h.maxBatch {
		chunk := crops[start:min(start+h.maxBatch, len(crops))]
		probs, err := h.run(chunk, start)
		if err != nil {
			return nil, err
		}
		out = append(out, probs...)
	}
	return out, nil
}

func (h *EmotionHead) run(crops []facetrack.Crop, base int) ([][]float32, error) {
	n := len(crops)
	t, err := h.ioFor(n)
	if err != nil {
		return nil, err
	}
	in := t.in.GetData()
	sz := h.pp.size()
	for i, c := range crops {
		if err := h.pp.run(c, in[i*sz:(i+1)*sz]); err != nil {
			return nil, fmt.Errorf("crop %d: %w", base+i, err)
		}
	}
	if err := h.sess.Run([]ort.Value{t.in}, []ort.Value{t.out}); err != nil {
		return nil, fmt.Errorf("%s: run: %w", h.sess.Model, err)
	}
	k := len(h.m.Output.Labels)
	data := t.out.GetData()
	res := make([][]float32, n)
	flat := make([]float32, n*k) // one allocation for all rows
	for i := range res {
		res[i] = flat[i*k : (i+1)*k : (i+1)*k]
		copy(res[i], data[i*k:(i+1)*k])
		if h.m.Output.Activation == "logits" {
			softmax(res[i])
		}
	}
	return res, nil
}

// ioFor returns input/output tensors for batch n, reusing them when the
// batch size repeats (a window of 16 crops every stride is the common case).
func (h *EmotionHead) ioFor(n int) (*ioTensors, error) {
	if t, ok := h.tensors[n]; ok {
		h.touch(n)
		return t, nil
	}
	shape := append([]int64{int64(n)}, h.m.Input.Shape[1:]...)
	in, err := ort.NewEmptyTensor[float32](ort.NewShape(shape...))
	if err != nil {
		return nil, fmt.Errorf("input tensor %v: %w", shape, err)
	}
	out, err := ort.NewEmptyTensor[float32](ort.NewShape(int64(n), int64(len(h.m.Output.Labels))))
	if err != nil {
		in.Destroy()
		return nil, fmt.Errorf("output tensor: %w", err)
	}
	t := &ioTensors{in: in, out: out}
	h.tensors[n] = t
	h.order = append(h.order, n)
	if len(h.order) > maxCachedBatchShapes {
		old := h.order[0]
		h.order = h.order[1:]
		h.tensors[old].destroy()
		delete(h.tensors, old)
	}
	return t, nil
}

func (h *EmotionHead) touch(n int) {
	for i, k := range h.order {
		if k == n {
			h.order = append(append(h.order[:i:i], h.order[i+1:]...), n)
			return
		}
	}
}

func (t *ioTensors) destroy() {
	t.in.Destroy()
	t.out.Destroy()
}

// Close frees the session and tensors. It does not close the Runtime.
func (h *EmotionHead) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, t := range h.tensors {
		t.destroy()
	}
	h.tensors, h.order = map[int]*ioTensors{}, nil
	err := h.sess.Close()
	h.sess = nil
	return err
}

func softmax(v []float32) {
	m := float32(math.Inf(-1))
	for _, x := range v {
		m = max(m, x)
	}
	var s float64
	for i, x := range v {
		e := math.Exp(float64(x - m))
		v[i] = float32(e)
		s += e
	}
	for i := range v {
		v[i] = float32(float64(v[i]) / s)
	}
}
