// Package testenv finds the files scripts/setup.sh installs (deps/), so tests
// use real media, models and libraries. A missing file fails the test with
// the command that provides it; it never skips.
package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// Root is the repository root.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Path returns root-relative path p and fails t if it does not exist.
func Path(t testing.TB, p string) string {
	t.Helper()
	full := filepath.Join(Root(), p)
	if _, err := os.Stat(full); err != nil {
		t.Fatalf("%s is missing: run `scripts/setup.sh --test` (or `make test`) first: %v", p, err)
	}
	return full
}

// Media returns deps/media/<name> (Megamind.avi, Megamind_bugy.avi, vtest.avi, messi5.jpg, astronaut.png).
func Media(t testing.TB, name string) string { return Path(t, filepath.Join("deps", "media", name)) }

// ORTLib returns the ONNX Runtime shared library installed by setup, for
// the architecture the test binary runs on (arm64: scripts/arm64.sh's copy,
// for the test binaries make test-arm64 runs under qemu).
func ORTLib(t testing.TB) string {
	dir := "onnxruntime"
	if runtime.GOARCH != "amd64" {
		dir += "-" + runtime.GOARCH
	}
	return Path(t, filepath.Join("deps", dir, "libonnxruntime.so.1"))
}

// SyncBuffer is a bytes.Buffer safe for concurrent writers: a log sink for
// slog handlers and child processes that the test reads while they run.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String is what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ArtifactsDir is where a test leaves files worth keeping (screenshots):
// $EDGEMO_ARTIFACTS when set, else a temporary directory.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("EDGEMO_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}
