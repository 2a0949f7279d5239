//go:build matprofile

package capture

import (
	"bytes"
	"testing"

	"gocv.io/x/gocv"
)

// matCount is the number of live gocv Mats (needs -tags matprofile).
func matCount(t testing.TB) int { return gocv.MatProfile.Count() }

// matLeaks describes where the live Mats were made.
func matLeaks() string {
	var b bytes.Buffer
	gocv.MatProfile.WriteTo(&b, 1)
	return b.String()
}
