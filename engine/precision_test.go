package engine

import (
	"strings"
	"testing"
)

// TestChoosePrecision: auto picks the int8 variants only where they were
// measured (ORT's CPU provider serving, x86-64, VNNI) and says why it did
// not elsewhere; fp32 and int8 are taken as asked; an unknown name is an
// error listing the known ones.
func TestChoosePrecision(t *testing.T) {
	for _, c := range []struct {
		name, goarch, vnni, serving string
		int8                        bool
		why                         string
	}{
		{"auto", "amd64", "AVX-512 VNNI", ProviderCPU, true, "with AVX-512 VNNI"},
		{"", "amd64", "AVX-VNNI", ProviderCPU, true, "with AVX-VNNI"},
		{"auto", "amd64", "", ProviderCPU, false, "no VNNI"},
		{"auto", "arm64", "", ProviderCPU, false, "x86-64 only"},
		{"auto", "amd64", "AVX-512 VNNI", ProviderCUDA, false, ProviderCUDA + " serves"},
		{"auto", "amd64", "AVX-512 VNNI", ProviderTensorRT, false, ProviderTensorRT + " serves"},
		{"fp32", "amd64", "AVX-512 VNNI", ProviderCPU, false, "asked for"},
		{"int8", "arm64", "", ProviderCUDA, true, "asked for"},
	} {
		p, err := choosePrecision(c.name, c.goarch, c.vnni, c.serving)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if p.Int8 != c.int8 || !strings.Contains(p.Why, c.why) {
			t.Errorf("%+v: got %+v", c, p)
		}
		if p.Auto != (c.name == "" || c.name == "auto") {
			t.Errorf("%+v: Auto %v", c, p.Auto)
		}
	}
	if _, err := choosePrecision("int4", "amd64", "", ProviderCPU); err == nil || !strings.Contains(err.Error(), "fp32 (every model float32") {
		t.Errorf("int4: %v, want an error listing the precisions", err)
	}
}

// TestServingProvider: with this CPU-only ORT build the GPU providers
// cannot be appended, so the CPU provider is the one that serves, and auto
// decides on it.
func TestServingProvider(t *testing.T) {
	rt := newTestRuntime(t, quietLogger(), "tensorrt", "cuda", "cpu")
	if got := rt.ServingProvider(); got != ProviderCPU {
		t.Errorf("serving provider %q, want %s", got, ProviderCPU)
	}
}
