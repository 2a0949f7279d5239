// Package doctor checks that a machine can run edgemo and says, for each
// failure, what to do about it.
package doctor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"gocv.io/x/gocv"

	"github.com/edgemo/edgemo/capture"
	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/engine/videmo/openai"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/parts"
)

// Status of one check.
type Status string

const (
	OK   Status = "ok"
	Warn Status = "warn" // works, but not as well as it could
	Fail Status = "FAIL"
)

// Check is one line of the report.
type Check struct {
	Name   string
	Status Status
	Detail string
	Fix    string // what to do when not OK
	Key    string // the config key it checks, if any (ConfigModels)
}

// Run performs every check; it never aborts early, so one run shows all problems.
func Run(o parts.Options, log *slog.Logger) []Check {
	var cs []Check
	add := func(c Check) { cs = append(cs, c) }

	// OpenCV: gocv v0.31.0 is built against 4.6 exactly.
	if v := gocv.OpenCVVersion(); strings.HasPrefix(v, "4.6.") {
		add(Check{Name: "opencv", Status: OK, Detail: v + " (gocv " + gocv.Version() + ")"})
	} else {
		add(Check{Name: "opencv", Status: Fail, Detail: v, Fix: "install Debian 12's libopencv-dev 4.6 (scripts/setup.sh); gocv v0.31.0 needs OpenCV 4.6"})
	}

	// FFmpeg: files and network streams are decoded with it directly
	// (capture/avdec.cpp), so it is named apart from OpenCV's.
	add(Check{Name: "ffmpeg", Status: OK, Detail: capture.FFmpegVersion() + fmt.Sprintf("; decodes files, RTSP and HTTP; decoder threads a camera: %d alone, %d with 2 cameras, %d with 8; deblocking by default: %s", capture.DecodeThreads(1), capture.DecodeThreads(2), capture.DecodeThreads(8), registry.Deblocking.Default())})

	// Haar cascade.
	if h, err := facetrack.NewHaar(facetrack.HaarConfig{Cascade: o.Cascade}); err != nil {
		add(Check{Name: "face detector (haar)", Status: Fail, Detail: err.Error(), Fix: "apt-get install opencv-data, or pass --cascade <file>"})
	} else {
		add(Check{Name: "face detector (haar)", Status: OK, Detail: h.Config().Cascade})
		h.Close()
	}

	// ONNX Runtime and providers.
	rep, err := engine.ORTInfo(engine.RuntimeConfig{LibraryPath: o.ORTLib, Logger: log})
	if err != nil {
		add(Check{Name: "onnxruntime", Status: Fail, Detail: err.Error(), Fix: "run scripts/setup.sh, or set EDGEMO_ORT_LIB / --ort-lib to libonnxruntime.so (ORT >= 1.24)"})
	} else {
		add(Check{Name: "onnxruntime", Status: OK, Detail: fmt.Sprintf("%s (%s)", rep.Version, rep.Library)})
		for _, p := range rep.Providers {
			c := Check{Name: "provider " + p.Name, Status: OK, Detail: "available"}
			if !p.Available {
				c.Status, c.Detail = Warn, firstLine(p.Error)
				c.Fix = "this ORT build lacks it; edgemo falls back to the next provider. For GPUs use an ORT build with CUDA/TensorRT (see README)"
			}
			add(c)
		}
		add(precisionCheck(o))
	}

	// Models: LoadManifest checks the fields, the files and their sha256.
	if m, err := engine.LoadManifest(o.Manifest); err != nil {
		add(Check{Name: "model " + o.Manifest, Status: Fail, Detail: err.Error(), Fix: "run scripts/setup.sh (it converts the models), or pass --model <manifest>"})
	} else {
		add(Check{Name: "model " + m.Name, Status: OK, Detail: m.Ref() + " " + m.ModelPath()})
	}
	// The registry's other emotion models, which models.emotion may name.
	for _, part := range registry.EmotionModels.Parts {
		path := parts.EmotionManifest(part.Name)
		if filepath.Clean(path) == filepath.Clean(o.Manifest) {
			continue
		}
		if m, err := engine.LoadManifest(path); err != nil {
			add(Check{Name: "model " + part.Name, Status: Fail, Detail: err.Error(), Fix: "run scripts/setup.sh (scripts/models.sh makes it)"})
		} else if m.Task != part.Task {
			add(Check{Name: "model " + part.Name, Status: Fail, Detail: fmt.Sprintf("%s is a %q model, want %q", path, m.Task, part.Task), Fix: "run scripts/setup.sh to restore models/"})
		} else {
			add(targetCheck(m))
		}
	}
	// Face models: every detector's and head's in the registry.
	for _, part := range append(append([]registry.Part{}, registry.Detectors.Parts...), registry.Heads.Parts...) {
		if part.Manifest == "" {
			if _, ok := registry.Heads.Get(part.Name); ok {
				add(Check{Name: "head " + part.Name, Status: OK, Detail: "needs no model"})
			}
			continue // haar: checked above
		}
		for _, name := range append([]string{part.Manifest, part.Int8}, part.Shapes...) {
			if name == "" {
				continue
			}
			path := o.FaceManifest(name)
			if m, err := engine.LoadManifest(path); err != nil {
				add(Check{Name: "model " + name, Status: Fail, Detail: err.Error(), Fix: "run scripts/setup.sh (scripts/models.sh makes it), or use --detector haar / --heads to do without it"})
			} else if m.Task != part.Task {
				add(Check{Name: "model " + name, Status: Fail, Detail: fmt.Sprintf("%s is a %q model, want %q", path, m.Task, part.Task), Fix: "run scripts/setup.sh to restore models/"})
			} else {
				add(targetCheck(m))
			}
		}
	}
	if o.VLM.Remote.URL != "" {
		add(Remote(context.Background(), o.VLM.Remote, o.VLM.Manifest))
	}
	return cs
}

