package testenv

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// maxLines: a source file longer than this does more than one job; split
// it by job (tests and generated code excepted).
const maxLines = 500

// Every Go source file outside tests and generated code stays under
// maxLines, so a file keeps to one job.
func TestSourceFilesDoOneJob(t *testing.T) {
	root := Path(t, ".")
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (name == "deps" || name == "bin" || strings.HasPrefix(name, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("// Code generated ")) {
			return nil
		}
		n++
		if lines := bytes.Count(b, []byte("\n")); lines > maxLines {
			rel, _ := filepath.Rel(root, path)
			t.Errorf("%s has %d lines, over %d: split it by job", rel, lines, maxLines)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 50 {
		t.Fatalf("checked %d source files: the walk missed the tree", n)
	}
}
