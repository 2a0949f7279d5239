package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/scripts"
)

// cmdConvert is `edgemo convert videmo --from CHECKPOINT --out DIR`: the
// torch-free converter (scripts/convert_videmo.py, embedded in the binary)
// run with the machine's python3, then the result opened by the Go runner
// so that a model that converts but does not load is caught here.
func cmdConvert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "videmo" {
		fmt.Fprintln(stderr, "usage: edgemo convert videmo --from CHECKPOINT_DIR --out OUT_DIR [flags]")
		return errUsage
	}
	fs := flag.NewFlagSet("convert videmo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json) (required)")
	out := fs.String("out", "", "output folder: graphs, tokenizer.json, videmo.manifest.json (required)")
	decoder := fs.String("decoder", "int4", "decoder weights: int4 (MatMulNBits, block 32) or fp32")
	accuracy := fs.Int("accuracy-level", 4, "MatMulNBits accuracy_level (4: int8 activations on CPU; 0: fp32)")
	logits := fs.String("logits", "last", "decoder logits: last (prefill returns only the last position) or all")
	name := fs.String("name", "videmo-3b", "model name, as trees' source.model shows it")
	captionTokens := fs.Int("caption-tokens", 256, "the caption question's budget of new tokens (VidEmo's evaluation uses up to 2048)")
	tokPath := fs.String("tokenizer", "", "tokenizer.json when the checkpoint has none")
	python := fs.String("python", "", "python3 with numpy and onnx (default: /usr/bin/python3, then python3 on PATH)")
	check := fs.Bool("check", true, "open the converted model with the runner afterwards")
	ortLib := fs.String("ort-lib", "", "ONNX Runtime library (for --check)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: edgemo convert videmo --from CHECKPOINT_DIR --out OUT_DIR [flags]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		return errUsage
	}
	if *from == "" || *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *decoder != "int4" && *decoder != "fp32" {
		return fmt.Errorf("--decoder %q: use int4 or fp32", *decoder)
	}
	if *captionTokens < 1 || *captionTokens > 32768 {
		return fmt.Errorf("--caption-tokens %d: must be between 1 and 32768", *captionTokens)
	}
	if st, err := os.Stat(*from); err != nil || !st.IsDir() {
		return fmt.Errorf("--from %s: not a folder; download the checkpoint (config.json, *.safetensors, tokenizer.json) into one", *from)
	}
	py, err := findPython(*python)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "edgemo-convert-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	script := filepath.Join(tmp, "convert_videmo.py")
	if err := os.WriteFile(script, scripts.ConvertVidEmo, 0o644); err != nil {
		return err
	}
	pyArgs := []string{script, "--from", *from, "--out", *out, "--decoder", *decoder,
		"--accuracy-level", fmt.Sprint(*accuracy), "--logits", *logits, "--name", *name,
		"--caption-tokens", fmt.Sprint(*captionTokens)}
	if *tokPath != "" {
		pyArgs = append(pyArgs, "--tokenizer", *tokPath)
	}
	cmd := exec.CommandContext(ctx, py, pyArgs...)
	var so bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, stderr
	t0 := time.Now()
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 2 {
			return errors.New("convert videmo: the checkpoint was refused (see the line above)")
		}
		return fmt.Errorf("convert videmo: %s %s: %w", py, filepath.Base(script), err)
	}
	var sum struct {
		Manifest    string  `json:"manifest"`
		Seconds     float64 `json:"seconds"`
		PeakRSS     int64   `json:"peak_rss_bytes"`
		OutputBytes int64   `json:"output_bytes"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(lastOutLine(so.Bytes())), &sum); err != nil {
		return fmt.Errorf("convert videmo: unexpected converter output %q: %w", so.String(), err)
	}
	fmt.Fprintf(stdout, "converted %s -> %s in %s: %.2f GB of graphs, converter peak RSS %.2f GB\n",
		*from, sum.Manifest, time.Since(t0).Round(100*time.Millisecond), float64(sum.OutputBytes)/1e9, float64(sum.PeakRSS)/1e9)
	if !*check {
		return nil
	}
	return checkConverted(sum.Manifest, *ortLib, stdout, stderr)
}

// checkConverted opens the three graphs with the runner (IO checked against
// the manifest) and reports the providers.
func checkConverted(manifest, ortLib string, stdout, stderr io.Writer) error {
	t0 := time.Now()
	// the tokenizer the converter copied beside the manifest
	tok := filepath.Join(filepath.Dir(manifest), "tokenizer.json")
	r, closeRunner, err := openVidEmo(manifest, tok, ortLib, "cpu", videmo.Options{}, stderr)
	if err != nil {
		return fmt.Errorf("convert videmo: the converted model does not load: %w (rerun with --check=false to skip the check)", err)
	}
	defer closeRunner()
	fmt.Fprintf(stdout, "check: the runner opened %s in %s (provider %s); set models.videmo: %s\n",
		filepath.Base(manifest), time.Since(t0).Round(100*time.Millisecond), r.Provider(), manifest)
	return nil
}

func lastOutLine(b []byte) []byte {
	b = bytes.TrimRight(b, "\n")
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

// findPython returns a python3 that imports numpy and onnx.
func findPython(configured string) (string, error) {
	cands := []string{configured}
	if configured == "" {
		cands = []string{"/usr/bin/python3", "python3"}
	}
	var tried []string
	for _, c := range cands {
		p, err := exec.LookPath(c)
		if err != nil {
			tried = append(tried, c+": not found")
			continue
		}
		o, err := exec.Command(p, "-c", "import numpy, onnx").CombinedOutput()
		if err == nil {
			return p, nil
		}
		tried = append(tried, p+": "+strings.TrimSpace(lastString(o)))
	}
	return "", fmt.Errorf("convert videmo needs python3 with numpy and onnx (apt install python3-onnx python3-numpy, or --python PATH); tried %s", strings.Join(tried, "; "))
}

func lastString(b []byte) string { return string(lastOutLine(b)) }
