package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/engine/videmo/openai"
	"github.com/edgemo/edgemo/facetrack"
)

// RemoteBench is `edgemo bench vlm --remote`'s result, per window: the
// round trip of its whole question plan, the server's own time (the sum of
// its Server-Timing over the window's requests: 0 when the server does not
// send it, as vLLM does not), and the client's overhead, round trip minus
// server time (frame encoding, JSON, HTTP; with a server that answers
// requests one at a time, as edgemo serve does).
type RemoteBench struct {
	URL        string  `json:"url"`
	Windows    int     `json:"windows"`
	Requests   int64   `json:"requests"`
	RoundTrip  Stat    `json:"round_trip_ms"`
	Server     Stat    `json:"server_ms"`
	Overhead   Stat    `json:"client_overhead_ms"`
	EncodeMS   float64 `json:"encode_ms"` // PNG frames + base64 of one window
	RequestKiB float64 `json:"request_kib"`
}

// Stat is a median and a 95th percentile.
type Stat struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
}

func stat(v []float64) Stat {
	slices.Sort(v)
	q := func(p float64) float64 { return v[min(len(v)-1, int(p*float64(len(v))))] }
	return Stat{P50: round2(q(0.5)), P95: round2(q(0.95))}
}

func round2(x float64) float64 { return float64(int64(x*100+0.5)) / 100 }

func durMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// benchRemote times windows through the remote engine. The first window
// is a warm-up (connections, the server's first prefill) and is not counted.
func benchRemote(ctx context.Context, url, model, manifest string, windows, frames, side int, fps float64, asJSON bool, stdout io.Writer) error {
	plan, err := videmo.LoadPlan(manifest)
	if err != nil {
		return err
	}
	if model == "" {
		model = plan.Name
	}
	rem, err := openai.NewRemote(openai.RemoteConfig{Client: openai.ClientConfig{URL: url, Model: model, APIKey: os.Getenv("EDGEMO_VIDEMO_API_KEY")}, Plan: plan})
	if err != nil {
		return err
	}
	res := RemoteBench{URL: rem.Client().Endpoint(), Windows: windows}
	var rtt, srv, over []float64
	for i := range windows + 1 {
		w := gradientWindow(frames, side, fps)
		for j := range w.Samples { // a new video each window: no prefix-cache hit across windows
			w.Samples[j].Crop.Pix[0] = byte(i)
		}
		w.Seq = uint64(i)
		if i == 1 {
			idx, _, err := videmo.SampleFrames(w, plan.Preprocess)
			if err != nil {
				return err
			}
			var crops []facetrack.Crop
			for _, k := range idx {
				crops = append(crops, w.Samples[k].Crop)
			}
			t0 := time.Now()
			u, err := openai.VideoURL(crops)
			if err != nil {
				return err
			}
			res.EncodeMS = round2(durMS(time.Since(t0)))
			res.RequestKiB = round2(float64(len(u)) / 1024)
		}
		before := rem.Client().Stats()
		t0 := time.Now()
		if _, err := rem.Analyze(ctx, w); err != nil {
			return fmt.Errorf("window %d: %w", i, err)
		}
		wall := time.Since(t0)
		after := rem.Client().Stats()
		if i == 0 {
			continue
		}
		s := after.ServerTotal - before.ServerTotal
		res.Requests += after.OK - before.OK
		rtt, srv, over = append(rtt, durMS(wall)), append(srv, durMS(s)), append(over, durMS(wall-s))
	}
	res.RoundTrip, res.Server, res.Overhead = stat(rtt), stat(srv), stat(over)
	if asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	fmt.Fprintf(stdout, "remote     %s, %d windows of %d crops of %d px, %d requests (%.1f per window)\n", res.URL, windows, frames, side, res.Requests, float64(res.Requests)/float64(windows))
	fmt.Fprintf(stdout, "round trip %.1f ms p50, %.1f ms p95 per window\n", res.RoundTrip.P50, res.RoundTrip.P95)
	fmt.Fprintf(stdout, "server     %.1f ms p50, %.1f ms p95 per window (Server-Timing)\n", res.Server.P50, res.Server.P95)
	fmt.Fprintf(stdout, "overhead   %.1f ms p50, %.1f ms p95 per window (round trip - server: encoding, JSON, HTTP)\n", res.Overhead.P50, res.Overhead.P95)
	fmt.Fprintf(stdout, "frames     %.1f ms to encode one window's frames, %.0f KiB per request\n", res.EncodeMS, res.RequestKiB)
	return nil
}
