package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FileSHA256 hashes a file once per process while it is unchanged, and
// again once it changes, even to the same length.
func TestFileSHA256CachedUntilChanged(t *testing.T) {
	p := filepath.Join(t.TempDir(), "model.onnx")
	want := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	write := func(b []byte, at time.Time) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, at, at); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Now().Add(-time.Hour)
	write([]byte("first"), t0)
	for range 2 {
		if got, err := FileSHA256(p); err != nil || got != want([]byte("first")) {
			t.Fatalf("sha256 %s, %v; want that of the file", got, err)
		}
	}
	write([]byte("other"), t0.Add(time.Second)) // same size, new content
	if got, _ := FileSHA256(p); got != want([]byte("other")) {
		t.Errorf("a changed file kept its old sha256 %s", got)
	}
	if err := CheckFile(p, want([]byte("first")), "m.json", "rerun"); err == nil {
		t.Error("CheckFile accepted the old sha256 for a changed file")
	}
}
