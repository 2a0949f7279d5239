package main

import (
	"context"
	"io"
	"math"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"
)

type lockedBuffer = testenv.SyncBuffer

// startServe runs `edgemo serve` on a free loopback port until the test
// ends and returns its base URL.
func startServe(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	done := make(chan error, 1)
	args = append([]string{"--listen", "127.0.0.1:0", "--providers", "cpu", "--ort-lib", testenv.ORTLib(t)}, args...)
	go func() { done <- cmdServe(ctx, args, &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	re := regexp.MustCompile(`http://[0-9.:]+/v1`)
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if u := re.FindString(out.String()); u != "" {
			return u
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v\n%s", err, errb.String())
		default:
		}
	}
	t.Fatalf("serve did not start\n%s", errb.String())
	return ""
}

// `edgemo serve` on the tiny model and `edgemo analyze` whose VidEmo runs
// remote on it, over real HTTP with a bearer token: every window's tree
// carries the remote engine's levels, and its closed-set distributions,
// letter masses and readings equal the local runner's on the same window
// (--remote-top-logprobs covers the whole vocabulary, so the option
// letters of the tiny model's random weights are among them). In tiered
// mode the same scheduler merges the remote levels into the fast trees.
// Without --remote-inference nothing is sent.
func TestServeRemoteEqualsLocal(t *testing.T) {
	manifest := testenv.Path(t, "models/videmo-tiny/videmo.manifest.json")
	url := startServe(t, "--model", manifest, "--max-logprobs", "-1", "--api-key", "s3cret")
	t.Setenv("EDGEMO_VIDEMO_API_KEY", "s3cret")
	src := testenv.Media(t, "astronaut.png")
	base := []string{"analyze", src, "--engine", "videmo", "--model", manifest, "--progress", "off", "--providers", "cpu"}

	code, _, stderr := edgemo(t, append(base, "--remote", url)...)
	if code == 0 || !strings.Contains(stderr, "privacy.remote_inference") {
		t.Fatalf("remote without --remote-inference: exit %d\n%s", code, lastLine(stderr))
	}
	metrics := func() string {
		res, err := http.Get(strings.TrimSuffix(url, "/v1") + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if m := metrics(); !strings.Contains(m, "edgemo_serve_requests_total 0\n") {
		t.Fatalf("a request reached the server without --remote-inference:\n%s", m)
	}

	code, stdout, stderr := edgemo(t, base...)
	if code != 0 {
		t.Fatalf("local: exit %d\n%s", code, stderr)
	}
	local := readTrees(t, stdout)
	code, stdout, stderr = edgemo(t, append(base, "--remote", url, "--remote-inference", "--remote-top-logprobs", "151936")...)
	if code != 0 {
		t.Fatalf("remote: exit %d\n%s", code, stderr)
	}
	remote := readTrees(t, stdout)
	if len(local) == 0 || len(local) != len(remote) {
		t.Fatalf("%d local trees, %d remote", len(local), len(remote))
	}
	for i, l := range local {
		r := remote[i]
		if l.ID != r.ID || !strings.HasPrefix(r.Source.Provider, "remote:127.0.0.1:") || r.Source.Engine != l.Source.Engine {
			t.Fatalf("tree %d: local %s %+v, remote %s %+v", i, l.ID, l.Source, r.ID, r.Source)
		}
		if len(l.Source.Answers) == 0 || len(l.Source.Answers) != len(r.Source.Answers) {
			t.Fatalf("%s: answers local %v remote %v", l.ID, l.Source.Answers, r.Source.Answers)
		}
		for j, la := range l.Source.Answers {
			ra := r.Source.Answers[j]
			if la.Question != ra.Question || la.Method != ra.Method || math.Abs(la.LetterMass-ra.LetterMass) > 1e-3*la.LetterMass {
				t.Errorf("%s answer %s: local %+v, remote %+v", l.ID, la.Question, la, ra)
			}
		}
		for k, p := range l.Expression.Scores {
			if math.Abs(p-r.Expression.Scores[k]) > 2e-4 {
				t.Errorf("%s P(%s): local %g, remote %g", l.ID, k, p, r.Expression.Scores[k])
			}
		}
		if l.Expression.Label != r.Expression.Label || l.Emotion.Rationale != r.Emotion.Rationale || l.Attributes.Gender.Value != r.Attributes.Gender.Value {
			t.Errorf("%s: local %+v %+v, remote %+v %+v", l.ID, l.Expression, l.Emotion, r.Expression, r.Emotion)
		}
	}

	// tiered: the fast head on every window, the remote VidEmo scheduled
	code, stdout, stderr = edgemo(t, "analyze", src, "--engine", "tiered", "--model", manifest, "--realtime", "--progress", "off", "--providers", "cpu",
		"--remote", url, "--remote-inference")
	if code != 0 {
		t.Fatalf("tiered remote: exit %d\n%s", code, stderr)
	}
	merged := 0
	for _, tr := range readTrees(t, stdout) {
		if tr.Source.Engine == "fast-head+videmo-tiny-int4" && len(tr.Source.Answers) > 0 {
			merged++
		}
	}
	if merged == 0 {
		t.Fatalf("no tiered tree carries the remote VidEmo's levels\n%s", stdout)
	}
}
