package parts

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/internal/testenv"
)

// VLMOptions.CaptionTokens reaches the runner as the caption's budget (0:
// the manifest's), and a budget out of bounds is refused naming the flag
// and the config key.
func TestVLMCaptionTokens(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: testenv.ORTLib(t), Providers: []string{"cpu"}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	manifest := testenv.Path(t, "models/videmo-tiny/videmo.manifest.json")
	for _, c := range []struct{ set, want int }{{3, 3}, {0, 24}, {2048, 2048}} {
		a, err := loadVidEmo(rt, Options{VLM: VLMOptions{Manifest: manifest, CaptionTokens: c.set}}, log)
		if err != nil {
			t.Fatal(err)
		}
		r := a.Runner()
		for i, q := range r.Manifest().Questions {
			if q.Kind == "caption" {
				if got := r.CaptionBudget(&r.Manifest().Questions[i]); got != c.want {
					t.Errorf("CaptionTokens %d: the runner's caption budget is %d, want %d", c.set, got, c.want)
				}
				if c.set == 0 && q.MaxNewTokens != c.want {
					t.Errorf("the tiny manifest's caption budget is %d, the test assumes %d", q.MaxNewTokens, c.want)
				}
			}
		}
		a.Close()
	}
	for _, n := range []int{-1, 4097} {
		a, err := loadVidEmo(rt, Options{VLM: VLMOptions{Manifest: manifest, CaptionTokens: n}}, log)
		if err == nil {
			a.Close()
			t.Fatalf("CaptionTokens %d: loaded", n)
		}
		for _, w := range []string{"--caption-tokens", "models.videmo_caption_tokens", "4096"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("CaptionTokens %d: error %q does not mention %s", n, err, w)
			}
		}
	}
}
