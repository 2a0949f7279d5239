package daemon

import (
	"fmt"
	"net/http"
	"net/http/pprof"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The metrics listener's handlers: /metrics, /healthz, /readyz, pprof.

func (d *Daemon) metricsHandler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(d.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", d.readyz)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// readyz is 200 once models are loaded, listeners bound and every camera is
// online; otherwise 503 with the reasons, one a line. A failed reload is one
// of them ("reload_failed: <error>") until a reload succeeds: the daemon
// still serves, on the previous config, so /healthz (liveness) stays 200 and
// nothing restarts it, but it is not running what the operator configured,
// and readiness is where a check or an orchestrator looks for that.
func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	s := d.snapshot(false)
	var why []string
	if !s.Ready {
		why = append(why, "starting")
	}
	if s.Reload.Error != "" {
		why = append(why, "reload_failed: "+s.Reload.Error)
	}
	for _, c := range s.Cameras {
		if c.Status != "online" {
			why = append(why, fmt.Sprintf("camera %s is %s", c.Name, c.Status))
		}
	}
	if len(why) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		for _, r := range why {
			fmt.Fprintln(w, r)
		}
		return
	}
	fmt.Fprintln(w, "ready")
}
