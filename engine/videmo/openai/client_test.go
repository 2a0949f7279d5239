package openai

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// A stand-in for a busy or failing vLLM (the seam a real one would fill):
// it answers status codes from a script, then a minimal completion.
func scripted(t *testing.T, codes ...int) (*httptest.Server, *atomic.Int64) {
	var n atomic.Int64
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if i < len(codes) && codes[i] != 200 {
			if codes[i] == 429 {
				w.Header().Set("Retry-After", "0")
			}
			writeError(w, codes[i], "scripted failure")
			return
		}
		w.Header().Set("Server-Timing", "infer;dur=1.5")
		w.Write([]byte(`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"A"},"finish_reason":"length"}]}`))
	}))
	t.Cleanup(hs.Close)
	return hs, &n
}

// 429 and 5xx are retried (with jitter; Retry-After honoured) and counted;
// a 4xx is not retried; consecutive failures open the circuit, which then
// refuses without a request until its cooldown, and one successful probe
// closes it again.
func TestClientRetriesAndBreaker(t *testing.T) {
	ctx := context.Background()
	req := &ChatRequest{Model: "m", Messages: []Message{{Role: "user", Content: TextContent("q")}}}

	hs, n := scripted(t, 503, 429, 200)
	c, err := NewClient(ClientConfig{URL: hs.URL, BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	resp, tm, err := c.Chat(ctx, req)
	if err != nil || content(resp) != "A" || tm.Attempts != 3 || n.Load() != 3 || tm.Server != 1500*time.Microsecond {
		t.Fatalf("retries: %v %+v, %d requests", err, tm, n.Load())
	}
	if st := c.Stats(); st.Retries != 2 || st.OK != 1 || st.Failures != 0 || !st.Up {
		t.Errorf("stats %+v", st)
	}

	hs, n = scripted(t, 400)
	c, _ = NewClient(ClientConfig{URL: hs.URL, BackoffBase: time.Millisecond})
	var se *StatusError
	if _, _, err := c.Chat(ctx, req); !errors.As(err, &se) || se.Code != 400 || n.Load() != 1 {
		t.Fatalf("4xx: %v after %d requests; want one, not retried", err, n.Load())
	}

	hs, n = scripted(t, 500, 500, 500, 500, 500, 500)
	c, _ = NewClient(ClientConfig{URL: hs.URL, BackoffBase: time.Millisecond, Retries: -1, BreakerFailures: 3, BreakerCooldown: 200 * time.Millisecond})
	for range 3 {
		c.Chat(ctx, req)
	}
	if _, _, err := c.Chat(ctx, req); !errors.Is(err, ErrCircuitOpen) || n.Load() != 3 {
		t.Fatalf("open circuit: %v after %d requests", err, n.Load())
	}
	if st := c.Stats(); st.State != "open" || st.Rejected != 1 || st.Errors["http_5xx"] != 3 || st.Up {
		t.Errorf("stats %+v", st)
	}
	time.Sleep(250 * time.Millisecond)
	if _, _, err := c.Chat(ctx, req); err == nil || n.Load() != 4 { // the probe fails: open again
		t.Fatalf("half-open probe: %v, %d requests", err, n.Load())
	}
	if _, _, err := c.Chat(ctx, req); !errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("after a failed probe: %v", err)
	}
	n.Store(100) // the server recovers
	time.Sleep(250 * time.Millisecond)
	if _, _, err := c.Chat(ctx, req); err != nil {
		t.Fatalf("probe after recovery: %v", err)
	}
	if st := c.Stats(); st.State != "closed" || !st.Up {
		t.Errorf("after recovery %+v", st)
	}
}

// A server slower than the timeout fails the attempt as a timeout.
func TestClientTimeout(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(hs.Close)
	c, _ := NewClient(ClientConfig{URL: hs.URL, Timeout: 100 * time.Millisecond, Retries: -1})
	t0 := time.Now()
	_, _, err := c.Chat(context.Background(), &ChatRequest{Model: "m"})
	if err == nil || time.Since(t0) > time.Second || c.Stats().Errors["timeout"] != 1 {
		t.Fatalf("timeout: %v after %v, %+v", err, time.Since(t0), c.Stats())
	}
}
