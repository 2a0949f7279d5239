package videmo

import (
	"fmt"
	"os"
	"strings"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/engine"
)

// session is one multi-input ORT session. engine.Runtime.NewSession opens
// single-input/single-output models only, so the runner opens its graphs
// itself, in the environment the runtime loaded, with the same provider
// order and fallback (tried in order, each failure logged).
type session struct {
	s        *ort.DynamicAdvancedSession
	path     string
	provider string
	ins      []ort.InputOutputInfo // in the order Run takes them
	outs     []ort.InputOutputInfo

	runs    int
	runTime time.Duration // summed wall time inside Run
}

func (s *session) run(in, out []ort.Value) error {
	t0 := time.Now()
	err := s.s.Run(in, out)
	s.runTime += time.Since(t0)
	s.runs++
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	return nil
}

func (s *session) close() error {
	if s == nil || s.s == nil {
		return nil
	}
	err := s.s.Destroy()
	s.s = nil
	return err
}

// graphInfo reads a graph's declared inputs and outputs.
func graphInfo(path string) (ins, outs []ort.InputOutputInfo, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("%s: missing; run scripts/models.sh", path)
	}
	ins, outs, err = ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: not a loadable ONNX model: %w", path, err)
	}
	return ins, outs, nil
}

func findIO(list []ort.InputOutputInfo, name string) *ort.InputOutputInfo {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

func ioNames(list []ort.InputOutputInfo) string {
	var s []string
	for _, x := range list {
		s = append(s, x.String())
	}
	return strings.Join(s, ", ")
}

// openSession opens path with the named inputs/outputs (in that order)
// through the runtime, which tries its providers in order.
func openSession(rt *engine.Runtime, path string, ins, outs []ort.InputOutputInfo, inNames, outNames []string) (*session, error) {
	var inInfo, outInfo []ort.InputOutputInfo
	for _, n := range inNames {
		inInfo = append(inInfo, *findIO(ins, n))
	}
	for _, n := range outNames {
		outInfo = append(outInfo, *findIO(outs, n))
	}
	s, provider, err := rt.OpenGraph(path, inNames, outNames)
	if err != nil {
		return nil, err
	}
	return &session{s: s, path: path, provider: provider, ins: inInfo, outs: outInfo}, nil
}

// checkTensor checks one declared input/output: element type and rank, and
// each dimension where want >= 0 (a dynamic model dim, -1, matches only a
// negative want).
func checkTensor(path, what string, list []ort.InputOutputInfo, name string, dt ort.TensorElementDataType, want []int64) (*ort.InputOutputInfo, error) {
	x := findIO(list, name)
	if x == nil {
		return nil, fmt.Errorf("%s: model has no %s %q (has %s); the file does not match its manifest", path, what, name, ioNames(list))
	}
	if x.DataType != dt {
		return nil, fmt.Errorf("%s: %s %q is %v, the manifest expects %v", path, what, name, x.DataType, dt)
	}
	if want != nil {
		ok := len(x.Dimensions) == len(want)
		for i := 0; ok && i < len(want); i++ {
			if want[i] >= 0 && x.Dimensions[i] != want[i] {
				ok = false
			}
		}
		if !ok {
			return nil, fmt.Errorf("%s: %s %q has shape %v, the manifest expects %v (-1 = any); the file does not match its manifest", path, what, name, x.Dimensions, want)
		}
	}
	return x, nil
}

// ioRow is one input or output the runner feeds or reads: the graph that
// declares it (its file's role in the manifest), its name, element type and
// shape (nil: any; -1: any size). A graph's input rows, then its output rows,
// in table order are the order its session's Run takes them.
type ioRow struct {
	graph string
	out   bool
	name  string
	dt    ort.TensorElementDataType
	shape []int64
}

var (
	tFloat = ort.TensorElementDataType(ort.TensorElementDataTypeFloat)
	tInt64 = ort.TensorElementDataType(ort.TensorElementDataTypeInt64)
)

// ioTable is every input and output of the three graphs the manifest
// declares, with the types and shapes its dimensions imply.
func (r *Runner) ioTable() []ioRow {
	io := r.m.IO
	H, V, kv, hd := int64(r.hidden), int64(r.vocab), int64(r.kvHeads), int64(r.hd)
	var rows []ioRow
	add := func(graph string, out bool, name string, dt ort.TensorElementDataType, shape ...int64) {
		rows = append(rows, ioRow{graph: graph, out: out, name: name, dt: dt, shape: shape})
	}
	for _, name := range io.Vision.Inputs {
		dt, shape, _ := visionInputSpec(name, r.m.Preprocess.PatchDim())
		add("vision", false, name, dt, shape...)
	}
	add("vision", true, io.Vision.Outputs[0], tFloat, -1, H)

	add("embedding", false, io.Embedding.Inputs[0], tInt64, -1, -1)
	add("embedding", false, io.Embedding.Inputs[1], tFloat, -1, H)
	add("embedding", true, io.Embedding.Outputs[0], tFloat, -1, -1, H)

	dio := io.Decoder
	add("decoder", false, dio.InputsEmbeds, tFloat, -1, -1, H)
	add("decoder", false, dio.AttentionMask, tInt64, -1, -1)
	add("decoder", false, dio.PositionIDs, tInt64) // layout checked in open
	add("decoder", true, dio.Logits, tFloat, -1, -1, V)
	for l := range r.layers {
		for _, f := range []string{dio.PastKey, dio.PastValue} {
			add("decoder", false, fmt.Sprintf(f, l), tFloat, -1, kv, -1, hd)
		}
		for _, f := range []string{dio.PresentKey, dio.PresentValue} {
			add("decoder", true, fmt.Sprintf(f, l), tFloat, -1, kv, -1, hd)
		}
	}
	return rows
}

// openGraph reads the graph of role, runs pre on its declared inputs,
// checks them against the table's rows for it and opens its
// session with the rows' names in Run order. found holds the checked
// declarations by name.
func (r *Runner) openGraph(role string, rows []ioRow, pre func(path string, ins []ort.InputOutputInfo) error) (s *session, found map[string]*ort.InputOutputInfo, err error) {
	p := r.m.FilePath(role)
	ins, outs, err := graphInfo(p)
	if err != nil {
		return nil, nil, err
	}
	if pre != nil {
		if err := pre(p, ins); err != nil {
			return nil, nil, err
		}
	}
	found = map[string]*ort.InputOutputInfo{}
	var inNames, outNames []string
	for _, row := range rows {
		if row.graph != role {
			continue
		}
		what, list, names := "input", ins, &inNames
		if row.out {
			what, list, names = "output", outs, &outNames
		}
		x, err := checkTensor(p, what, list, row.name, row.dt, row.shape)
		if err != nil {
			return nil, nil, err
		}
		found[row.name] = x
		*names = append(*names, row.name)
	}
	s, err = openSession(r.rt, p, ins, outs, inNames, outNames)
	return s, found, err
}

// open checks each graph's IO against the table, then opens the sessions.
func (r *Runner) open() error {
	m, io := r.m, r.m.IO
	// Each declared vision input by name: pixel_values plus either
	// image_grid_thw or the grid-dependent inputs computed in Go (vision.go).
	checkVision := func(p string, _ []ort.InputOutputInfo) error {
		seen := map[string]bool{}
		for _, name := range io.Vision.Inputs {
			if _, _, known := visionInputSpec(name, m.Preprocess.PatchDim()); !known {
				return fmt.Errorf("%s: vision input %q is not one the runner can feed (it knows pixel_values, image_grid_thw, vision_pos_ids, window_index/mask/inverse, frame_index/mask/inverse)", p, name)
			}
			if seen[name] {
				return fmt.Errorf("%s: vision input %q is listed twice in the manifest", p, name)
			}
			seen[name] = true
		}
		if !seen[inPixelValues] {
			return fmt.Errorf("%s: the manifest's vision inputs %v have no %q", p, io.Vision.Inputs, inPixelValues)
		}
		if needsVisionInputs(io.Vision.Inputs) {
			if err := m.Vision.WithDefaults(m.Preprocess).check(m.Preprocess); err != nil {
				return fmt.Errorf("%s: %w", m.Path, err)
			}
		}
		return nil
	}
	dio := io.Decoder
	checkDecoder := func(p string, ins []ort.InputOutputInfo) error {
		past := 0
		for _, x := range ins {
			var l int
			if _, e := fmt.Sscanf(x.Name, dio.PastKey, &l); e == nil && fmt.Sprintf(dio.PastKey, l) == x.Name {
				past++
			} else if _, e := fmt.Sscanf(x.Name, dio.PastValue, &l); e == nil && fmt.Sprintf(dio.PastValue, l) == x.Name {
				past++
			}
		}
		if past != 2*r.layers {
			return fmt.Errorf("%s: %d past key/value inputs, the manifest's %d layers need %d", p, past, r.layers, 2*r.layers)
		}
		// position_ids layout: read from the model, never assumed (a
		// missing position_ids is the table's error)
		if x := findIO(ins, dio.PositionIDs); x != nil {
			switch dd := x.Dimensions; {
			case len(dd) == 3 && dd[0] == 3:
			case len(dd) == 3 && dd[2] == 3:
				r.posBS3 = true
			default:
				return fmt.Errorf("%s: input %q has shape %v; want [3, B, S] or [B, S, 3]", p, dio.PositionIDs, dd)
			}
		}
		return nil
	}

	rows := r.ioTable()
	var err error
	if r.vis, _, err = r.openGraph("vision", rows, checkVision); err != nil {
		return err
	}
	if r.emb, _, err = r.openGraph("embedding", rows, nil); err != nil {
		return err
	}
	var found map[string]*ort.InputOutputInfo
	if r.dec, found, err = r.openGraph("decoder", rows, checkDecoder); err != nil {
		return err
	}
	r.logitsLast = found[dio.Logits].Dimensions[1] == 1
	return nil
}

// Stats is the time spent in ORT's Run per graph, for the loop overhead.
type Stats struct {
	Runs    int
	RunTime time.Duration
}

// RunStats sums the Run calls and their wall time over the three sessions
// since the last ResetStats.
func (r *Runner) RunStats() Stats {
	var s Stats
	for _, x := range []*session{r.vis, r.emb, r.dec} {
		s.Runs += x.runs
		s.RunTime += x.runTime
	}
	return s
}

// ResetStats zeroes the Run counters.
func (r *Runner) ResetStats() {
	for _, x := range []*session{r.vis, r.emb, r.dec} {
		x.runs, x.runTime = 0, 0
	}
}
