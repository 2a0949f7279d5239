package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/daemon"
	"github.com/edgemo/edgemo/internal/doctor"
)

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "YAML config file (default: the embedded default; see edgemo.example.yaml)")
	check := fs.Bool("check", false, "validate the config and exit")
	example := fs.Bool("print-example", false, "print an example config and exit")
	level := fs.String("log-level", "", "override the config's log_level")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *example {
		_, err := stdout.Write(config.Example())
		return err
	}
	d := daemon.New(daemon.Options{ConfigPath: *path, Version: version, Logger: newLogger(stderr, "info")})
	cfg, err := d.LoadConfig()
	if err != nil {
		return err
	}
	if *check {
		return checkConfig(cfg, stdout)
	}
	lvl := cfg.LogLevel
	if *level != "" {
		lvl = *level
	}
	d = daemon.New(daemon.Options{ConfigPath: *path, Version: version, Logger: newLogger(stderr, lvl)})
	return d.Run(ctx)
}

// checkConfig is --check past parsing: every manifest and model file the
// config names is loaded as the daemon would load it, and each failure is
// an error at its key's line with the fix.
func checkConfig(cfg *config.Config, stdout io.Writer) error {
	var errs []error
	for _, c := range doctor.ConfigModels(cfg) {
		switch c.Status {
		case doctor.Fail:
			errs = append(errs, cfg.Errorf(c.Key, "%s; fix: %s", c.Detail, c.Fix))
		case doctor.Warn:
			fmt.Fprintf(stdout, "warn: %v\n", cfg.Errorf(c.Key, "%s; it will be disabled (fix: %s)", c.Detail, c.Fix))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %d model check(s) failed:\n%w", cfg.Path(), len(errs), errors.Join(errs...))
	}
	fmt.Fprintf(stdout, "%s: ok (%d cameras: %v; models loaded and verified)\n", cfg.Path(), len(cfg.CameraNames()), cfg.CameraNames())
	return nil
}
