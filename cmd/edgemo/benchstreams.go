package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"time"

	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/bench"
	"github.com/edgemo/edgemo/internal/parts"
)

// Clips scripts/setup.sh makes from the sample media.
const (
	streamsClip = "deps/streams/megamind-720p.mp4"
	emptyClip   = "deps/streams/empty-720p.mp4"
)

// cmdBenchStreams: how many real-time cameras this machine holds with zero
// capture drops, with the daemon's defaults (one detector per camera, the
// analyzer shared), on a clip and on an empty scene.
func cmdBenchStreams(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench streams", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var mf modelFlags
	var pf pipelineFlags
	mf.register(fs)
	pf.register(fs)
	maxCams := fs.Int("max", 16, "most cameras tried (a binary search over --min..max)")
	minCams := fs.Int("min", 1, "fewest cameras tried (--min N --max N: one trial of N cameras)")
	emptyMax := fs.Int("empty-max", 0, "most cameras tried on the empty scene (0: twice --max)")
	empty := fs.String("empty", emptyClip, "the empty-scene clip (no face, no motion); off: skip that variant")
	warmup := fs.Duration("warmup", 5*time.Second, "run before counting")
	measure := fs.Duration("measure", 20*time.Second, "the measured interval")
	stagger := fs.Bool("stagger", true, "start camera i of N i/N of the clip later, as independent cameras are out of step (false: every camera plays the clip in step, its busiest second everywhere at once)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of every trial (face clip and empty scene) to this file (go tool pprof)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: edgemo bench streams [FILE] [flags]\n\nFILE: a clip each camera loops in real time (default %s, made by scripts/setup.sh)\n", streamsClip)
		fs.PrintDefaults()
	}
	src, rest := splitSource(args)
	if err := pf.parse(fs, rest); err != nil {
		return err
	}
	if src == "" {
		src = fs.Arg(0)
	}
	if src == "" {
		src = streamsClip
	}
	if *maxCams < 1 || *maxCams > 256 || *emptyMax < 0 || *emptyMax > 512 {
		return fmt.Errorf("--max %d / --empty-max %d: use 1..256 / 0..512 cameras", *maxCams, *emptyMax)
	}
	if *minCams < 1 || *minCams > *maxCams {
		return fmt.Errorf("--min %d: use 1..--max (%d) cameras", *minCams, *maxCams)
	}
	if *warmup < 0 || *measure < time.Second {
		return fmt.Errorf("--warmup %v, --measure %v: the measured interval needs at least 1s", *warmup, *measure)
	}
	for _, f := range []string{src, *empty} {
		if f == "off" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("bench streams: %s: %w (scripts/setup.sh makes %s and %s from the sample media)", f, err, streamsClip, emptyClip)
		}
	}
	log := newLogger(stderr, mf.logLevel)
	opts := mf.options()
	models, err := parts.LoadModels(opts, log)
	if err != nil {
		return err
	}
	defer models.Close()
	dlog := log.With("component", "detector")
	cfg := bench.StreamsConfig{
		Source: src, Min: *minCams, Max: *maxCams, Warmup: *warmup, Measure: *measure, Stagger: *stagger,
		Pipeline:    pf.config(src),
		NewDetector: func() (facetrack.Detector, error) { return parts.NewDetector(opts, dlog) },
		Analyzer:    models.Analyzer,
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	r, err := bench.Streams(ctx, cfg, log.With("component", "bench"))
	if err != nil {
		return err
	}
	fmt.Fprint(stdout, r)
	if *empty == "off" {
		return nil
	}
	cfg.Source, cfg.Max = *empty, *emptyMax
	if cfg.Max == 0 {
		cfg.Max = 2 * *maxCams
	}
	cfg.Min = min(cfg.Min, cfg.Max)
	cfg.Pipeline = pf.config(*empty)
	fmt.Fprintln(stdout, "\nempty scene:")
	er, err := bench.Streams(ctx, cfg, log.With("component", "bench"))
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprint(stdout, er)
	return err
}
