package main

import (
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine/tokenizer"
	"github.com/edgemo/edgemo/internal/testenv"
)

// --caption-tokens reaches VidEmo: with a budget of 3 every rationale is the
// start of the one the manifest's budget (24) writes (greedy decoding: the
// same first tokens), and shorter (fewer tokens re-encoded). The exact count of generated tokens is
// engine/videmo's TestCaptionTokens: text re-encoded need not split into the
// tokens it was generated as (the tiny model writes fragments such as
// "+'__line", 3 generated and 4 re-encoded on a Zen 3 EPYC), so here the
// re-encoding is only bounded: at most twice the budget, and under the
// manifest's.
func TestAnalyzeCaptionTokens(t *testing.T) {
	manifest := testenv.Path(t, "models/videmo-tiny/videmo.manifest.json")
	tok, err := tokenizer.Load(testenv.Path(t, "models/videmo-tiny/tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	rationales := func(extra ...string) []string {
		t.Helper()
		args := append([]string{"analyze", testenv.Media(t, "astronaut.png"), "--engine", "videmo", "--model", manifest, "--progress", "off"}, extra...)
		code, stdout, stderr := edgemo(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", extra, code, stderr)
		}
		var out []string
		for _, tr := range readTrees(t, stdout) {
			if tr.Emotion == nil || tr.Emotion.Rationale == "" {
				t.Fatalf("%v: tree %s has no rationale", extra, tr.ID)
			}
			out = append(out, tr.Emotion.Rationale)
		}
		if len(out) == 0 {
			t.Fatalf("%v: no tree", extra)
		}
		return out
	}
	short, long := rationales("--caption-tokens", "3"), rationales()
	if len(short) != len(long) {
		t.Fatalf("%d trees with --caption-tokens 3, %d without", len(short), len(long))
	}
	for i := range short {
		n, m := len(tok.Encode(short[i])), len(tok.Encode(long[i]))
		t.Logf("tree %d: %d tokens %q; manifest budget: %d tokens", i, n, short[i], m)
		if n > 2*3 || !strings.HasPrefix(long[i], short[i]) || m <= n {
			t.Errorf("tree %d: --caption-tokens 3 gives %q (%d tokens), the manifest's budget %q (%d tokens)", i, short[i], n, long[i], m)
		}
	}
	code, _, stderr := edgemo(t, "analyze", testenv.Media(t, "astronaut.png"), "--engine", "videmo", "--model", manifest, "--caption-tokens", "5000")
	if code != 1 || !strings.Contains(stderr, "--caption-tokens") || !strings.Contains(stderr, "4096") {
		t.Errorf("--caption-tokens 5000: exit %d\n%s", code, stderr)
	}
}
