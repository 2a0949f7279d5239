// Package engine turns windows of face crops into emotion trees: model
// manifests, ONNX Runtime sessions with execution-provider fallback, the fast
// per-frame head and (later) the VidEmo VLM runner and scheduler.
package engine

import (
	"context"

	"github.com/edgemo/edgemo/tree"
	"github.com/edgemo/edgemo/window"
)

// Analyzer produces one tree per window. Implementations are safe for use by
// one goroutine at a time unless they say otherwise.
type Analyzer interface {
	Analyze(ctx context.Context, w window.Window) (*tree.Tree, error)
	Close() error
}
