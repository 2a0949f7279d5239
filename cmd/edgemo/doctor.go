package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/edgemo/edgemo/internal/doctor"
	"github.com/edgemo/edgemo/internal/parts"
)

func cmdDoctor(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelFlags
	mf.register(fs)
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	o := mf.options()
	if o.Manifest == "" {
		o.Manifest = parts.DefaultManifest()
	}
	checks := doctor.Run(o, newLogger(io.Discard, "error"))
	failed := doctor.Print(stdout, checks)
	if failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed; see the fixes above", failed)
	}
	return nil
}
