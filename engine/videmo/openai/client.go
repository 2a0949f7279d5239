package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgemo/edgemo/engine/ring"
)

// ClientConfig configures a Client. Zero values take the defaults.
type ClientConfig struct {
	// URL is the server's base URL, with or without the /v1 an OpenAI
	// client's base_url carries (http://gpu:8000/v1 or http://gpu:8000).
	URL    string
	Model  string
	APIKey string // sent as a bearer token when set
	// Timeout bounds one attempt of one request (default 30s).
	Timeout time.Duration
	// MaxInFlight bounds the requests in flight at once (default 4).
	MaxInFlight int
	// Retries is how many times a request that got 429, 5xx or no answer
	// is tried again (default 2), after BackoffBase·2^attempt with full
	// jitter (default 100ms), or the server's Retry-After (at most 5s).
	Retries     int
	BackoffBase time.Duration
	// BreakerFailures consecutive failed requests open the circuit
	// (default 5): requests then fail at once, without touching the
	// network, until BreakerCooldown has passed (default 500ms: a dead
	// server sees two probes a second, a returning one is used again
	// within half a second); then one request probes the server, and its
	// success closes the circuit.
	BreakerFailures int
	BreakerCooldown time.Duration
	HTTP            *http.Client
	Logger          *slog.Logger
}

// ErrCircuitOpen is returned while the circuit breaker is open.
var ErrCircuitOpen = errors.New("remote VidEmo server unavailable (circuit open after repeated failures)")

// StatusError is a non-2xx answer.
type StatusError struct {
	Code int
	Body string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body)
}

func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusTooManyRequests || se.Code >= 500
	}
	return !errors.Is(err, context.Canceled) // network errors and timeouts
}

// Client calls one OpenAI-compatible chat completions endpoint with
// timeouts, bounded concurrency, retries with jitter and a circuit breaker.
// Safe for concurrent use.
type Client struct {
	cfg      ClientConfig
	endpoint string
	http     *http.Client
	log      *slog.Logger
	sem      chan struct{}

	mu        sync.Mutex
	fails     int       // consecutive failed requests
	openUntil time.Time // circuit open until then
	probing   bool      // a half-open probe is in flight
	st        ClientStats
	lat, srv  *ring.Ring[time.Duration]
}

// ClientStats count a client's requests (one request may be several
// attempts).
type ClientStats struct {
	Requests  int64 // requests completed or failed
	OK        int64
	Failures  int64            // requests that failed after their retries
	Retries   int64            // attempts beyond each request's first
	Rejected  int64            // refused at once by the open circuit
	Errors    map[string]int64 // failures by kind: timeout, http_429, http_5xx, http_4xx, network, circuit_open
	State     string           // closed, open, half_open
	Up        bool             // the last request succeeded, or none failed yet
	LastError string
	LastOK    time.Time
	// RoundTripTotal and ServerTotal sum every successful request's round
	// trip and server time (for per-window deltas: edgemo bench vlm --remote).
	RoundTripTotal, ServerTotal time.Duration
	Latency                     Latency // round trip of successful requests, retries included
	Server                      Latency // the server's own time (Server-Timing), where it says
}

// NewClient returns a client for cfg.URL.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("remote VidEmo: no URL (models.videmo_remote.url)")
	}
	if !strings.HasPrefix(cfg.URL, "http://") && !strings.HasPrefix(cfg.URL, "https://") {
		return nil, fmt.Errorf("remote VidEmo url %q: must start with http:// or https:// (models.videmo_remote.url)", cfg.URL)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	} else if cfg.Retries == 0 {
		cfg.Retries = 2
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 100 * time.Millisecond
	}
	if cfg.BreakerFailures <= 0 {
		cfg.BreakerFailures = 5
	}
	if cfg.BreakerCooldown <= 0 {
		cfg.BreakerCooldown = 500 * time.Millisecond
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: cfg.MaxInFlight, IdleConnTimeout: 90 * time.Second}}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base := strings.TrimRight(cfg.URL, "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	return &Client{
		cfg: cfg, endpoint: base + "/chat/completions", http: hc, log: log,
		sem: make(chan struct{}, cfg.MaxInFlight),
		st:  ClientStats{Errors: map[string]int64{}},
		lat: ring.New[time.Duration](1024), srv: ring.New[time.Duration](1024),
	}, nil
}

