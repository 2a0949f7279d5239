package openai

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/engine/videmo"
)

// The fixtures in testdata/ are written by hand after the request and
// response shapes the published docs show (not captured from a server):
//   - vllm_video_request.json: vLLM's "Multimodal Inputs" page (online
//     serving, video_url parts; base64 frames as data:video/jpeg;base64,
//     frame,frame,…) and its OpenAI-compatible server page (logprobs,
//     top_logprobs, max_tokens), with Qwen2.5-VL as in Qwen's vLLM example;
//   - vllm_logprobs_response.json: the chat.completion of vLLM's
//     OpenAI-compatible server with logprobs (its ChatCompletionResponse:
//     stop_reason, prompt_logprobs, kv_transfer_params beside OpenAI's
//     fields);
//   - sglang_logprobs_response.json: SGLang's "OpenAI APIs - Completions"
//     and "OpenAI APIs - Vision" pages (matched_stop, metadata, key order
//     token/bytes/logprob);
//   - vllm_stream.txt: vLLM's server-sent chat.completion.chunk events.

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keys is the set of object keys in v, as paths ("messages[].content[].type").
func keys(v any, path string, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out[path+"."+k] = true
			keys(e, path+"."+k, out)
		}
	case []any:
		for _, e := range x {
			keys(e, path+"[]", out)
		}
	}
}

func shape(t *testing.T, b []byte) []string {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	keys(v, "", m)
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// The remote engine's closed-set request has exactly the keys of vLLM's
// documented video request with logprobs (the same JSON types, the video as
// one data:video/jpeg;base64 URL of comma-joined frames); the vLLM and SGLang responses parse
// through the client into the option letters' distribution and letter
// mass; vLLM's event stream reads to its text and finish reason.
func TestFixturesRoundTrip(t *testing.T) {
	plan := &videmo.Manifest{System: videmo.DefaultSystem, Engine: "videmo-test"}
	rem := &Remote{cfg: RemoteConfig{Client: ClientConfig{Model: "Qwen/Qwen2.5-VL-7B-Instruct"}, TopLogprobs: 5}, m: plan}
	q := &videmo.Question{ID: "emotion", Kind: "choice", Prompt: "What is the emotion of the person in the video?",
		Instruction: "Answer with the option's letter from the given choices directly.",
		Options:     []videmo.Option{{Letter: "A", Label: "happy"}, {Letter: "B", Label: "sad"}}}
	req := rem.request("data:video/jpeg;base64,AAAA,BBBB", q.Text())
	req.MaxTokens, req.Temperature = ptr(1), ptr(0.0)
	req.Logprobs, req.TopLogprobs = true, ptr(5)
	ours, _ := json.Marshal(req)
	doc := fixture(t, "vllm_video_request.json")
	if a, b := shape(t, ours), shape(t, doc); !slices.Equal(a, b) {
		t.Fatalf("request shape:\nours %v\nvLLM %v", a, b)
	}
	var dr, or ChatRequest
	json.Unmarshal(doc, &dr)
	json.Unmarshal(ours, &or)
	if !strings.HasPrefix(videoPart(t, or), "data:video/jpeg;base64,") || or.Messages[1].Role != dr.Messages[1].Role || textPart(t, or) != textPart(t, dr) {
		t.Errorf("request content: ours %s", ours)
	}

	for _, c := range []struct {
		file       string
		top        string
		pA, pB     float64 // logprobs of A and B in the fixture
		exact      bool
		wantMethod string
	}{
		{"vllm_logprobs_response.json", "happy", -0.0621, -2.9121, true, tree.MethodOptionLogits},
		{"sglang_logprobs_response.json", "sad", -1.2040, -0.4055, true, tree.MethodOptionLogits},
	} {
		var resp ChatResponse
		if err := json.Unmarshal(fixture(t, c.file), &resp); err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		ch, exact, err := ReadChoice(&resp, q)
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		eA, eB := math.Exp(c.pA), math.Exp(c.pB)
		label, p := ch.Top()
		if exact != c.exact || label != c.top || math.Abs(p-math.Max(eA, eB)/(eA+eB)) > 1e-6 || math.Abs(ch.LetterMass-(eA+eB)) > 1e-6 || ch.Method != c.wantMethod {
			t.Errorf("%s: %s %.6f, mass %.6f, exact %v, %s", c.file, label, p, ch.LetterMass, exact, ch.Method)
		}
		if content(&resp) == "" || resp.Usage == nil || resp.Usage.PromptTokens == 0 {
			t.Errorf("%s: content %q usage %+v", c.file, content(&resp), resp.Usage)
		}
	}

	// a letter outside the top k: bounded, not exact, mass a lower bound
	var resp ChatResponse
	json.Unmarshal(fixture(t, "sglang_logprobs_response.json"), &resp)
	q3 := *q
	q3.Options = append(q3.Options, videmo.Option{Letter: "C", Label: "neutral"})
	ch, exact, _ := ReadChoice(&resp, &q3)
	if exact || math.Abs(ch.LetterMass-(math.Exp(-1.2040)+math.Exp(-0.4055))) > 1e-6 || math.Abs(float64(ch.Logits[2])-(-4.6052)) > 1e-4 {
		t.Errorf("missing letter: exact %v mass %g logits %v", exact, ch.LetterMass, ch.Logits)
	}

	f, err := os.Open("testdata/vllm_stream.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	text, fin, _, err := ReadStream(f)
	if err != nil || text != "The person is smiling." || fin != "stop" {
		t.Errorf("vLLM stream: %q %q %v", text, fin, err)
	}
}

func videoPart(t *testing.T, r ChatRequest) string {
	ps, _ := r.Messages[1].Parts()
	for _, p := range ps {
		if p.VideoURL != nil {
			return p.VideoURL.URL
		}
	}
	return ""
}

func textPart(t *testing.T, r ChatRequest) string {
	ps, _ := r.Messages[1].Parts()
	for _, p := range ps {
		if p.Type == "text" {
			return p.Text
		}
	}
	return ""
}
