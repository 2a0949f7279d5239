package engine

import (
	"context"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/window"
)

// Optional features of an Analyzer. The pipeline, the bench and wrapping
// analyzers (schedule.Tiered) find them by a type assertion on an
// Analyzer, so they are declared once, here: a wrapper that means to keep a
// feature of what it wraps implements the same interface and says so with a
// compile-time check next to its methods,
//
//	var _ engine.BatchAnalyzer = (*Tiered)(nil)
//
// and forwards to the wrapped analyzer when that one has it. A wrapper
// without the method hides the feature, and the assertion fails without a
// word; the check is what keeps that from happening by accident.

// BatchAnalyzer is implemented by analyzers that run their models once over
// several windows: FastAnalyzer (one ORT Run per head for all of them) and
// schedule.Tiered (which batches its fast tier). The pipeline hands it the
// windows of a camera's tracks that queued up together.
//
// AnalyzeBatch returns one tree per window, in the order of ws (trees[i] is
// that of ws[i]), or an error.
type BatchAnalyzer interface {
	AnalyzeBatch(ctx context.Context, ws []window.Window) ([]*tree.Tree, error)
}

// TrackForgetter is implemented by analyzers that keep per-track state
// (FastAnalyzer: cached probabilities and trend history; schedule.Tiered:
// the latest slow tree and the scheduler's queue). The pipeline calls
// Forget when a track ends, after the track's last window was analysed, so
// that the state does not grow with every track ever seen.
type TrackForgetter interface {
	Forget(camera string, trackID int)
}

// StageCoster is implemented by analyzers that account for the cost of each
// of their stages (FastAnalyzer: one entry per head; schedule.Tiered
// reports its fast tier's). The bench reads it before and after a run to
// report that run's share, per stage.
type StageCoster interface {
	StageCosts() []StageCost
}
