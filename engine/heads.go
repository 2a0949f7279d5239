package engine

import (
	"errors"
	"fmt"
	"sort"

	"github.com/edgemo/edgemo/engine/registry"
	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
)

// Head is one optional face head of the fast tier. The analyzer runs every
// head on each new window sample beside the emotion head, all the new
// samples of a batch in one call, keeps what it observed with the sample
// while the sample is in a window, and lets the head fold a window's
// observations into the tree.
//
// A head lives in one file: its type, its opener, and an init that
// registers the opener under its engine/registry.Heads name. Config
// validation, --heads, doctor and the README's parts table read that
// registry entry; nothing else names the head.
type Head interface {
	// Name is the registry name; also the stage name in bench and metrics.
	Name() string
	// Observe runs every crop (BGR, facetrack.Crop) in one batch and returns
	// one observation per crop, in order.
	Observe(crops []facetrack.Crop) ([]any, error)
	// Summarize folds one window's observations (in sample order; samples
	// the head did not see are left out) into the tree's attributes.
	Summarize(obs []any, out *tree.Attributes)
	Close() error
}

// SteadyHead is a head whose answer does not change within a track (age,
// gender): once Steady says its recent observations of a track agree, the
// analyzer runs it on one new sample in SteadyEvery and answers every
// window from the track's kept observations, not the window's alone.
type SteadyHead interface {
	Head
	// Steady reports whether a track's recent observations (oldest first,
	// at most keptObservations) agree well enough to be asked rarely.
	Steady(obs []any) bool
}

// SampledHead is a head whose consumer needs fewer looks than the window
// rate (liveness: one answer per window): the analyzer runs it on the
// first new sample of a track and then on one in SampleEvery, and each
// window is summarised from the samples it saw.
type SampledHead interface {
	Head
	SampleEvery() int
}

const (
	// SteadyEvery: a steady head runs on one new sample in this many
	// (4 s of a track at the default 4 window samples a second).
	SteadyEvery = 16
	// SteadyLearnEvery: until then, one new sample in this many (the
	// first always, so a new track has its estimate at once), a look every
	// 2 s at the default 4 window samples a second: faceres is the costliest
	// head (14 ms a crop on a Xeon, 34-53 on an EPYC), age and gender do not
	// change within a track, and at a look a second it held a third of the
	// heads' CPU on the streams benchmark, whose clip cuts to new faces
	// every few seconds.
	SteadyLearnEvery = 8
	// keptObservations a steady head keeps per track, most recent.
	keptObservations = 16
)

// HeadOpener opens a head's model on rt from its manifest.
type HeadOpener func(rt *Runtime, m *Manifest) (Head, error)

var headOpeners = map[string]HeadOpener{}

// registerHead is called from each head's init. A name missing from the
// registry is a programming error, so it panics at start-up, not later.
func registerHead(name string, open HeadOpener) {
	if _, ok := registry.Heads.Get(name); !ok {
		panic(fmt.Sprintf("engine: head %q has no entry in engine/registry.Heads", name))
	}
	if _, dup := headOpeners[name]; dup {
		panic(fmt.Sprintf("engine: head %q registered twice", name))
	}
	headOpeners[name] = open
}

// OpenHead opens the head registered as name (a registry.Heads name).
func OpenHead(name string, rt *Runtime, m *Manifest) (Head, error) {
	open, ok := headOpeners[name]
	if !ok {
		return nil, fmt.Errorf("face %w", registry.Heads.Check(name))
	}
	return open(rt, m)
}

// HeadNames are the heads that have an opener, sorted (for the registry test).
func HeadNames() []string {
	out := make([]string, 0, len(headOpeners))
	for n := range headOpeners {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// CloseHeads closes every head, returning the errors joined.
func CloseHeads(hs []Head) error {
	var errs []error
	for _, h := range hs {
		if h != nil {
			errs = append(errs, h.Close())
		}
	}
	return errors.Join(errs...)
}

// headResults are the heads' observations for a batch of new samples:
// [head][crop], in the analyzer's head order.
type headResults [][]any
