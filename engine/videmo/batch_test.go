package videmo

import (
	"math"
	"testing"
)

// choicePlan is the fixture's closed-set questions: their texts and option
// letter ids, in plan order.
func choicePlan(t *testing.T, r *Runner) (texts []string, ids [][]int) {
	t.Helper()
	for i, q := range r.Manifest().Questions {
		if q.Kind == "choice" {
			texts, ids = append(texts, q.Text()), append(ids, r.OptionIDs(i))
		}
	}
	if len(texts) < 3 {
		t.Fatalf("the fixture plan has %d closed-set questions, want several", len(texts))
	}
	return texts, ids
}

// All closed-set questions in one batched Run give each question the
// option logits it gets alone off the same prefix (suffixes of different
// lengths, left-padded and masked), in plan order.
func TestChoiceBatchMatchesOneByOne(t *testing.T) {
	r := testRunner(t, Options{})
	v := testVideo(t, r)
	texts, ids := choicePlan(t, r)
	prompt, err := r.Prompt(v, texts)
	if err != nil {
		t.Fatal(err)
	}
	lens := map[int]bool{}
	for _, s := range prompt.Suffixes {
		lens[len(s)] = true
	}
	if len(lens) < 2 {
		t.Fatalf("suffix lengths %v: the test needs rows of different lengths to exercise the padding", lens)
	}
	p, err := r.Prefill(v, prompt)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	got, err := r.ChoiceBatch(p, prompt.Suffixes, ids)
	if err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range texts {
		a, err := r.Continue(p, prompt.Suffixes[i], ids[i], 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		g := got[i].First
		if len(g) != len(a.First) {
			t.Fatalf("question %d: %d logits, want %d", i, len(g), len(a.First))
		}
		for j := range a.First {
			d := math.Abs(float64(g[j]-a.First[j])) / math.Max(1, math.Abs(float64(a.First[j])))
			worst = max(worst, d)
		}
		worst = max(worst, math.Abs(got[i].LogSumExp-a.LogSumExp)/math.Max(1, math.Abs(a.LogSumExp)))
		if argmaxF(g) != argmaxF(a.First) {
			t.Errorf("question %d: batched answer %d, alone %d (%v vs %v)", i, argmaxF(g), argmaxF(a.First), g, a.First)
		}
	}
	t.Logf("%d questions in one Run vs one by one: worst logit difference %.3g (relative to max(1,|x|))", len(texts), worst)
	if worst > 1e-4 {
		t.Errorf("batched logits differ from one-by-one by %.3g", worst)
	}
	// the prefix is untouched: a question after the batch still matches
	again, err := r.ChoiceBatch(p, prompt.Suffixes[:2], ids[:2])
	if err != nil {
		t.Fatal(err)
	}
	for j := range again[0].First {
		if math.Abs(float64(again[0].First[j]-got[0].First[j])) > 1e-4*math.Max(1, math.Abs(float64(got[0].First[j]))) {
			t.Fatalf("a second batch off the same prefix differs: %v vs %v", again[0].First, got[0].First)
		}
	}
}

func argmaxF(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
