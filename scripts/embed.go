// Package scripts carries the project's Python tools into the binary, so
// that `edgemo convert` works from a release archive with no repository:
// the converter is written to a temporary file and run with python3.
package scripts

import _ "embed"

// ConvertVidEmo is convert_videmo.py: Hugging Face Qwen2.5-VL checkpoint →
// edgemo's VidEmo graphs and manifest (numpy + python3-onnx, no torch).
//
//go:embed convert_videmo.py
var ConvertVidEmo []byte
