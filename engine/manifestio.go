package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Manifest plumbing shared by every model family (the face models here,
// VidEmo in engine/videmo): strict JSON reading and sha256-checked files,
// with errors that name the file and the command that fixes it.

// ReadManifestJSON reads path into v, rejecting unknown fields (a typo in a
// manifest must not silently drop a setting). fix is the command that
// produces the manifest, for the "missing" error.
func ReadManifestJSON(path string, v any, fix string) error {
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

// FileSHA256 is the hex sha256 of a file's bytes.
func FileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
