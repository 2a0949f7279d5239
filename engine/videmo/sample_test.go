package videmo

import (
	"math"
	"math/rand/v2"
	"testing"
)

// samplerWith is a Runner holding only what pick needs.
func samplerWith(gen GenConfig, lg []float32, seen ...int) *Runner {
	r := &Runner{gen: gen, lg: lg, seen: make([]bool, len(lg))}
	for _, id := range seen {
		r.markSeen(id)
	}
	return r
}

func TestSamplingMatchesSoftmax(t *testing.T) {
	lg := []float32{2, 1, 0.5, -1, 3}
	r := samplerWith(GenConfig{Temperature: 1}, append([]float32(nil), lg...))
	rng := rand.New(rand.NewPCG(7, 8))
	const n = 40000
	counts := make([]int, len(lg))
	for range n {
		counts[r.sample(lg, rng)]++
	}
	var z float64
	for _, x := range lg {
		z += math.Exp(float64(x))
	}
	for i, x := range lg {
		want := math.Exp(float64(x)) / z
		got := float64(counts[i]) / n
		if math.Abs(got-want) > 0.01 {
			t.Errorf("token %d: sampled %.3f, softmax %.3f", i, got, want)
		}
	}
}

func TestTopKAndTopPRestrictTheDraw(t *testing.T) {
	lg := []float32{2, 1, 0.5, -1, 3} // order by logit: 4, 0, 1, 2, 3
	rng := rand.New(rand.NewPCG(1, 1))
	r := samplerWith(GenConfig{Temperature: 1, TopK: 2}, lg)
	for range 2000 {
		if id := r.sample(lg, rng); id != 4 && id != 0 {
			t.Fatalf("top_k 2 drew token %d", id)
		}
	}
	// softmax: p4≈.61, p0≈.22, p1≈.08: the 0.7 nucleus is {4, 0}.
	r = samplerWith(GenConfig{Temperature: 1, TopP: 0.7}, lg)
	seen := map[int]bool{}
	for range 4000 {
		seen[r.sample(lg, rng)] = true
	}
	if len(seen) != 2 || !seen[4] || !seen[0] {
		t.Fatalf("top_p 0.7 drew %v, want exactly {0, 4}", seen)
	}
}

func TestGreedyAndRepetitionPenalty(t *testing.T) {
	// VidEmo's generation config: top_k 1 is greedy whatever the seed.
	lg := []float32{1, 5, 4.9, 0}
	r := samplerWith(GenConfig{Temperature: 0.1, TopK: 1, RepetitionPenalty: 1.05}, append([]float32(nil), lg...))
	if got := r.pick(rand.New(rand.NewPCG(3, 3))); got != 1 {
		t.Fatalf("greedy picked %d", got)
	}
	// Token 1 already generated: 5/1.05 = 4.76 < 4.9, so token 2 wins.
	r = samplerWith(GenConfig{Temperature: 0.1, TopK: 1, RepetitionPenalty: 1.05}, append([]float32(nil), lg...), 1)
	if got := r.pick(nil); got != 2 {
		t.Fatalf("with the penalty picked %d, want 2", got)
	}
}

func TestSamplingIsSeededAndAllocationFree(t *testing.T) {
	lg := make([]float32, 151936) // Qwen's vocabulary
	src := rand.New(rand.NewPCG(5, 5))
	for i := range lg {
		lg[i] = float32(src.NormFloat64() * 3)
	}
	draw := func(seed uint64) []int {
		r := samplerWith(GenConfig{Temperature: 0.7, TopP: 0.9}, lg)
		r.cand, r.probs = make([]int32, 0, len(lg)), make([]float64, 0, len(lg))
		rng := rand.New(rand.NewPCG(seed, seed))
		var out []int
		for range 20 {
			out = append(out, r.sample(lg, rng))
		}
		return out
	}
	a, b := draw(9), draw(9)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different draws: %v vs %v", a, b)
		}
	}
	r := samplerWith(GenConfig{Temperature: 0.7, TopP: 0.9}, lg)
	r.cand, r.probs = make([]int32, 0, len(lg)), make([]float64, 0, len(lg))
	rng := rand.New(rand.NewPCG(1, 2))
	if allocs := testing.AllocsPerRun(20, func() { r.sample(lg, rng) }); allocs > 0 {
		t.Fatalf("sampling a token allocates %.0f times", allocs)
	}
}

func BenchmarkSampleQwenVocab(b *testing.B) {
	lg := make([]float32, 151936)
	src := rand.New(rand.NewPCG(5, 5))
	for i := range lg {
		lg[i] = float32(src.NormFloat64() * 3)
	}
	r := samplerWith(GenConfig{Temperature: 0.7, TopP: 0.9}, lg)
	r.cand, r.probs = make([]int32, 0, len(lg)), make([]float64, 0, len(lg))
	rng := rand.New(rand.NewPCG(1, 2))
	for b.Loop() {
		r.sample(lg, rng)
	}
}
