package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/internal/testenv"
)

func post(t *testing.T, url, key string, body any) (*http.Response, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(res.Body)
	return res, out.Bytes()
}

// A question with one generated token's logprobs, asked plainly and as a
// stream: the stream's deltas join to the same text with the same
// logprobs; bearer-token auth, the model name, the body-size, frame,
// max_tokens and top_logprobs limits and text-only requests are refused
// with 401, 404, 413 and 400s that name the fix; /v1/models lists the model.
func TestServerAPI(t *testing.T) {
	rt := testRuntime(t)
	srv, hs := tinyServer(t, rt, ServerConfig{APIKey: "k3y", MaxRequestBytes: 4 << 20})
	plan, err := videmo.LoadPlan(testenv.Path(t, tinyManifest))
	if err != nil {
		t.Fatal(err)
	}
	rem, err := NewRemote(RemoteConfig{Client: ClientConfig{URL: hs.URL + "/v1", Model: srv.Model(), APIKey: "k3y"}, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	req := rem.request(videoOf(t, testWindow(2), plan), "Describe the face.")
	req.MaxTokens, req.Logprobs, req.TopLogprobs, req.Temperature = ptr(6), true, ptr(5), ptr(0.0)

	res, body := post(t, hs.URL, "k3y", req)
	if res.StatusCode != 200 {
		t.Fatalf("chat: %d %s", res.StatusCode, body)
	}
	var plain ChatResponse
	if err := json.Unmarshal(body, &plain); err != nil {
		t.Fatal(err)
	}
	lp := plain.Choices[0].Logprobs
	if plain.Object != "chat.completion" || lp == nil || len(lp.Content) == 0 || len(lp.Content[0].TopLogprobs) != 5 || plain.Usage.CompletionTokens != len(lp.Content) {
		t.Fatalf("response %s", body)
	}
	for _, c := range lp.Content {
		if c.Logprob > 0 || c.TopLogprobs[0].Logprob < c.TopLogprobs[4].Logprob {
			t.Errorf("logprob %+v: not a log probability, or the top list is not sorted", c)
		}
	}
	if res.Header.Get("Server-Timing") == "" {
		t.Error("no Server-Timing header")
	}

	// the same as a stream
	req.Stream = true
	b, _ := json.Marshal(req)
	hr, _ := http.NewRequest(http.MethodPost, hs.URL+"/v1/chat/completions", bytes.NewReader(b))
	hr.Header.Set("Authorization", "Bearer k3y")
	sres, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer sres.Body.Close()
	if ct := sres.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("stream content type %q", ct)
	}
	var text strings.Builder
	var slp []TokenLogprob
	done, fin := false, ""
	sc := bufio.NewScanner(sres.Body)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if line == "[DONE]" {
			done = true
			break
		}
		var ch ChatResponse
		if err := json.Unmarshal([]byte(line), &ch); err != nil {
			t.Fatalf("chunk %q: %v", line, err)
		}
		c := ch.Choices[0]
		if ch.Object != "chat.completion.chunk" || c.Delta == nil {
			t.Fatalf("chunk %q", line)
		}
		if c.Delta.Content != nil {
			text.WriteString(*c.Delta.Content)
		}
		if c.Logprobs != nil {
			slp = append(slp, c.Logprobs.Content...)
		}
		if c.FinishReason != nil {
			fin = *c.FinishReason
		}
	}
	if !done || fin != *plain.Choices[0].FinishReason || text.String() != jsonText(*plain.Choices[0].Message.Content) || len(slp) != len(lp.Content) {
		t.Fatalf("stream: done %v finish %q text %q (%d logprobs); plain %q %q (%d)", done, fin, text.String(), len(slp), *plain.Choices[0].FinishReason, *plain.Choices[0].Message.Content, len(lp.Content))
	}
	for i := range slp {
		if slp[i].Token != lp.Content[i].Token || slp[i].Logprob != lp.Content[i].Logprob {
			t.Errorf("stream token %d: %+v, plain %+v", i, slp[i], lp.Content[i])
		}
	}
	req.Stream = false
	if st := srv.Stats(); st.VisionPasses != 1 || st.PrefixHits != 1 {
		t.Errorf("two questions on one video: %+v; want one vision pass", st)
	}

	// refusals
	cases := []struct {
		name string
		key  string
		mod  func(r *ChatRequest)
		code int
		want string
	}{
		{"no token", "", nil, 401, "bearer token"},
		{"wrong token", "nope", nil, 401, "bearer token"},
		{"model", "k3y", func(r *ChatRequest) { r.Model = "gpt-4o" }, 404, "does not exist"},
		{"max_tokens", "k3y", func(r *ChatRequest) { r.MaxTokens = ptr(100000) }, 400, "max_tokens"},
		{"top_logprobs", "k3y", func(r *ChatRequest) { r.TopLogprobs = ptr(21) }, 400, "--max-logprobs"},
		{"top_logprobs without logprobs", "k3y", func(r *ChatRequest) { r.Logprobs = false }, 400, "logprobs: true"},
		{"text only", "k3y", func(r *ChatRequest) {
			r.Messages = []Message{{Role: "user", Content: TextContent("hello")}}
		}, 400, "video_url"},
		{"remote URL", "k3y", func(r *ChatRequest) {
			r.Messages = []Message{{Role: "user", Content: PartsContent(Part{Type: "video_url", VideoURL: &URL{URL: "http://example.com/v.mp4"}})}}
		}, 400, "fetches nothing"},
		{"too many frames", "k3y", func(r *ChatRequest) {
			one := videoOf(t, testWindow(3), plan)
			_, frames, _ := splitDataURL(one)
			many := "data:video/jpeg;base64," + strings.Repeat(frames[0]+",", 16) + frames[0]
			r.Messages = []Message{{Role: "user", Content: PartsContent(Part{Type: "video_url", VideoURL: &URL{URL: many}})}}
		}, 400, "at most 16"},
		{"not an image", "k3y", func(r *ChatRequest) {
			r.Messages = []Message{{Role: "user", Content: PartsContent(Part{Type: "image_url", ImageURL: &URL{URL: "data:image/png;base64,aGVsbG8="}})}}
		}, 400, "not a PNG or JPEG"},
		{"body too large", "k3y", func(r *ChatRequest) {
			r.Messages[0].Content = TextContent(strings.Repeat("x", 5<<20))
		}, 413, "--max-request-bytes"},
	}
	for _, c := range cases {
		r := *req
		r.Messages = append([]Message(nil), req.Messages...)
		if c.mod != nil {
			c.mod(&r)
		}
		res, body := post(t, hs.URL, c.key, &r)
		if res.StatusCode != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %s; want %d naming %q", c.name, res.StatusCode, body, c.code, c.want)
		}
	}

	// vLLM's documented video request (fixtures_test.go), with real frames
	doc := strings.Replace(string(fixture(t, "vllm_video_request.json")), "data:video/jpeg;base64,FRAMES", videoOf(t, testWindow(4), plan), 1)
	var dreq ChatRequest
	if err := json.Unmarshal([]byte(doc), &dreq); err != nil {
		t.Fatal(err)
	}
	dreq.Model = srv.Model()
	res, body = post(t, hs.URL, "k3y", &dreq)
	var dresp ChatResponse
	if res.StatusCode != 200 || json.Unmarshal(body, &dresp) != nil || len(dresp.Choices[0].Logprobs.Content[0].TopLogprobs) != 5 {
		t.Errorf("vLLM's documented request: %d %.300s", res.StatusCode, body)
	}

	ids, err := rem.Client().Models(context.Background())
	if err != nil || len(ids) != 1 || ids[0] != "videmo-tiny" {
		t.Errorf("models: %v %v", ids, err)
	}
}
