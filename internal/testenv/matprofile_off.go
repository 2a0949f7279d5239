//go:build !matprofile

package testenv

import "testing"

// MatCount fails the test: without the matprofile tag gocv keeps no leak
// profile, and a leak check must fail rather than pass silently.
func MatCount(t testing.TB) int {
	t.Helper()
	t.Fatal("Mat leak checks need gocv's profile: run `go test -tags matprofile ./...` (or `make test`)")
	return 0
}

// MatLeaks is empty without the profile.
func MatLeaks() string { return "" }
