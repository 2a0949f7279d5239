//go:build !matprofile

package capture

import "testing"

// Without the matprofile tag there is no leak profile; leak checks fail
// rather than pass silently.
func matCount(t testing.TB) int {
	t.Helper()
	t.Fatal("Mat leak checks need gocv's profile: run `go test -tags matprofile ./capture/` (or `make test`)")
	return 0
}

func matLeaks() string { return "" }
