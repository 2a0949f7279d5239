package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

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
	o.Manifest = parts.EmotionManifest(o.Manifest)
	if mf.remote != "" && o.VLM.Remote.URL == "" { // --remote without --engine videmo/tiered: probe it all the same
		o.VLM.Remote = parts.RemoteOptions{URL: mf.remote, Model: mf.remoteModel, APIKey: os.Getenv("EDGEMO_VIDEMO_API_KEY")}
		o.VLM.Manifest = mf.manifest
	}
	if o.VLM.Remote.Timeout == 0 {
		o.VLM.Remote.Timeout = 5 * time.Second
	}
	checks := doctor.Run(o, newLogger(io.Discard, "error"))
	failed := doctor.Print(stdout, checks)
	if failed > 0 {
		return fmt.Errorf("doctor: %d check(s) failed; see the fixes above", failed)
	}
	return nil
}
