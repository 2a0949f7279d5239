package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/engine"
)

// Set by the Makefile: go build -ldflags "-X main.version=... -X main.commit=...".
var commit = ""

// buildCommit is the commit the binary was built from: -X main.commit, else
// the VCS stamp go build records in a git checkout.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", ""
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
		if rev != "" {
			return rev + dirty
		}
	}
	return "unknown"
}

// cmdVersion prints edgemo's version and commit and the versions of what it
// runs on: Go, OpenCV (linked) and ONNX Runtime (loaded, as analyze and run
// would find it). A library that cannot be loaded is reported, not fatal:
// version is what one runs to find out what is wrong.
func cmdVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library (default $EDGEMO_ORT_LIB, then deps/onnxruntime/libonnxruntime.so.1 or lib/ beside the binary)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	fmt.Fprintf(stdout, "edgemo       %s\n", version)
	fmt.Fprintf(stdout, "commit       %s\n", buildCommit())
	fmt.Fprintf(stdout, "go           %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	fmt.Fprintf(stdout, "opencv       %s (gocv %s)\n", gocv.OpenCVVersion(), gocv.Version())
	rep, err := engine.ORTInfo(engine.RuntimeConfig{LibraryPath: *ortLib, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		fmt.Fprintf(stdout, "onnxruntime  not loaded: %v\n", err)
		return nil
	}
	fmt.Fprintf(stdout, "onnxruntime  %s (%s)\n", rep.Version, rep.Library)
	return nil
}
