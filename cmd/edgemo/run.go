package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/edgemo/edgemo/internal/config"
	"github.com/edgemo/edgemo/internal/daemon"
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
		fmt.Fprintf(stdout, "%s: ok (%d cameras: %v)\n", cfg.Path(), len(cfg.CameraNames()), cfg.CameraNames())
		return nil
	}
	lvl := cfg.LogLevel
	if *level != "" {
		lvl = *level
	}
	d = daemon.New(daemon.Options{ConfigPath: *path, Version: version, Logger: newLogger(stderr, lvl)})
	return d.Run(ctx)
}
