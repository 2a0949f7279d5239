package engine

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/cpu"

	"github.com/edgemo/edgemo/engine/registry"
)

// Precision is which variant of each model with an int8 one runs, and why.
type Precision struct {
	Int8 bool
	Auto bool   // chosen by auto, not asked for
	Why  string // for the log and doctor: "auto: CPU provider on x86-64 with AVX-512 VNNI"
}

// ChoosePrecision resolves a registry.Precisions name for this process:
// fp32 and int8 are what they say; auto is int8 only where the int8
// variants were measured to hold (docs/int8.md): the provider that will
// serve is ORT's CPU provider, on x86-64 with VNNI.
func (r *Runtime) ChoosePrecision(name string) (Precision, error) {
	return choosePrecision(name, runtime.GOARCH, vnni(), r.ServingProvider())
}

func choosePrecision(name, goarch, vnni, serving string) (Precision, error) {
	if name == "" {
		name = registry.Precisions.Default()
	}
	if err := registry.Precisions.Check(name); err != nil {
		return Precision{}, err
	}
	switch {
	case name == registry.PrecisionFP32:
		return Precision{Why: "fp32: asked for"}, nil
	case name == registry.PrecisionInt8:
		return Precision{Int8: true, Why: "int8: asked for"}, nil
	case serving != ProviderCPU:
		return Precision{Auto: true, Why: fmt.Sprintf("auto: %s serves, and the int8 variants were measured on the CPU provider only", serving)}, nil
	case goarch != "amd64":
		return Precision{Auto: true, Why: fmt.Sprintf("auto: %s, and the int8 variants were measured on x86-64 only", goarch)}, nil
	case vnni == "":
		return Precision{Auto: true, Why: "auto: this x86-64 CPU has no VNNI, where exact int8 (session.x64quantprecision) gains a tenth at most over float32"}, nil
	}
	return Precision{Int8: true, Auto: true, Why: "auto: CPU provider on x86-64 with " + vnni}, nil
}

// vnni names the CPU's int8 dot-product extension, or "" without one.
func vnni() string {
	switch {
	case cpu.X86.HasAVX512VNNI:
		return "AVX-512 VNNI"
	case cpu.X86.HasAVXVNNI:
		return "AVX-VNNI"
	}
	return ""
}

// ServingProvider is the ORT name of the provider this runtime's sessions
// will run on: the first of its providers that can be appended to a
// session here (a GPU provider whose libraries are missing cannot). The
// CPU provider always appends.
func (r *Runtime) ServingProvider() string {
	r.servingOnce.Do(func() {
		for _, p := range r.providers {
			if _, down := providerDown.Load(r.lib + "|" + p); down {
				continue
			}
			if err := canAppend(p, r.cfg.TensorRT); err != nil {
				// said once (providerDown remembers it), with the reason, as OpenGraph says it
				r.log.Warn("execution provider unavailable, falling back", "provider", p, "err", err)
				providerDown.Store(r.lib+"|"+p, err)
				continue
			}
			r.serving = p
			return
		}
	})
	return r.serving
}