// precisionCheck says which variants --precision picks on this machine and
// why (engine.Runtime.ChoosePrecision, as the daemon decides it).
func precisionCheck(o parts.Options) Check {
	c := Check{Name: "precision " + o.Precision}
	if o.Precision == "" {
		c.Name += registry.Precisions.Default()
	}
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: o.ORTLib, Providers: o.Providers, TensorRT: o.TensorRT, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		c.Status, c.Detail, c.Fix = Fail, err.Error(), "fix the onnxruntime check above"
		return c
	}
	defer rt.Close()
	p, err := rt.ChoosePrecision(o.Precision)
	if err != nil {
		c.Status, c.Detail, c.Fix = Fail, err.Error(), "use --precision "+registry.Precisions.OrNames()
		return c
	}
	variant := "float32 models"
	if p.Int8 {
		variant = "int8 emotion head, faceres and antispoof"
	}
	c.Status, c.Detail = OK, variant+" ("+p.Why+")"
	return c
}

// targetCheck reports a face model loaded fine, with the architecture its
// conversion suits; a warning where that is not this one (BlazeFace padded
// for AVX-512 on arm64: same boxes, more work per frame).
func targetCheck(m *engine.Manifest) Check {
	c := Check{Name: "model " + m.Name, Status: OK, Detail: m.Ref() + " " + m.ModelPath()}
	if m.Target != "" {
		c.Detail += " (" + m.Target + ")"
	}
	if !m.SuitsArch(runtime.GOARCH) {
		c.Status = Warn
		c.Fix = fmt.Sprintf("converted for %s, this is %s: it runs, slower; scripts/setup.sh converts models/%s/, a release archive carries its own",
			m.Target, runtime.GOARCH, runtime.GOARCH)
	}
	return c
}

// Print writes the report and returns the number of failures.
func Print(w io.Writer, cs []Check) int {
	failed := 0
	for _, c := range cs {
		fmt.Fprintf(w, "%-4s  %-36s %s\n", c.Status, c.Name, c.Detail)
		if c.Status != OK && c.Fix != "" {
			fmt.Fprintf(w, "      %-36s fix: %s\n", "", c.Fix)
		}
		if c.Status == Fail {
			failed++
		}
	}
	return failed
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// Remote probes a remote VidEmo server (models.videmo_remote, analyze
// --remote): it answers GET /v1/models within the timeout and serves the
// model asked for.
func Remote(ctx context.Context, o parts.RemoteOptions, plan string) Check {
	c := Check{Name: "videmo remote " + o.URL, Key: "models.videmo_remote.url"}
	cl, err := openai.NewClient(openai.ClientConfig{URL: o.URL, APIKey: o.APIKey, Timeout: o.Timeout})
	if err != nil {
		c.Status, c.Detail, c.Fix = Fail, err.Error(), "write models.videmo_remote.url as http(s)://host:port/v1"
		return c
	}
	t0 := time.Now()
	ids, err := cl.Models(ctx)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		c.Fix = "start the server (edgemo serve, vLLM or SGLang with the VidEmo model), check the URL, the firewall and models.videmo_remote.api_key ($EDGEMO_VIDEMO_API_KEY)"
		return c
	}
	want := o.Model
	if want == "" {
		if m, err := videmo.LoadPlan(plan); err == nil {
			want = m.Name
		}
	}
	if want != "" && !slices.Contains(ids, want) {
		c.Status, c.Detail = Fail, fmt.Sprintf("serves %v, not %q", ids, want)
		c.Fix = "set models.videmo_remote.model (analyze: --remote-model) to the served name"
		return c
	}
	c.Status, c.Detail = OK, fmt.Sprintf("serves %s (/v1/models in %v)", want, time.Since(t0).Round(time.Millisecond))
	return c
}
