package openai

import (
	"context"
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/tree"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// The remote engine against `edgemo serve`'s handler on the same tiny
// model, over real HTTP: every closed-set distribution, letter mass and
// reading method equals the local runner's on the same window, the
// fallback texts and the caption are the same, the trees validate and
// carry the same levels, and the window's seven questions and six
// fallbacks cost one vision pass on the server.
func TestRemoteEqualsLocal(t *testing.T) {
	rt := testRuntime(t)
	local := tinyRunner(t, rt)
	srv, hs := tinyServer(t, rt, ServerConfig{MaxLogprobs: -1})
	plan, err := videmo.LoadPlan(testenv.Path(t, tinyManifest))
	if err != nil {
		t.Fatal(err)
	}
	vocab := plan.Dims.Vocab
	rem, err := NewRemote(RemoteConfig{Client: ClientConfig{URL: hs.URL, Model: srv.Model()}, Plan: plan, TopLogprobs: vocab})
	if err != nil {
		t.Fatal(err)
	}
	w := testWindow(1)
	ctx := context.Background()
	t0 := time.Now()
	lt, err := videmo.NewAnalyzer(local, 1).Analyze(ctx, w)
	t.Logf("local %v", time.Since(t0))
	t0 = time.Now()
	defer func() { t.Logf("remote %v", time.Since(t0)) }()
	if err != nil {
		t.Fatal(err)
	}
	rtree, err := rem.Analyze(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("remote %v", time.Since(t0))
	if st := srv.Stats(); st.VisionPasses != 1 || st.PrefixHits != st.Requests-1 {
		t.Errorf("server: %+v; want one vision pass and every other request a prefix-cache hit", st)
	}
	for _, tr := range []*tree.Tree{lt, rtree} {
		if err := tr.Validate(); err != nil {
			t.Fatalf("%s tree invalid: %v", tr.Source.Provider, err)
		}
	}
	if rtree.Source.Provider != "remote:"+hs.Listener.Addr().String() || rtree.Source.Engine != plan.Engine {
		t.Errorf("remote tree source %+v", rtree.Source)
	}
	if len(lt.Source.Answers) != len(rtree.Source.Answers) || len(lt.Source.Answers) == 0 {
		t.Fatalf("answers: local %d, remote %d", len(lt.Source.Answers), len(rtree.Source.Answers))
	}
	for i, la := range lt.Source.Answers {
		ra := rtree.Source.Answers[i]
		if la.Question != ra.Question || la.Method != ra.Method || !near(la.LetterMass, ra.LetterMass, 1e-3*la.LetterMass) {
			t.Errorf("answer %d: local %+v, remote %+v", i, la, ra)
		}
	}
	if lt.Expression == nil || rtree.Expression == nil || lt.Expression.Label != rtree.Expression.Label {
		t.Fatalf("expression: local %+v, remote %+v", lt.Expression, rtree.Expression)
	}
	for l, p := range lt.Expression.Scores {
		if !near(p, rtree.Expression.Scores[l], 2e-4) { // 4-decimal rounding
			t.Errorf("expression score %s: local %g, remote %g", l, p, rtree.Expression.Scores[l])
		}
	}
	if lt.Emotion.Rationale != rtree.Emotion.Rationale || lt.Emotion.Rationale == "" {
		t.Errorf("caption: local %q, remote %q", lt.Emotion.Rationale, rtree.Emotion.Rationale)
	}

	// the unrounded distributions
	lv, err := videmo.PreprocessWindow(w, plan.Preprocess)
	if err != nil {
		t.Fatal(err)
	}
	lres, err := local.Ask(ctx, lv, nil)
	if err != nil {
		t.Fatal(err)
	}
	video := videoOf(t, w, plan)
	rres, err := rem.Ask(ctx, video)
	if err != nil {
		t.Fatal(err)
	}
	for i, lc := range lres.Choices {
		rc := rres.Choices[i]
		if lc.Question.ID != rc.Question.ID || lc.Method != rc.Method || jsonText(lc.Text) != rc.Text {
			t.Errorf("%s: local %s %q, remote %s %q", lc.Question.ID, lc.Method, lc.Text, rc.Method, rc.Text)
		}
		if !near(lc.LetterMass, rc.LetterMass, 1e-5*lc.LetterMass) {
			t.Errorf("%s letter mass: local %g, remote %g", lc.Question.ID, lc.LetterMass, rc.LetterMass)
		}
		for j := range lc.Probs {
			if !near(lc.Probs[j], rc.Probs[j], 1e-5) {
				t.Errorf("%s P(%s): local %.8f, remote %.8f", lc.Question.ID, lc.Labels[j], lc.Probs[j], rc.Probs[j])
			}
		}
	}
}

// jsonText is s as JSON carries it: invalid UTF-8 (a generation cut
// inside a character) becomes U+FFFD, as in any JSON API.
func jsonText(s string) string {
	b, _ := json.Marshal(s)
	var out string
	json.Unmarshal(b, &out)
	return out
}

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol }

// videoOf is the window's frames as the remote engine sends them.
func videoOf(t *testing.T, w window.Window, plan *videmo.Manifest) string {
	t.Helper()
	idx, _, err := videmo.SampleFrames(w, plan.Preprocess)
	if err != nil {
		t.Fatal(err)
	}
	var crops []facetrack.Crop
	for _, i := range idx {
		crops = append(crops, w.Samples[i].Crop)
	}
	v, err := VideoURL(crops)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
