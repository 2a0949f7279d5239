// Package publish delivers trees to consumers behind one Sink interface.
package publish

import (
	"context"

	"github.com/edgemo/edgemo/engine/tree"
)

// Sink consumes trees. Publish must not block the engine for long: a slow
// sink drops or buffers within a bound, and counts what it drops.
type Sink interface {
	Publish(ctx context.Context, t *tree.Tree) error
	Close() error
}
