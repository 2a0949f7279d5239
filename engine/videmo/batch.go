package videmo

import (
	"errors"
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// ChoiceBatch answers several closed-set questions off prefix p in one
// decoder Run: suffixes[i] is question i's tokens, firstIDs[i] the token
// ids whose logits at its first answer position are returned (option
// letters), with that position's log-sum-exp (Answer.First, LogSumExp). The questions become the rows of a batch, left-padded to the
// longest (the pads masked out), each with its own positions after the
// prefix, so a row computes what Continue computes for it alone; the
// prefix KV is repeated per row.
//
// Why: on a GPU a question's suffix (tens of tokens) is bound by reading the
// weights, not by arithmetic, so k questions in one Run cost about one; the
// price is k copies of the prefix KV in memory for the Run.
func (r *Runner) ChoiceBatch(p *Prefix, suffixes [][]int, firstIDs [][]int) ([]*Answer, error) {
	if len(suffixes) != len(firstIDs) {
		return nil, fmt.Errorf("videmo: %d suffixes but %d option id sets", len(suffixes), len(firstIDs))
	}
	k := len(suffixes)
	if k == 0 {
		return nil, nil
	}
	if r.opts.Recompute || k == 1 {
		out := make([]*Answer, k)
		for i := range suffixes {
			a, err := r.Continue(p, suffixes[i], firstIDs[i], 0, nil)
			if err != nil {
				return nil, err
			}
			out[i] = a
		}
		return out, nil
	}
	if p.kv == nil {
		return nil, errors.New("videmo: prefix is closed")
	}
	P, S := p.Len(), 0
	for _, s := range suffixes {
		if len(s) == 0 {
			return nil, errors.New("videmo: empty question suffix")
		}
		S = max(S, len(s))
	}
	pad := int64(r.m.Tokens.EndOfText)

	// ids [k, S] left-padded; mask [k, P+S]; positions per row
	ids := make([]int64, k*S)
	mask := make([]int64, k*(P+S))
	var pos [3][]int64
	for c := range pos {
		pos[c] = make([]int64, k*S)
	}
	for i, s := range suffixes {
		off := S - len(s)
		row := ids[i*S : (i+1)*S]
		m := mask[i*(P+S) : (i+1)*(P+S)]
		for j := range P {
			m[j] = 1
		}
		tp := TextPositions(P, len(s), p.RopeDelta)
		for j := range S {
			if j < off {
				row[j] = pad
				for c := range 3 { // any position: the row's mask hides it
					pos[c][i*S+j] = tp[c][0]
				}
				continue
			}
			row[j] = int64(s[j-off])
			m[P+j] = 1
			for c := range 3 {
				pos[c][i*S+j] = tp[c][j-off]
			}
		}
	}
	idT, err := ort.NewTensor(ort.NewShape(int64(k), int64(S)), ids)
	if err != nil {
		return nil, err
	}
	defer idT.Destroy()
	embOut := []ort.Value{nil}
	if err := r.emb.run([]ort.Value{idT, r.noFeat}, embOut); err != nil {
		return nil, err
	}
	emb := embOut[0]
	defer emb.Destroy()
	maskT, err := ort.NewTensor(ort.NewShape(int64(k), int64(P+S)), mask)
	if err != nil {
		return nil, err
	}
	defer maskT.Destroy()
	var packed []int64
	shape := ort.NewShape(3, int64(k), int64(S))
	if r.posBS3 {
		shape = ort.NewShape(int64(k), int64(S), 3)
		packed = make([]int64, 3*k*S)
		for n := range k * S {
			for c := range 3 {
				packed[n*3+c] = pos[c][n]
			}
		}
	} else {
		packed = append(append(pos[0], pos[1]...), pos[2]...)
	}
	posT, err := ort.NewTensor(shape, packed)
	if err != nil {
		return nil, err
	}
	defer posT.Destroy()

	in := []ort.Value{emb, maskT, posT}
	per := r.kvHeads * P * r.hd
	for _, t := range p.kv {
		src := t.GetData()
		buf := make([]float32, k*per)
		for i := range k {
			copy(buf[i*per:], src)
		}
		pt, err := ort.NewTensor(ort.NewShape(int64(k), int64(r.kvHeads), int64(P), int64(r.hd)), buf)
		if err != nil {
			return nil, err
		}
		defer pt.Destroy()
		in = append(in, pt)
	}
	out := make([]ort.Value, 1+2*r.layers)
	if err := r.dec.run(in, out); err != nil {
		return nil, err
	}
	defer func() {
		for _, o := range out {
			if o != nil {
				o.Destroy()
			}
		}
	}()
	lg := out[0].(*ort.Tensor[float32]).GetData()
	rows := len(lg) / (k * r.vocab) // positions per row: S, or 1 for a last-position graph
	res := make([]*Answer, k)
	for i := range k {
		last := lg[((i+1)*rows-1)*r.vocab : (i+1)*rows*r.vocab] // left padding: every row ends at its last token
		res[i] = &Answer{First: make([]float32, len(firstIDs[i])), LogSumExp: logSumExp(last), Stopped: "length"}
		for j, id := range firstIDs[i] {
			res[i].First[j] = last[id]
		}
	}
	return res, nil
}
