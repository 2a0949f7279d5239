//go:build matprofile

package testenv

import (
	"bytes"
	"testing"

	"gocv.io/x/gocv"
)

// MatCount is the number of live gocv Mats (needs -tags matprofile).
func MatCount(t testing.TB) int { return gocv.MatProfile.Count() }

// MatLeaks describes where the live Mats were made.
func MatLeaks() string {
	var b bytes.Buffer
	_ = gocv.MatProfile.WriteTo(&b, 1) // a bytes.Buffer does not fail
	return b.String()
}
