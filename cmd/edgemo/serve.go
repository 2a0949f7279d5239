package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/engine/videmo/openai"
)

// cmdServe is `edgemo serve`: the local VidEmo runner behind an
// OpenAI-compatible chat completions endpoint, so a GPU box serves the
// VidEmo tier of edge boxes (models.videmo_remote) without vLLM.
func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	manifest := fs.String("model", "models/videmo-tiny/videmo.manifest.json", "VidEmo manifest to serve")
	tokPath := fs.String("tokenizer", "", "tokenizer.json (default: beside the manifest, then deps/)")
	listen := fs.String("listen", "127.0.0.1:8000", "address to serve on (host:port; :0 picks a port)")
	apiKey := fs.String("api-key", os.Getenv("EDGEMO_SERVE_API_KEY"), "bearer token required on /v1 (default $EDGEMO_SERVE_API_KEY; empty: none)")
	name := fs.String("served-model-name", "", "model name clients send (default: the manifest's name)")
	maxLogprobs := fs.Int("max-logprobs", 20, "largest top_logprobs a request may ask (-1: the whole vocabulary, as vLLM's --max-logprobs)")
	maxBytes := fs.Int64("max-request-bytes", 64<<20, "largest request body in bytes")
	maxTokens := fs.Int("max-tokens", 4096, "largest max_tokens a request may ask")
	cache := fs.Int("prefix-cache", 8, "prefilled videos kept for follow-up questions")
	providers := fs.String("providers", "tensorrt,cuda,cpu", "execution providers, in order")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library")
	logLevel := fs.String("log-level", "info", "debug, info, warn, error")
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		return errUsage
	}
	switch {
	case *maxLogprobs < -1 || *maxLogprobs == 0:
		return fmt.Errorf("--max-logprobs %d: -1 (the whole vocabulary) or at least 1", *maxLogprobs)
	case *maxBytes < 1<<10:
		return fmt.Errorf("--max-request-bytes %d: at least 1024", *maxBytes)
	case *maxTokens < 1:
		return fmt.Errorf("--max-tokens %d: at least 1", *maxTokens)
	case *cache < 1:
		return fmt.Errorf("--prefix-cache %d: at least 1", *cache)
	}
	log := newLogger(stderr, *logLevel).With("component", "serve")
	r, closeRunner, err := openVidEmo(*manifest, *tokPath, *ortLib, *providers, videmo.Options{}, stderr)
	if err != nil {
		return err
	}
	defer closeRunner()
	srv := openai.NewServer(r, openai.ServerConfig{
		Model: *name, APIKey: *apiKey, MaxRequestBytes: *maxBytes, MaxTokens: *maxTokens,
		MaxLogprobs: *maxLogprobs, PrefixCache: *cache, Logger: log,
	})
	defer srv.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("serve: listen %s: %w (pick another --listen)", *listen, err)
	}
	if *apiKey == "" {
		if h, _, _ := net.SplitHostPort(*listen); h == "" || !net.ParseIP(h).IsLoopback() && h != "localhost" {
			log.Warn("serving without an API key on a network address: set --api-key or $EDGEMO_SERVE_API_KEY")
		}
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	fmt.Fprintf(stdout, "edgemo serve: %s on http://%s/v1 (provider %s)\n", srv.Model(), ln.Addr(), r.Provider())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("serve: shutdown: %w", err)
	}
	return nil
}
