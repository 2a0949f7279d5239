package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// Manifest plumbing shared by every model family (the face models here,
// VidEmo in engine/videmo): strict JSON reading, the checks every manifest
// makes of its name and files, and sha256-checked files, with errors that
// name the file and the command that fixes it. Each family keeps its own
// validation.

// LoadManifestFile reads the manifest at path into m, rejecting unknown
// fields (a typo in a manifest must not silently drop a setting), then runs
// validate (its error is prefixed with path) and verify, which checks the
// files the manifest lists. fix is the command that produces the manifest,
// for the "missing" error.
func LoadManifestFile(path string, m any, fix string, validate, verify func() error) error {
	if err := readManifestJSON(path, m, fix); err != nil {
		return err
	}
	if err := validate(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return verify()
}

func readManifestJSON(path string, v any, fix string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: manifest missing; %s or fix the path", path, fix)
		}
		return fmt.Errorf("%s: %w", path, err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: invalid manifest JSON: %w", path, err)
	}
	return nil
}

// Issues collects what is wrong with a manifest, so that one error lists
// every problem rather than the first.
type Issues []string

// Addf records one problem.
func (is *Issues) Addf(format string, a ...any) { *is = append(*is, fmt.Sprintf(format, a...)) }

// Name checks a manifest's name: non-empty, without '@' or spaces (it is
// the part of "<name>@<sha>" before the '@').
func (is *Issues) Name(name string) {
	if name == "" || strings.ContainsAny(name, "@ \t\n") {
		is.Addf("name must be non-empty without '@' or spaces, got %q", name)
	}
}

// File checks files[i]: a path relative to the manifest and a sha256 as
// manifests write it (64 lowercase hex digits).
func (is *Issues) File(i int, path, sha256 string) {
	if path == "" || filepath.IsAbs(path) {
		is.Addf("files[%d].path must be relative to the manifest, got %q", i, path)
	}
	if !hex64.MatchString(sha256) {
		is.Addf("files[%d].sha256 must be 64 lowercase hex digits", i)
	}
}

// Err is nil when nothing was recorded, else "invalid <kind>: " and the
// problems, in the order they were found.
func (is Issues) Err(kind string) error {
	if len(is) == 0 {
		return nil
	}
	return fmt.Errorf("invalid %s: %s", kind, strings.Join(is, "; "))
}

// CheckFile verifies that path exists and has sha256 want, as manifest
// lists it; fix is the command that (re)creates it.
func CheckFile(path, want, manifest, fix string) error {
	sum, err := FileSHA256(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: missing; %s (it makes the files listed in %s)", path, fix, manifest)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if sum != want {
		return fmt.Errorf("%s: sha256 %s does not match %s (want %s); delete it and %s", path, sum, manifest, want, fix)
	}
	return nil
}

// FileSHA256 is the hex sha256 of a file's bytes. A file already hashed by
// this process, unchanged since (same size and modification time), is not
// read again: a converted VidEmo-3B is 5.3 GB, 34 s of hashing on two cores,
// and every runner open, reload and --check verifies it.
func FileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	key := hashKey{path: p, size: st.Size(), mtime: st.ModTime().UnixNano()}
	if abs, err := filepath.Abs(p); err == nil {
		key.path = abs
	}
	if sum, ok := hashed.Load(key); ok {
		return sum.(string), nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	hashed.Store(key, sum)
	return sum, nil
}

type hashKey struct {
	path        string
	size, mtime int64
}

// hashed caches FileSHA256 by hashKey.
var hashed sync.Map
