package videmo

import (
	"context"
	"log/slog"
	"testing"

	"github.com/edgemo/edgemo/internal/testenv"
)

func benchVLM(b *testing.B, manifest string, tokens int) {
	rt := testRuntime(b)
	r, err := NewRunner(rt, testenv.Path(b, manifest), testTokenizer(b), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	v, err := PreprocessWindow(testWindow(), r.Manifest().Preprocess)
	if err != nil {
		b.Fatal(err)
	}
	var last *BenchResult
	for b.Loop() {
		if last, err = BenchVLM(context.Background(), r, v, tokens); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(last.PrefillMS, "prefill-ms")
	b.ReportMetric(float64(last.PrefixTokens), "prefix-tokens")
	b.ReportMetric(last.SuffixMS, "suffix-ms")
	b.ReportMetric(last.DecodeTokPerS, "decode-tok/s")
	b.ReportMetric((last.LoopOverhead-1)*100, "loop-overhead-%")
	b.Logf("%+v", *last)
}

// BenchmarkVLMTiny: the converted reference checkpoint (models/videmo-tiny).
func BenchmarkVLMTiny(b *testing.B) { benchVLM(b, tinyManifest, 64) }

// BenchmarkVLM3B: VidEmo-3B's real architecture with random bf16 weights,
// converted (int4 decoder). Make it first (7.5 GB + 5.3 GB under deps/):
//
//	/usr/bin/python3 scripts/make_synthetic_checkpoint.py --out deps/videmo-3b-synthetic/checkpoint
//	bin/edgemo convert videmo --from deps/videmo-3b-synthetic/checkpoint --out deps/videmo-3b-synthetic/model
func BenchmarkVLM3B(b *testing.B) {
	benchVLM(b, "deps/videmo-3b-synthetic/model/videmo.manifest.json", 16)
}