// Endpoint is the chat completions URL requests go to.
func (c *Client) Endpoint() string { return c.endpoint }

// Timing is how long one request took.
type Timing struct {
	RoundTrip time.Duration // from the first attempt's start to the answer
	Server    time.Duration // the server's Server-Timing infer duration (0: not given)
	Attempts  int
}

// Chat sends req (stream off) and returns the response.
func (c *Client) Chat(ctx context.Context, req *ChatRequest) (*ChatResponse, Timing, error) {
	var tm Timing
	body, err := json.Marshal(req)
	if err != nil {
		return nil, tm, fmt.Errorf("encode request: %w", err)
	}
	if err := c.admit(); err != nil {
		return nil, tm, err
	}
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		c.release(false)
		return nil, tm, ctx.Err()
	}
	defer func() { <-c.sem }()
	t0 := time.Now()
	var resp *ChatResponse
	for attempt := 0; ; attempt++ {
		tm.Attempts = attempt + 1
		resp, tm.Server, err = c.once(ctx, body)
		if err == nil || !retryable(err) || attempt >= c.cfg.Retries || ctx.Err() != nil {
			break
		}
		wait := c.backoff(attempt, err)
		c.mu.Lock()
		c.st.Retries++
		c.mu.Unlock()
		c.log.Debug("remote VidEmo request failed; retrying", "err", err, "attempt", attempt+1, "wait", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
	}
	tm.RoundTrip = time.Since(t0)
	c.record(err, tm)
	if err != nil {
		return nil, tm, fmt.Errorf("remote VidEmo %s: %w", c.endpoint, err)
	}
	return resp, tm, nil
}

func (c *Client) backoff(attempt int, err error) time.Duration {
	var se *StatusError
	if errors.As(err, &se) && se.Code == http.StatusTooManyRequests {
		if ra, ok := se.retryAfter(); ok {
			return min(ra, 5*time.Second)
		}
	}
	d := c.cfg.BackoffBase << attempt
	return time.Duration(rand.Int64N(int64(d)) + 1) // full jitter: spreads retries of many clients
}

func (e *StatusError) retryAfter() (time.Duration, bool) {
	if s, ok := strings.CutPrefix(e.Body, "retry-after:"); ok {
		n, err := strconv.Atoi(strings.Fields(s)[0])
		return time.Duration(n) * time.Second, err == nil
	}
	return 0, false
}

func (c *Client) once(ctx context.Context, body []byte) (*ChatResponse, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if c.cfg.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	res, err := c.http.Do(hr)
	if err != nil {
		return nil, 0, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 256<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("read response: %w", err)
	}
	if res.StatusCode/100 != 2 {
		msg := strings.TrimSpace(string(b))
		var er ErrorResponse
		if json.Unmarshal(b, &er) == nil && er.Error.Message != "" {
			msg = er.Error.Message
		}
		if ra := res.Header.Get("Retry-After"); ra != "" && res.StatusCode == http.StatusTooManyRequests {
			msg = "retry-after:" + ra + " " + msg
		}
		return nil, 0, &StatusError{Code: res.StatusCode, Body: msg}
	}
	var out ChatResponse
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, 0, fmt.Errorf("decode response: %w", err)
	}
	if len(out.Choices) == 0 {
		return nil, 0, errors.New("response has no choices")
	}
	return &out, serverTiming(res.Header.Get("Server-Timing")), nil
}

