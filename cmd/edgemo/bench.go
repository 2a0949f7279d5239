package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/edgemo/edgemo/internal/bench"
	"github.com/edgemo/edgemo/internal/parts"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "vlm" {
		return cmdBenchVLM(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "streams" {
		return cmdBenchStreams(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelFlags
	var pf pipelineFlags
	mf.register(fs)
	pf.register(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the pipeline pass to this file (go tool pprof)")
	src, rest := splitSource(args)
	if err := pf.parse(fs, rest); err != nil {
		return err
	}
	if src == "" {
		src = fs.Arg(0)
	}
	if src == "" {
		src = "deps/media/Megamind.avi"
	}
	log := newLogger(stderr, mf.logLevel)
	stack, err := parts.Build(mf.options(), log)
	if err != nil {
		return err
	}
	defer stack.Close()
	var profile io.Writer
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		profile = f
	}
	r, err := bench.Run(ctx, src, pf.config(src), stack, log, profile)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, r)
	return nil
}
