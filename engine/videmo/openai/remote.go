package openai

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/window"
)

// RemoteConfig configures the remote VidEmo engine.
type RemoteConfig struct {
	Client ClientConfig
	// Plan is the served model's manifest: its system prompt, question
	// plan, preprocessing and labels (videmo.LoadPlan; the weights need
	// not be on this machine).
	Plan *videmo.Manifest
	// TopLogprobs is how many of the most likely first tokens a
	// closed-set question asks for (default 20, vLLM's and OpenAI's
	// limit). The option letters must be among them to be read exactly;
	// a letter that is not is bounded by the least of them (see Choice).
	TopLogprobs int
	// CaptionTokens replaces the caption question's max_new_tokens when
	// > 0, as videmo.Options.CaptionTokens does.
	CaptionTokens int
}

// Remote is the VidEmo tier on a shared inference server: the window's
// frames, sampled at 2 fps as the local runner samples them, go to an
// OpenAI-compatible server with the same system prompt and questions;
// closed-set questions are read from the first token's logprobs
// (max_tokens 1), so the tree has the local runner's semantics: a
// distribution over the option letters and their letter mass. An
// engine.Analyzer, safe for concurrent use.
type Remote struct {
	cfg  RemoteConfig
	c    *Client
	m    *videmo.Manifest
	host string
}

// NewRemote returns the remote engine. It does not contact the server.
func NewRemote(cfg RemoteConfig) (*Remote, error) {
	if cfg.Plan == nil {
		return nil, errors.New("remote VidEmo needs the served model's manifest for its question plan (models.videmo)")
	}
	if cfg.TopLogprobs <= 0 {
		cfg.TopLogprobs = 20
	}
	c, err := NewClient(cfg.Client)
	if err != nil {
		return nil, err
	}
	host := cfg.Client.URL
	if u, err := url.Parse(cfg.Client.URL); err == nil {
		host = u.Host
	}
	return &Remote{cfg: cfg, c: c, m: cfg.Plan, host: host}, nil
}

// Client is the engine's HTTP client (its stats are the engine's health).
func (r *Remote) Client() *Client { return r.c }

// Close releases nothing: the server is not ours.
func (r *Remote) Close() error { return nil }

// Analyze returns the window's tree, answered by the server.
func (r *Remote) Analyze(ctx context.Context, w window.Window) (*tree.Tree, error) {
	t0 := time.Now()
	id := tree.MakeID(w.Camera, w.TrackID, w.Seq)
	if len(w.Samples) == 0 {
		return nil, fmt.Errorf("window %s has no samples", id)
	}
	idx, _, err := videmo.SampleFrames(w, r.m.Preprocess)
	if err != nil {
		return nil, fmt.Errorf("window %s: %w", id, err)
	}
	frames := make([]facetrack.Crop, len(idx))
	for i, j := range idx {
		frames[i] = w.Samples[j].Crop
	}
	video, err := VideoURL(frames)
	if err != nil {
		return nil, fmt.Errorf("window %s: %w", id, err)
	}
	res, err := r.Ask(ctx, video)
	if err != nil {
		return nil, fmt.Errorf("window %s: %w", id, err)
	}
	t := videmo.NewTree(w, res, r.m, tree.Source{Engine: r.m.Engine, Model: r.m.Ref(), Provider: "remote:" + r.host})
	t.Source.LatencyMS = float64(time.Since(t0).Microseconds()) / 1000
	return t, nil
}

// request is the chat request for one question about video.
func (r *Remote) request(video, question string) *ChatRequest {
	var msgs []Message
	if r.m.System != "" {
		msgs = append(msgs, Message{Role: "system", Content: TextContent(r.m.System)})
	}
	msgs = append(msgs, Message{Role: "user", Content: PartsContent(
		Part{Type: "video_url", VideoURL: &URL{URL: video}},
		Part{Type: "text", Text: question},
	)})
	return &ChatRequest{Model: r.cfg.Client.Model, Messages: msgs}
}

func ptr[T any](v T) *T { return &v }

