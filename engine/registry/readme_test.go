package registry_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgemo/edgemo/engine/registry"
)

var update = flag.Bool("update", false, "rewrite the README's parts table from the registry")

const begin, end = "<!-- parts:begin -->\n", "<!-- parts:end -->"

// The README's parts table is generated from the registry; after adding or
// changing a part, regenerate it with
// `go test ./engine/registry -run TestREADMEPartsTable -update`.
func TestREADMEPartsTable(t *testing.T) {
	path := filepath.Join("..", "..", "README.md")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("%s: no %q … %q section", path, strings.TrimSpace(begin), end)
	}
	got, want := s[i+len(begin):j], registry.Markdown()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(s[:i+len(begin)]+want+s[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s: the parts table is not the registry's; run `go test ./engine/registry -run TestREADMEPartsTable -update`\nwant:\n%s", path, want)
}
