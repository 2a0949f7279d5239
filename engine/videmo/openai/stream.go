package openai

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/edgemo/edgemo/engine/videmo"
)

// stream answers j as server-sent events, one chat.completion.chunk per
// generated token (its text, and its logprobs when asked), then a chunk
// with the finish reason and "data: [DONE]", as OpenAI and vLLM do.
func (s *Server) stream(w http.ResponseWriter, r *http.Request, j *job) {
	fl, ok := w.(http.Flusher)
	if !ok {
		s.fail(w, fmt.Errorf("streaming: the response writer cannot flush"))
		return
	}
	id := fmt.Sprintf("chatcmpl-%x", time.Now().UnixNano())
	created := time.Now().Unix()
	started := false
	send := func(c Choice) error {
		b, err := json.Marshal(ChatResponse{ID: id, Object: "chat.completion.chunk", Created: created, Model: s.cfg.Model, Choices: []Choice{c}})
		if err != nil {
			return err
		}
		if !started {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-cache")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return fmt.Errorf("client gone: %w", err)
		}
		fl.Flush()
		return nil
	}
	dec := s.r.Tokenizer().NewStreamDecoder()
	dec.SkipSpecial = true
	first := true
	onToken := func(a *videmo.Answer) error {
		i := len(a.Tokens) - 1
		text := dec.Push(a.Tokens[i])
		d := &RespMessage{Content: &text}
		if first {
			d.Role, first = "assistant", false
		}
		c := Choice{Delta: d}
		if j.logprobs {
			c.Logprobs = &Logprobs{Content: s.tokenLogprobs(a, i, i+1, j.topLogprobs)}
		}
		return send(c)
	}
	out, err := s.run(r.Context(), j, onToken)
	if err != nil {
		if !started {
			s.fail(w, err)
			return
		}
		s.stats.failures.Add(1)
		b, _ := json.Marshal(ErrorResponse{Error: ErrorBody{Message: err.Error(), Type: "internal_server_error", Code: 500}})
		fmt.Fprintf(w, "data: %s\n\ndata: [DONE]\n\n", b)
		fl.Flush()
		return
	}
	rest := dec.Flush()
	fin := out.finish
	d := &RespMessage{}
	if rest != "" || first {
		d.Content = &rest
		if first {
			d.Role = "assistant"
		}
	}
	if err := send(Choice{Delta: d, FinishReason: &fin}); err != nil {
		return
	}
	fmt.Fprint(w, "data: [DONE]\n\n")
	fl.Flush()
}

// ReadStream reads a chat completion event stream (stream: true) to its
// end: the content deltas joined, the finish reason and the tokens'
// logprobs, as OpenAI, vLLM and SGLang send them.
func ReadStream(r io.Reader) (text, finish string, lps []TokenLogprob, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	var b strings.Builder
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		line = strings.TrimSpace(line)
		if line == "[DONE]" {
			return b.String(), finish, lps, nil
		}
		var ch struct {
			ChatResponse
			Error *ErrorBody `json:"error"`
		}
		if err := json.Unmarshal([]byte(line), &ch); err != nil {
			return "", "", nil, fmt.Errorf("stream chunk: %w", err)
		}
		if ch.Error != nil {
			return "", "", nil, fmt.Errorf("stream: %s", ch.Error.Message)
		}
		for _, c := range ch.Choices {
			if c.Delta != nil && c.Delta.Content != nil {
				b.WriteString(*c.Delta.Content)
			}
			if c.Logprobs != nil {
				lps = append(lps, c.Logprobs.Content...)
			}
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if err := sc.Err(); err != nil {
		return "", "", nil, err
	}
	return "", "", nil, fmt.Errorf("stream ended without data: [DONE]")
}
