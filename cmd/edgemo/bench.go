package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/edgemo/edgemo/internal/app"
	"github.com/edgemo/edgemo/internal/bench"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "vlm" {
		return cmdBenchVLM(ctx, args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelFlags
	var pf pipelineFlags
	mf.register(fs)
	pf.register(fs)
	src, rest := splitSource(args)
	if err := fs.Parse(rest); err != nil {
		return errUsage
	}
	if src == "" {
		src = fs.Arg(0)
	}
	if src == "" {
		src = "deps/media/Megamind.avi"
	}
	log := newLogger(stderr, mf.logLevel)
	stack, err := app.Build(mf.options(), log)
	if err != nil {
		return err
	}
	defer stack.Close()
	r, err := bench.Run(ctx, src, pf.config(src), stack, log)
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, r)
	return nil
}
