// Package openai serves a VidEmo runner over the OpenAI-compatible chat
// completions API (the subset vLLM and SGLang document for Qwen2.5-VL video
// input) and is the client of such a server: the remote VidEmo engine.
package openai

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ChatRequest is the subset of the chat completions request this package
// speaks. Fields beyond OpenAI's (TopK, RepetitionPenalty) are vLLM's and
// SGLang's sampling extensions, which both accept in the request body.
type ChatRequest struct {
	Model     string    `json:"model"`
	Messages  []Message `json:"messages"`
	MaxTokens *int      `json:"max_tokens,omitempty"`
	// MaxCompletionTokens is OpenAI's newer name for MaxTokens.
	MaxCompletionTokens *int     `json:"max_completion_tokens,omitempty"`
	Temperature         *float64 `json:"temperature,omitempty"`
	TopP                *float64 `json:"top_p,omitempty"`
	TopK                *int     `json:"top_k,omitempty"`
	RepetitionPenalty   *float64 `json:"repetition_penalty,omitempty"`
	Seed                *int64   `json:"seed,omitempty"`
	Logprobs            bool     `json:"logprobs,omitempty"`
	TopLogprobs         *int     `json:"top_logprobs,omitempty"`
	Stream              bool     `json:"stream,omitempty"`
	N                   *int     `json:"n,omitempty"`
}

// Message is one chat turn. Content is a string or a list of parts; it is
// kept raw and read by Parts.
type Message struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

// Part is one content part: text, video_url or image_url.
type Part struct {
	Type     string `json:"type"`
	Text     string `json:"text,omitempty"`
	VideoURL *URL   `json:"video_url,omitempty"`
	ImageURL *URL   `json:"image_url,omitempty"`
}

// URL is a content part's url object.
type URL struct {
	URL string `json:"url"`
}

// TextContent is a message content of plain text.
func TextContent(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// PartsContent is a message content of parts.
func PartsContent(parts ...Part) json.RawMessage {
	b, _ := json.Marshal(parts)
	return b
}

// Parts reads the message's content: a string is one text part.
func (m Message) Parts() ([]Part, error) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return []Part{{Type: "text", Text: s}}, nil
	}
	var ps []Part
	if err := json.Unmarshal(m.Content, &ps); err != nil {
		return nil, fmt.Errorf("%s message content: want a string or a list of parts: %w", m.Role, err)
	}
	return ps, nil
}

// ChatResponse is a chat.completion (stream: false).
type ChatResponse struct {
	ID      string   `json:"id"`
	Object  string   `json:"object"`
	Created int64    `json:"created"`
	Model   string   `json:"model"`
	Choices []Choice `json:"choices"`
	Usage   *Usage   `json:"usage,omitempty"`
}

// Choice is one completion.
type Choice struct {
	Index        int          `json:"index"`
	Message      *RespMessage `json:"message,omitempty"`
	Delta        *RespMessage `json:"delta,omitempty"` // stream chunks
	Logprobs     *Logprobs    `json:"logprobs,omitempty"`
	FinishReason *string      `json:"finish_reason"`
}

// RespMessage is the assistant's message (or a stream delta).
type RespMessage struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

// Logprobs are a choice's per-token log probabilities.
type Logprobs struct {
	Content []TokenLogprob `json:"content"`
}

// TokenLogprob is one generated token, its log probability and the most
// likely tokens at its position.
type TokenLogprob struct {
	Token       string  `json:"token"`
	Logprob     float64 `json:"logprob"`
	Bytes       []int   `json:"bytes"`
	TopLogprobs TopList `json:"top_logprobs"`
}

// TopList is a position's top logprobs. It encodes itself: a request may
// ask for the whole vocabulary (150k entries a position), which
// reflection-driven encoding makes the slowest part of serving it.
type TopList []TopLogprob

// MarshalJSON writes the list with strconv.
func (l TopList) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 48*len(l)+2)
	b = append(b, '[')
	for i, t := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendTop(b, t.Token, t.Bytes, t.Logprob)
	}
	return append(b, ']'), nil
}

// appendTop writes one entry; the token's text and bytes are the same in
// every response, so a server keeps them encoded (tokenTable) and passes
// them as a pre-encoded prefix in Token with Bytes nil.
func appendTop(b []byte, token string, bytes []int, logprob float64) []byte {
	if bytes == nil && strings.HasPrefix(token, `{"token":`) {
		b = append(b, token...)
	} else {
		tok, _ := json.Marshal(token)
		b = append(b, `{"token":`...)
		b = append(b, tok...)
		b = append(b, `,"bytes":[`...)
		for j, c := range bytes {
			if j > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, int64(c), 10)
		}
		b = append(b, "],"...)
	}
	b = append(b, `"logprob":`...)
	b = appendFloat(b, logprob)
	return append(b, '}')
}

// appendFloat writes x as encoding/json would (a logprob is finite; -Inf,
// a token the model rules out, is written as the lowest float64).
func appendFloat(b []byte, x float64) []byte {
	if math.IsInf(x, -1) || math.IsNaN(x) {
		x = -math.MaxFloat64
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

// TopLogprob is one of the most likely tokens at a position.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
	Bytes   []int   `json:"bytes"`
}

// Usage counts tokens. PromptTokensDetails.CachedTokens is the prompt
// prefix served from the prefix cache (vLLM's field).
type Usage struct {
	PromptTokens        int           `json:"prompt_tokens"`
	CompletionTokens    int           `json:"completion_tokens"`
	TotalTokens         int           `json:"total_tokens"`
	PromptTokensDetails *TokenDetails `json:"prompt_tokens_details,omitempty"`
}

// TokenDetails break down the prompt tokens.
type TokenDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// ModelList is the /v1/models response.
type ModelList struct {
	Object string      `json:"object"`
	Data   []ModelCard `json:"data"`
}

// ModelCard is one served model.
type ModelCard struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
	// MaxModelLen is vLLM's field; omitted when unknown.
	MaxModelLen int `json:"max_model_len,omitempty"`
}

// ErrorResponse is the error body OpenAI, vLLM and SGLang return.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody says what went wrong.
type ErrorBody struct {
	Message string `json:"message"`
	Type    string `json:"type"`
	Code    int    `json:"code"`
}

// UnmarshalJSON reads token and logprob only: the bytes of 150k entries
// are what a client reading the option letters does not need.
func (l *TopList) UnmarshalJSON(b []byte) error {
	var lean []struct {
		Token   string  `json:"token"`
		Logprob float64 `json:"logprob"`
	}
	if err := json.Unmarshal(b, &lean); err != nil {
		return err
	}
	*l = make(TopList, len(lean))
	for i, t := range lean {
		(*l)[i] = TopLogprob{Token: t.Token, Logprob: t.Logprob, Bytes: []int{}}
	}
	return nil
}
