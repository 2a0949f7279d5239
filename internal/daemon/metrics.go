package daemon

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/facetrack"
)

// metrics holds what is observed as it happens (histograms, error counts);
// counters that already live in the pipelines and sinks are read at scrape
// time by the collector, so there is one source of truth for each number.
type metrics struct {
	reg           *prometheus.Registry
	treeLatency   *prometheus.HistogramVec // capture of the window's last frame → tree published
	engineLatency *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	lat           *latencies
}

func newMetrics(d *Daemon) *metrics {
	m := &metrics{
		lat: d.lat,
		reg: prometheus.NewRegistry(),
		treeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgemo_capture_to_tree_seconds",
			Help:    "Time from the capture of a window's last frame to its tree being published.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"camera"}),
		engineLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "edgemo_engine_seconds",
			Help:    "Analyzer time per window.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
		}, []string{"camera", "engine"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "edgemo_errors_total",
			Help: "Failures by camera and stage (engine, sink).",
		}, []string{"camera", "stage"}),
	}
	m.reg.MustRegister(m.treeLatency, m.engineLatency, m.errors, &collector{d: d},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observeTree(t *tree.Tree) {
	lat := time.Since(time.Time(t.Window.End))
	m.lat.add(t.Camera, float64(lat.Microseconds())/1000)
	m.treeLatency.WithLabelValues(t.Camera).Observe(lat.Seconds())
	m.engineLatency.WithLabelValues(t.Camera, t.Source.Engine).Observe(t.Source.LatencyMS / 1000)
}

func (m *metrics) error(camera, stage string) { m.errors.WithLabelValues(camera, stage).Inc() }

// collector reads the live counters of cameras and sinks at scrape time.
type collector struct{ d *Daemon }

var (
	descFrames    = prometheus.NewDesc("edgemo_frames_total", "Frames processed (detect+track) per camera; rate() is the pipeline's frames/s.", []string{"camera"}, nil)
	descRead      = prometheus.NewDesc("edgemo_capture_frames_total", "Frames decoded by the source.", []string{"camera"}, nil)
	descDecode    = prometheus.NewDesc("edgemo_capture_decode_cpu_seconds_total", "CPU time spent decoding the source: its reads and the decoder's own threads.", []string{"camera"}, nil)
	descDets      = prometheus.NewDesc("edgemo_detections_total", "Face detections.", []string{"camera"}, nil)
	descDetFull   = prometheus.NewDesc("edgemo_detect_full_total", "Full detections by why they ran: interval (the adaptive interval was up), motion (outside the tracked faces, or anywhere with none), new_track (confirming a face), lost_track, unsteady (a verified face's score dropped or its box moved), recheck (the motion gate's periodic look).", []string{"camera", "reason"}, nil)
	descDetFrames = prometheus.NewDesc("edgemo_detect_frames_total", "Frames by what the face detector did: full (whole frame), regions (around tracked faces), predicted (tracker only), motion_skipped (no face tracked and nothing moved).", []string{"camera", "mode"}, nil)
	descWindows   = prometheus.NewDesc("edgemo_windows_total", "Windows sent to the engine.", []string{"camera"}, nil)
	descTrees     = prometheus.NewDesc("edgemo_trees_total", "Trees published.", []string{"camera"}, nil)
	descDropped   = prometheus.NewDesc("edgemo_dropped_total", "Dropped items by stage and reason.", []string{"camera", "stage", "reason"}, nil)
	descQueue     = prometheus.NewDesc("edgemo_queue_depth", "Items waiting between stages.", []string{"camera", "queue"}, nil)
	descFaces     = prometheus.NewDesc("edgemo_faces", "Faces seen in the latest detection frame.", []string{"camera"}, nil)
	descUp        = prometheus.NewDesc("edgemo_camera_up", "1 when the camera's pipeline runs and its source is online.", []string{"camera"}, nil)
	descProvider  = prometheus.NewDesc("edgemo_engine_provider_info", "Execution provider in use (value 1), the emotion model, and fp32 or int8 (models.precision).", []string{"provider", "model", "precision"}, nil)
	descMQTTUp    = prometheus.NewDesc("edgemo_mqtt_connected", "1 when connected to the MQTT broker.", nil, nil)
	descMQTTQ     = prometheus.NewDesc("edgemo_mqtt_queue_length", "Messages held while the broker is away.", nil, nil)
	descMQTTDrop  = prometheus.NewDesc("edgemo_mqtt_dropped_total", "Messages dropped because the outage queue overflowed.", nil, nil)
	descMQTTSent  = prometheus.NewDesc("edgemo_mqtt_sent_total", "Messages delivered to the broker.", nil, nil)
	descFaceImgs  = prometheus.NewDesc("edgemo_mqtt_face_images_total", "Face images (privacy.face_images) by outcome: sent, or dropped because the connection could not keep up.", []string{"outcome"}, nil)
	descViewers   = prometheus.NewDesc("edgemo_webrtc_viewers", "Connected WebRTC viewers.", nil, nil)
	descRTCDrop   = prometheus.NewDesc("edgemo_webrtc_dropped_total", "Messages dropped for slow viewers.", nil, nil)
	descVLMQ      = prometheus.NewDesc("edgemo_vlm_queue_depth", "VidEmo windows waiting for the model.", nil, nil)
	descVLMRuns   = prometheus.NewDesc("edgemo_vlm_runs_total", "VidEmo runs by outcome.", []string{"outcome"}, nil)
	descVLMDrop   = prometheus.NewDesc("edgemo_vlm_dropped_total", "VidEmo windows dropped before running, by reason.", []string{"reason"}, nil)
	descReloadBad = prometheus.NewDesc("edgemo_config_reload_failed", "1 from a failed config reload until a good one: the daemon runs the previous config (see /readyz for the error).", nil, nil)
	descReloads   = prometheus.NewDesc("edgemo_config_reloads_total", "Config reloads (file changes and SIGHUP) by result: ok, or failed (the running config stayed).", []string{"result"}, nil)
	descVLMRun    = prometheus.NewDesc("edgemo_vlm_run_seconds", "VidEmo run time over recent runs.", []string{"quantile"}, nil)
	descRemUp     = prometheus.NewDesc("edgemo_vlm_remote_up", "1 while the remote VidEmo server answers (its last request succeeded).", []string{"url"}, nil)
	descRemOpen   = prometheus.NewDesc("edgemo_vlm_remote_circuit_open", "1 while the circuit breaker refuses requests to the remote VidEmo server.", nil, nil)
	descRemReqs   = prometheus.NewDesc("edgemo_vlm_remote_requests_total", "Requests to the remote VidEmo server by outcome: ok, failed (after retries), rejected (circuit open).", []string{"outcome"}, nil)
	descRemErrs   = prometheus.NewDesc("edgemo_vlm_remote_errors_total", "Failed remote VidEmo requests by kind: timeout, network, http_429, http_5xx, http_4xx, circuit_open.", []string{"kind"}, nil)
	descRemRetry  = prometheus.NewDesc("edgemo_vlm_remote_retries_total", "Retried attempts of remote VidEmo requests.", nil, nil)
	descRemRTT    = prometheus.NewDesc("edgemo_vlm_remote_seconds", "Remote VidEmo request round trip over recent requests.", []string{"quantile"}, nil)
	// The audience over each camera's audience.period (engine/audience).
	descVisitors = prometheus.NewDesc("edgemo_audience_visitors", "Distinct tracks present within the camera's audience period (no re-identification: a returning person counts again).", []string{"camera"}, nil)
	descDwell    = prometheus.NewDesc("edgemo_audience_dwell_seconds", "Dwell (first to latest detection) of the period's visitors: mean and p90.", []string{"camera", "stat"}, nil)
	descAttShare = prometheus.NewDesc("edgemo_audience_attention_share", "Share of the period's measured face samples that looked at the camera or screen.", []string{"camera"}, nil)
	descEmoShare = prometheus.NewDesc("edgemo_audience_emotion_share", "Share of the period's trees per emotion label.", []string{"camera", "emotion"}, nil)
	descValence  = prometheus.NewDesc("edgemo_audience_valence_mean", "Mean valence of the period's trees that carry one.", []string{"camera"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descFrames, descRead, descDecode, descDets, descDetFrames, descDetFull, descWindows, descTrees, descDropped, descQueue,
		descFaces, descUp, descProvider, descMQTTUp, descMQTTQ, descMQTTDrop, descMQTTSent, descFaceImgs, descViewers, descRTCDrop,
		descVLMQ, descVLMRuns, descVLMDrop, descVLMRun, descReloadBad, descReloads,
		descRemUp, descRemOpen, descRemReqs, descRemErrs, descRemRetry, descRemRTT,
		descVisitors, descDwell, descAttShare, descEmoShare, descValence} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	s := c.d.snapshot(true)
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	for _, cs := range s.Cameras {
		counter(descFrames, cs.Frames, cs.Name)
		counter(descRead, cs.CaptureRead, cs.Name)
		ch <- prometheus.MustNewConstMetric(descDecode, prometheus.CounterValue, cs.DecodeCPUS, cs.Name)
		counter(descDets, cs.Detections, cs.Name)
		counter(descDetFrames, cs.DetectFull, cs.Name, "full")
		counter(descDetFrames, cs.DetectRegions, cs.Name, "regions")
		counter(descDetFrames, cs.DetectNone, cs.Name, "predicted")
		counter(descDetFrames, cs.MotionSkipped, cs.Name, "motion_skipped")
		for r := range facetrack.NumReasons { // every reason, zeros too: steady series
			counter(descDetFull, cs.DetectFullBy[r.String()], cs.Name, r.String())
		}
		counter(descWindows, cs.Windows, cs.Name)
		counter(descTrees, cs.Trees, cs.Name)
		counter(descDropped, cs.DroppedSlow, cs.Name, "capture", "slow_consumer")
		counter(descDropped, cs.DroppedRate, cs.Name, "capture", "fps_cap")
		counter(descDropped, cs.WindowsDropped, cs.Name, "engine", "slow_engine")
		gauge(descQueue, float64(cs.EngineQueue), cs.Name, "engine")
		gauge(descFaces, float64(cs.Faces), cs.Name)
		up := 0.0
		if cs.Status == "online" {
			up = 1
		}
		gauge(descUp, up, cs.Name)
	}
	if v, _ := c.d.view.Load().(*view); v != nil {
		now := time.Now()
		for _, cam := range v.cams {
			if cam.aud == nil {
				continue
			}
			a := cam.aud.Snapshot(cam.name, now)
			gauge(descVisitors, float64(a.Visitors), cam.name)
			gauge(descDwell, a.DwellMeanS, cam.name, "mean")
			gauge(descDwell, a.DwellP90S, cam.name, "p90")
			if a.AttentionShare != nil {
				gauge(descAttShare, *a.AttentionShare, cam.name)
			}
			for l, p := range a.EmotionMix {
				gauge(descEmoShare, p, cam.name, l)
			}
			if a.ValenceMean != nil {
				gauge(descValence, *a.ValenceMean, cam.name)
			}
		}
	}
	failed := 0.0
	if s.Reload.Error != "" {
		failed = 1
	}
	gauge(descReloadBad, failed)
	counter(descReloads, s.Reload.OK, "ok")
	counter(descReloads, s.Reload.Failed, "failed")
	if s.Provider != "" {
		gauge(descProvider, 1, s.Provider, s.Model, s.Precision)
	}
	if m := s.MQTT; m != nil {
		up := 0.0
		if m.Connected {
			up = 1
		}
		gauge(descMQTTUp, up)
		gauge(descMQTTQ, float64(m.Queue))
		counter(descMQTTDrop, m.Dropped)
		counter(descMQTTSent, m.Sent)
		counter(descFaceImgs, m.FaceImagesSent, "sent")
		counter(descFaceImgs, m.FaceImagesDropped, "dropped")
	}
	if w := s.WebRTC; w != nil {
		gauge(descViewers, float64(w.Viewers))
		counter(descRTCDrop, w.Dropped)
	}
	if v := s.VLM; v != nil {
		gauge(descVLMQ, float64(v.Queue))
		counter(descVLMRuns, v.Completed, "completed")
		counter(descVLMRuns, v.Errors, "error")
		counter(descVLMDrop, v.Stale, "stale")
		counter(descVLMDrop, v.Superseded, "superseded")
		counter(descVLMDrop, v.Overflow, "overflow")
		gauge(descVLMRun, v.RunP50/1000, "0.5")
		gauge(descVLMRun, v.RunP95/1000, "0.95")
		if r := v.Remote; r != nil {
			gauge(descRemUp, b2f(r.Up), r.URL)
			gauge(descRemOpen, b2f(r.State == "open"))
			counter(descRemReqs, uint64(r.OK), "ok")
			counter(descRemReqs, uint64(r.Failures), "failed")
			counter(descRemReqs, uint64(r.Rejected), "rejected")
			for k, n := range r.Errors {
				counter(descRemErrs, uint64(n), k)
			}
			counter(descRemRetry, uint64(r.Retries))
			gauge(descRemRTT, r.RTTP50/1000, "0.5")
			gauge(descRemRTT, r.RTTP95/1000, "0.95")
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
