package pipeline

import (
	"time"

	"github.com/edgemo/edgemo/capture"
)

// CaptureStats are the source's counters, from its run's start on (zero
// before the first run): cheap, for any polling.
func (p *Pipeline) CaptureStats() capture.Stats {
	if s := p.src.Load(); s != nil {
		return (*s).Stats()
	}
	return capture.Stats{}
}

// DecodeCPU is the CPU time the source has spent decoding, for the same
// span as CaptureStats; 0 where the source does not count it (not a
// capture.DecodeMeter). It reads /proc: ask where the figure is reported
// (metrics, the stats topic, a benchmark), not in a polling loop.
func (p *Pipeline) DecodeCPU() time.Duration {
	if s := p.src.Load(); s != nil {
		if m, ok := (*s).(capture.DecodeMeter); ok {
			return m.DecodeCPU()
		}
	}
	return 0
}
