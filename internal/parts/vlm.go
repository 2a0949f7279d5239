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
	// Runner: further runner options (generation overrides, tracing for
	// `edgemo vlm`); Logger, QuestionBatch and CaptionTokens come from the
	// fields above.
	Runner videmo.Options
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
// configured path, else the one beside the manifest (`edgemo convert`
// writes it there, so a converted model set carries its own).
func FindTokenizer(configured, manifest string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("tokenizer %s: %w (set models.tokenizer / --tokenizer to the model's tokenizer.json)", configured, err)
		}
		return configured, nil
	}
	p := filepath.Join(filepath.Dir(manifest), "tokenizer.json")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no tokenizer.json beside %s: put the model's tokenizer.json there (edgemo convert does) or set models.tokenizer / --tokenizer", manifest)
	}
	return p, nil
}

// OpenRunner opens the VidEmo runner the options name on rt: the one path
// from a manifest to a runner, for the engine, convert --check, vlm and
// bench vlm alike. It returns the tokenizer path it used.
func OpenRunner(rt *engine.Runtime, v VLMOptions, log *slog.Logger) (*videmo.Runner, string, error) {
	if n := v.CaptionTokens; n < 0 || n > config.MaxCaptionTokens {
		return nil, "", fmt.Errorf("VidEmo caption budget %d tokens: must be between 0 (the manifest's max_new_tokens) and %d; fix --caption-tokens / models.videmo_caption_tokens", n, config.MaxCaptionTokens)
	}
	tp, err := FindTokenizer(v.Tokenizer, v.Manifest)
	if err != nil {
		return nil, "", err
	}
	tok, err := tokenizer.Load(tp)
	if err != nil {
		return nil, "", err
	}
	r, err := videmo.NewRunner(rt, v.Manifest, tok, runnerOptions(v, log))
	if err != nil {
		return nil, "", err
	}
	return r, tp, nil
}

// loadVidEmo opens the VidEmo runner on rt as an engine.Analyzer.
func loadVidEmo(rt *engine.Runtime, o Options, log *slog.Logger) (*videmo.Analyzer, error) {
	r, tp, err := OpenRunner(rt, o.VLM, log)
	if err != nil {
		return nil, err
	}
	log.Info("VidEmo ready", "manifest", o.VLM.Manifest, "provider", r.Provider(), "tokenizer", tp)
	return videmo.NewAnalyzer(r, o.VLM.Seed), nil
}

// runnerOptions are the videmo.Options the VLM settings ask for.
func runnerOptions(v VLMOptions, log *slog.Logger) videmo.Options {
	o := v.Runner
	o.Logger, o.QuestionBatch, o.CaptionTokens = log.With("component", "videmo"), v.QuestionBatch, v.CaptionTokens
	return o
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