// serverTiming reads the first dur= of a Server-Timing header (ms).
func serverTiming(h string) time.Duration {
	_, v, ok := strings.Cut(h, "dur=")
	if !ok {
		return 0
	}
	v, _, _ = strings.Cut(v, ",")
	v, _, _ = strings.Cut(v, ";")
	ms, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0
	}
	return time.Duration(ms * float64(time.Millisecond))
}

// admit applies the circuit breaker: open refuses, half-open lets one
// probe through.
func (c *Client) admit() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fails < c.cfg.BreakerFailures {
		return nil
	}
	if time.Now().Before(c.openUntil) || c.probing {
		c.st.Rejected++
		c.st.Errors["circuit_open"]++
		return ErrCircuitOpen
	}
	c.probing = true
	return nil
}

// release ends an admitted request that never ran.
func (c *Client) release(bool) {
	c.mu.Lock()
	c.probing = false
	c.mu.Unlock()
}

func (c *Client) record(err error, tm Timing) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.probing = false
	c.st.Requests++
	if err == nil {
		c.st.OK++
		c.fails = 0
		c.st.LastOK = time.Now()
		c.lat.Add(tm.RoundTrip)
		c.st.RoundTripTotal += tm.RoundTrip
		c.st.ServerTotal += tm.Server
		if tm.Server > 0 {
			c.srv.Add(tm.Server)
		}
		return
	}
	if errors.Is(err, context.Canceled) {
		return // the caller gave up: not the server's failure
	}
	c.st.Failures++
	c.st.LastError = err.Error()
	c.st.Errors[errorKind(err)]++
	c.fails++
	if c.fails >= c.cfg.BreakerFailures {
		if c.fails == c.cfg.BreakerFailures {
			c.log.Warn("remote VidEmo circuit open", "failures", c.fails, "cooldown", c.cfg.BreakerCooldown, "err", err)
		}
		c.openUntil = time.Now().Add(c.cfg.BreakerCooldown)
	}
}

func errorKind(err error) string {
	var se *StatusError
	switch {
	case errors.As(err, &se) && se.Code == http.StatusTooManyRequests:
		return "http_429"
	case errors.As(err, &se) && se.Code >= 500:
		return "http_5xx"
	case errors.As(err, &se):
		return "http_4xx"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "network"
}

// Stats returns a snapshot of the counters.
func (c *Client) Stats() ClientStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.st
	s.Errors = make(map[string]int64, len(c.st.Errors))
	for k, v := range c.st.Errors {
		s.Errors[k] = v
	}
	s.Up = c.fails == 0
	switch {
	case c.fails < c.cfg.BreakerFailures:
		s.State = "closed"
	case time.Now().Before(c.openUntil):
		s.State = "open"
	default:
		s.State = "half_open"
	}
	s.Latency, s.Server = summarize(c.lat), summarize(c.srv)
	return s
}

// Models lists the server's models (GET /v1/models): doctor's probe.
func (c *Client) Models(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.endpoint, "/chat/completions")+"/models", nil)
	if err != nil {
		return nil, err
	}
	if c.cfg.APIKey != "" {
		hr.Header.Set("Authorization", "Bearer "+c.cfg.APIKey)
	}
	res, err := c.http.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return nil, &StatusError{Code: res.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	var ml ModelList
	if err := json.Unmarshal(b, &ml); err != nil {
		return nil, fmt.Errorf("decode models: %w", err)
	}
	var ids []string
	for _, m := range ml.Data {
		ids = append(ids, m.ID)
	}
	return ids, nil
}

// Latency summarises recent durations: how many ever, p50, p95 and the
// maximum of the last 1024.
type Latency struct {
	Count         uint64
	P50, P95, Max time.Duration
}

func summarize(r *ring.Ring[time.Duration]) Latency {
	v := r.Sorted()
	if len(v) == 0 {
		return Latency{}
	}
	q := func(p float64) time.Duration { return v[min(len(v)-1, int(p*float64(len(v))))] }
	return Latency{Count: r.Count(), P50: q(0.5), P95: q(0.95), Max: v[len(v)-1]}
}
