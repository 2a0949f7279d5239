package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/edgemo/edgemo/engine/tokenizer"
)

// cmdTokenize: edgemo tokenize --tokenizer <tokenizer.json> --json
// reads a JSON array of strings on stdin and prints the JSON array of their
// token-id arrays, one per line (special-token text such as <|im_start|> is
// recognised; nothing is added).
func cmdTokenize(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tokenize", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("tokenizer", "", "HuggingFace tokenizer.json of a Qwen2-family model (required)")
	asJSON := fs.Bool("json", false, "read a JSON array of strings on stdin, print a JSON array of id arrays (required; the only mode)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: edgemo tokenize --tokenizer <tokenizer.json> --json < texts.json")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *path == "" || !*asJSON || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	tok, err := tokenizer.Load(*path)
	if err != nil {
		return err
	}
	if err := tok.EncodeJSON(stdin, stdout); err != nil {
		return fmt.Errorf("tokenize: stdin: %w", err)
	}
	return nil
}
