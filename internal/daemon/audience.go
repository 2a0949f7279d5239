package daemon

import (
	"context"
	"time"
)

// audienceLoop publishes every camera's audience figures (engine/audience)
// to the sinks every mqtt.stats_interval, read at each tick so a reload
// that changes it takes effect. The figures are retained on MQTT: a tick
// repeats them only when they changed.
func (d *Daemon) audienceLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if now.Sub(last) < d.statsInterval() {
				continue
			}
			last = now
			v, _ := d.view.Load().(*view)
			if v == nil {
				continue
			}
			for _, c := range v.cams {
				if c.aud != nil {
					d.fan.Audience(c.aud.Snapshot(c.name, now))
				}
			}
		}
	}
}

func (d *Daemon) statsInterval() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg != nil && d.cfg.MQTT.StatsInterval > 0 {
		return time.Duration(d.cfg.MQTT.StatsInterval)
	}
	return 10 * time.Second // config's default
}
