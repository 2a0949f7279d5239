package openai

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgemo/edgemo/engine/videmo"
)

// ServerConfig configures a Server. Zero values take the defaults.
type ServerConfig struct {
	// Model is the served model's name (default: the manifest's name).
	Model string
	// APIKey, when set, is the bearer token every /v1 request must carry.
	APIKey string
	// MaxRequestBytes bounds a request body (default 64 MiB: 16 PNG
	// frames of a 512-pixel crop are about 8 MiB of base64).
	MaxRequestBytes int64
	// MaxTokens bounds max_tokens (default 4096).
	MaxTokens int
	// MaxLogprobs bounds top_logprobs (default 20, vLLM's default
	// --max-logprobs; -1: the whole vocabulary).
	MaxLogprobs int
	// PrefixCache is how many prefilled videos are kept (default 8).
	PrefixCache int
	// Frames bounds the frames of a request (default: the manifest's
	// max_frames frames of at most 2048 pixels a side).
	Frames FrameLimits
	Logger *slog.Logger
}

// Server is an http.Handler serving one VidEmo runner over the chat
// completions API: /v1/chat/completions, /v1/models, /health and
// /metrics. Requests are served one at a time (the runner is not safe for
// concurrent use); one carrying a video already prefilled continues from
// its cached prefix, so several questions about one window cost one
// vision pass.
type Server struct {
	cfg   ServerConfig
	r     *videmo.Runner
	log   *slog.Logger
	mux   *http.ServeMux
	mu    sync.Mutex // the runner and the cache
	cache *prefixCache
	toks  tokenTable
	stats serverStats
}

type serverStats struct {
	requests, failures, hits, misses, vision atomic.Int64
	busyNanos                                atomic.Int64
}

// NewServer serves r; the caller keeps r and closes it after Close.
func NewServer(r *videmo.Runner, cfg ServerConfig) *Server {
	m := r.Manifest()
	if cfg.Model == "" {
		cfg.Model = m.Name
	}
	if cfg.MaxRequestBytes <= 0 {
		cfg.MaxRequestBytes = 64 << 20
	}
	if cfg.MaxTokens <= 0 {
		cfg.MaxTokens = 4096
	}
	if cfg.MaxLogprobs == 0 {
		cfg.MaxLogprobs = 20
	}
	if cfg.MaxLogprobs < 0 {
		cfg.MaxLogprobs = m.Dims.Vocab
	}
	if cfg.PrefixCache <= 0 {
		cfg.PrefixCache = 8
	}
	if cfg.Frames.MaxFrames <= 0 {
		cfg.Frames.MaxFrames = m.Preprocess.MaxFrames
	}
	if cfg.Frames.MaxSide <= 0 {
		cfg.Frames.MaxSide = 2048
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, r: r, log: log, mux: http.NewServeMux(), cache: newPrefixCache(cfg.PrefixCache)}
	s.toks.init(r.Tokenizer(), m.Dims.Vocab)
	s.mux.HandleFunc("POST /v1/chat/completions", s.auth(s.chat))
	s.mux.HandleFunc("GET /v1/models", s.auth(s.models))
	s.mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	s.mux.HandleFunc("GET /metrics", s.metrics)
	return s
}

// Model is the served model's name.
func (s *Server) Model() string { return s.cfg.Model }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close frees the cached prefixes. Call it after the HTTP server stopped.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache.clear()
}

// ServerStats count what the server did.
type ServerStats struct {
	Requests, Failures int64
	PrefixHits, Misses int64
	VisionPasses       int64
	Busy               time.Duration // time the runner was held
}

// Stats returns the counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{
		Requests: s.stats.requests.Load(), Failures: s.stats.failures.Load(),
		PrefixHits: s.stats.hits.Load(), Misses: s.stats.misses.Load(),
		VisionPasses: s.stats.vision.Load(), Busy: time.Duration(s.stats.busyNanos.Load()),
	}
}