// Ask answers the manifest's question plan about video (a VideoURL), each
// question its own request (the server's prefix cache makes the video one
// vision pass), as many at once as the client allows.
func (r *Remote) Ask(ctx context.Context, video string) (*videmo.Result, error) {
	qs := r.m.Questions
	res := &videmo.Result{Choices: make([]videmo.ChoiceResult, 0, len(qs))}
	choices := make([]*videmo.ChoiceResult, len(qs))
	var caption string
	errs := make([]error, len(qs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ask := func(i int) {
		q := &qs[i]
		var err error
		if q.Kind == "caption" {
			caption, err = r.caption(ctx, video, q)
		} else {
			choices[i], err = r.choice(ctx, video, q)
		}
		if err != nil {
			errs[i] = fmt.Errorf("question %s: %w", q.ID, err)
			cancel() // one failed question fails the window: stop the rest
		}
	}
	// The first question goes alone: it pays for the video's prefill (the
	// server's prefix cache has it for the rest), and while the circuit is
	// half-open it is the one probe, which the rest must not cancel.
	if len(qs) == 0 {
		return res, nil
	}
	ask(0)
	var wg sync.WaitGroup
	for i := 1; i < len(qs) && errs[0] == nil; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ask(i)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i := range qs {
		if choices[i] != nil {
			res.Choices = append(res.Choices, *choices[i])
		}
	}
	res.Caption = caption
	return res, nil
}

func (r *Remote) caption(ctx context.Context, video string, q *videmo.Question) (string, error) {
	req := r.request(video, q.Text())
	n := q.MaxNewTokens
	if r.cfg.CaptionTokens > 0 {
		n = r.cfg.CaptionTokens
	}
	g := r.m.Generation
	req.MaxTokens, req.Temperature, req.TopP = ptr(n), ptr(g.Temperature), ptr(g.TopP)
	if g.TopK > 0 {
		req.TopK = ptr(g.TopK)
	}
	if g.RepetitionPenalty > 0 {
		req.RepetitionPenalty = ptr(g.RepetitionPenalty)
	}
	resp, _, err := r.c.Chat(ctx, req)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(content(resp)), nil
}

func content(resp *ChatResponse) string {
	if m := resp.Choices[0].Message; m != nil && m.Content != nil {
		return *m.Content
	}
	return ""
}

// choice asks a closed-set question for one token with its logprobs and
// reads the option letters' distribution; below the letter-mass threshold
// it asks again for the model's own short greedy answer, as the local
// runner does (videmo.Runner.Ask).
func (r *Remote) choice(ctx context.Context, video string, q *videmo.Question) (*videmo.ChoiceResult, error) {
	req := r.request(video, q.Text())
	req.MaxTokens, req.Temperature = ptr(1), ptr(0.0)
	req.Logprobs, req.TopLogprobs = true, ptr(r.cfg.TopLogprobs)
	resp, _, err := r.c.Chat(ctx, req)
	if err != nil {
		return nil, err
	}
	c, _, err := ReadChoice(resp, q)
	if err != nil {
		return nil, err
	}
	threshold := r.m.LetterMassMin()
	if c.LetterMass >= threshold {
		return c, nil
	}
	req = r.request(video, q.Text())
	req.MaxTokens, req.Temperature = ptr(videmo.FallbackTokens), ptr(0.0)
	if rp := r.m.Generation.RepetitionPenalty; rp > 0 {
		req.RepetitionPenalty = ptr(rp)
	}
	resp, _, err = r.c.Chat(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("generating its answer (letter mass %.3g < letter_mass_threshold %g): %w", c.LetterMass, threshold, err)
	}
	c.Text = strings.TrimSpace(content(resp))
	c.Mapped = videmo.MapText(c.Text, q.Options)
	c.Method = tree.MethodUncertain
	if c.Mapped >= 0 {
		c.Method = tree.MethodGeneratedText
	}
	return c, nil
}

// ReadChoice reads question q's option letters from the first token's
// logprobs in resp: the distribution over the options is the softmax of
// their logprobs (the softmax of their logits: the log-sum-exp cancels)
// and the letter mass the sum of their probabilities, exactly the local
// runner's reading when every letter is among the top logprobs (exact).
//
// The server reports only the top k. A letter outside them has a logprob
// at most the least one reported: it is given that bound in the
// distribution (which then over-weights it), and nothing in the letter
// mass, which is then a lower bound. So a mass at or above the threshold
// still means the letters are what the model would write; below it the
// caller asks for the model's text, as it would for an exact mass below.
func ReadChoice(resp *ChatResponse, q *videmo.Question) (c *videmo.ChoiceResult, exact bool, err error) {
	lp := resp.Choices[0].Logprobs
	if lp == nil || len(lp.Content) == 0 {
		return nil, false, errors.New("the response carries no logprobs: the server must support logprobs and top_logprobs (vLLM and SGLang do)")
	}
	first := lp.Content[0]
	seen := map[string]float64{first.Token: first.Logprob}
	floor := first.Logprob
	for _, t := range first.TopLogprobs {
		if v, ok := seen[t.Token]; !ok || t.Logprob > v {
			seen[t.Token] = t.Logprob
		}
		floor = math.Min(floor, t.Logprob)
	}
	c = &videmo.ChoiceResult{Question: q, Mapped: -1, Method: tree.MethodOptionLogits}
	exact = true
	for _, o := range q.Options {
		c.Labels = append(c.Labels, o.Label)
		v, ok := seen[o.Letter]
		if ok {
			c.LetterMass += math.Exp(v)
		} else {
			v, exact = floor, false
		}
		c.Logits = append(c.Logits, float32(v))
	}
	c.Probs = videmo.Softmax(c.Logits)
	c.LetterMass = min(c.LetterMass, 1)
	return c, exact, nil
}

var _ engine.Analyzer = (*Remote)(nil)
