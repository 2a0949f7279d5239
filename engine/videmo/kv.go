package videmo

import ort "github.com/yalue/onnxruntime_go"

// ensureKV makes the ping-pong KV buffers hold n tokens.
func (r *Runner) ensureKV(n int) {
	if n <= r.kvCap {
		return
	}
	r.carry.destroy() // views point into the old buffers
	per := r.kvHeads * n * r.hd
	for b := range 2 {
		r.kvBuf[b] = make([][]float32, 2*r.layers)
		for i := range r.kvBuf[b] {
			r.kvBuf[b][i] = make([]float32, per)
		}
	}
	r.kvCap = n
}

// kvView is one ping-pong buffer seen as a cache of length T: the
// 2·layers tensors a decoder step reads as past or writes as present.
type kvView struct {
	buf, T int
	ts     []*ort.Tensor[float32]
}

func (v *kvView) bind(dst []ort.Value) {
	for i, t := range v.ts {
		dst[i] = t
	}
}

func (v *kvView) destroy() {
	for _, t := range v.ts {
		t.Destroy()
	}
	v.ts = nil
}

// view returns buffer buf viewed at length T, taking the carried view of
// the last step when it is that one.
func (r *Runner) view(buf, T int) (kvView, error) {
	if c := r.carry; c.ts != nil && c.buf == buf && c.T == T {
		r.carry = kvView{}
		return c, nil
	}
	v := kvView{buf: buf, T: T, ts: make([]*ort.Tensor[float32], 0, 2*r.layers)}
	shape := ort.NewShape(1, int64(r.kvHeads), int64(T), int64(r.hd))
	for i := range 2 * r.layers {
		t, err := ort.NewTensor(shape, r.kvBuf[buf][i])
		if err != nil {
			v.destroy()
			return kvView{}, err
		}
		v.ts = append(v.ts, t)
	}
	return v, nil
}

// keep makes v the carried view, dropping the one before.
func (r *Runner) keep(v kvView) {
	r.carry.destroy()
	r.carry = v
}
