// Package engine turns windows of face crops into emotion trees. It holds
// the Analyzer interface and its optional features, model manifests and the
// plumbing every model family shares (strict JSON, sha256-checked files),
// the ONNX Runtime environment with execution-provider fallback, the face
// models (BlazeFace detector, emotion head, facemesh, age/gender and
// liveness heads) and FastAnalyzer, the per-frame tier that aggregates them
// into one tree per window. The VidEmo VLM runner is engine/videmo, the
// scheduler that shares it between tracks engine/schedule.
package engine

import (
	"context"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/window"
)

// Analyzer produces one tree per window. Implementations are safe for use by
// one goroutine at a time unless they say otherwise.
type Analyzer interface {
	Analyze(ctx context.Context, w window.Window) (*tree.Tree, error)
	Close() error
}
