// Command edgemo is an edge, real-time affect analyser for camera streams.
// This file only dispatches; the work lives in the packages.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

const usage = `edgemo: edge, real-time affect analysis for camera streams

usage:
  edgemo run [--config edgemo.yaml] the daemon: cameras, MQTT, WebRTC dashboard, metrics
  edgemo analyze <source> [flags]   analyse a file, camera or stream; trees as JSON Lines
  edgemo doctor [flags]             check OpenCV, ONNX Runtime, providers and models
  edgemo bench [<file>] [flags]     decode-only vs whole-pipeline frames/s on one file
  edgemo bench vlm [--model m.json] VidEmo prefill ms, decode tokens/s, loop overhead
  edgemo serve [--model m.json]     VidEmo over the OpenAI-compatible chat API (/v1/chat/completions)
  edgemo convert videmo --from CHECKPOINT --out DIR
                                    Hugging Face VidEmo-3B/Qwen2.5-VL checkpoint -> ONNX (int4)
  edgemo vlm --model m.json --frames F.npy|DIR --fps F --question Q --json
                                    VidEmo conformance: preprocessing, prompt, tokens, logits
  edgemo tokenize --tokenizer <tokenizer.json> --json
                                    JSON array of strings on stdin -> token-id arrays
  edgemo version [--ort-lib lib]   edgemo, commit, Go, OpenCV and ONNX Runtime versions

Run "edgemo <command> -h" for a command's flags.
`

var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	// SIGINT and SIGTERM stop cleanly. SIGHUP (a closed terminal, or an
	// operator's "reload") is never the abrupt default exit: `run` reloads
	// its config on it (the daemon takes it once it has started; until then
	// it is dropped, as the config is being read anyway), and the other
	// commands stop cleanly as on SIGTERM, so a hang-up still flushes
	// their output.
	stopOn := []os.Signal{os.Interrupt, syscall.SIGTERM}
	if args[0] == "run" {
		signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP) // held for the process's life: SIGHUP never kills `run`
	} else {
		stopOn = append(stopOn, syscall.SIGHUP)
	}
	ctx, stop := signal.NotifyContext(context.Background(), stopOn...)
	defer stop()
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "analyze":
		err = cmdAnalyze(ctx, args[1:], stdout, stderr)
	case "doctor":
		err = cmdDoctor(ctx, args[1:], stdout, stderr)
	case "bench":
		err = cmdBench(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "convert":
		err = cmdConvert(ctx, args[1:], stdout, stderr)
	case "vlm":
		err = cmdVLM(ctx, args[1:], stdout, stderr)
	case "tokenize":
		err = cmdTokenize(ctx, args[1:], os.Stdin, stdout, stderr)
	case "version":
		err = cmdVersion(ctx, args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "edgemo: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, errUsage) {
			return 2
		}
		fmt.Fprintln(stderr, "edgemo:", err)
		return 1
	}
	return 0
}

var errUsage = fmt.Errorf("usage")

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