func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	st := s.Stats()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprintf(w, "# TYPE edgemo_serve_requests_total counter\nedgemo_serve_requests_total %d\n", st.Requests)
	fmt.Fprintf(w, "# TYPE edgemo_serve_failures_total counter\nedgemo_serve_failures_total %d\n", st.Failures)
	fmt.Fprintf(w, "# TYPE edgemo_serve_prefix_cache_total counter\nedgemo_serve_prefix_cache_total{result=\"hit\"} %d\nedgemo_serve_prefix_cache_total{result=\"miss\"} %d\n", st.PrefixHits, st.Misses)
	fmt.Fprintf(w, "# TYPE edgemo_serve_vision_passes_total counter\nedgemo_serve_vision_passes_total %d\n", st.VisionPasses)
	fmt.Fprintf(w, "# TYPE edgemo_serve_busy_seconds_total counter\nedgemo_serve_busy_seconds_total %g\n", st.Busy.Seconds())
}

func (s *Server) auth(h http.HandlerFunc) http.HandlerFunc {
	if s.cfg.APIKey == "" {
		return h
	}
	want := []byte("Bearer " + s.cfg.APIKey)
	return func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgemo"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token: send Authorization: Bearer <api key>")
			return
		}
		h(w, r)
	}
}

func (s *Server) models(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, ModelList{Object: "list", Data: []ModelCard{{ID: s.cfg.Model, Object: "model", Created: time.Now().Unix(), OwnedBy: "edgemo"}}})
}

// httpError is an error with the status it answers.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // the client went away: nothing to tell it
}

func writeError(w http.ResponseWriter, code int, msg string) {
	typ := "invalid_request_error"
	switch {
	case code == http.StatusUnauthorized:
		typ = "authentication_error"
	case code == http.StatusNotFound:
		typ = "NotFoundError"
	case code >= 500:
		typ = "internal_server_error"
	}
	writeJSON(w, code, ErrorResponse{Error: ErrorBody{Message: msg, Type: typ, Code: code}})
}

func (s *Server) fail(w http.ResponseWriter, err error) {
	s.stats.failures.Add(1)
	var he *httpError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &he):
		writeError(w, he.code, he.msg)
	case errors.As(err, &mbe):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes (edgemo serve --max-request-bytes)", mbe.Limit))
	default:
		s.log.Error("chat completion failed", "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	s.stats.requests.Add(1)
	var req ChatRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, s.cfg.MaxRequestBytes))
	if err := dec.Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.fail(w, err)
			return
		}
		s.fail(w, badRequest("request body: %v", err))
		return
	}
	job, err := s.parse(&req)
	if err != nil {
		s.fail(w, err)
		return
	}
	if req.Stream {
		s.stream(w, r, job)
		return
	}
	out, err := s.run(r.Context(), job, nil)
	if err != nil {
		s.fail(w, err)
		return
	}
	// the model's time for this request, without its wait for the runner
	w.Header().Set("Server-Timing", fmt.Sprintf("infer;dur=%.3f", float64(out.held.Microseconds())/1000))
	content := out.text
	fin := out.finish
	resp := ChatResponse{
		ID: out.id, Object: "chat.completion", Created: time.Now().Unix(), Model: s.cfg.Model,
		Choices: []Choice{{Message: &RespMessage{Role: "assistant", Content: &content}, FinishReason: &fin}},
		Usage:   out.usage(),
	}
	if job.logprobs {
		resp.Choices[0].Logprobs = &Logprobs{Content: s.tokenLogprobs(out.ans, 0, len(out.ans.Tokens), job.topLogprobs)}
	}
	writeJSON(w, http.StatusOK, resp)
}

// tokenLogprobs are tokens [from, to) of a with their logprobs.
func (s *Server) tokenLogprobs(a *videmo.Answer, from, to, top int) []TokenLogprob {
	out := make([]TokenLogprob, 0, to-from)
	for i := from; i < to; i++ {
		id := a.Tokens[i]
		tl := TokenLogprob{Token: s.toks.str(id), Bytes: s.toks.bytes(id), Logprob: float64(a.TokenLogits[i]) - a.TopLSE[i], TopLogprobs: TopList{}}
		if top > 0 && i < len(a.Top) {
			for _, t := range a.Top[i][:min(top, len(a.Top[i]))] {
				tl.TopLogprobs = append(tl.TopLogprobs, s.toks.top(t.ID, float64(t.Logit)-a.TopLSE[i]))
			}
		}
		out = append(out, tl)
	}
	return out
}

// finishReason is the OpenAI name of how a generation stopped.
func finishReason(stopped string) string {
	if stopped == "eos" {
		return "stop"
	}
	return "length"
}
