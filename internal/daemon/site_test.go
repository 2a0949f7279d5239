package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/publish/mqtt/mqtttest"
)

// The site page (web/static/site.html), in real headless Chromium (flags
// per docs/browser-tests.md), reads a central mosquitto over its
// websockets listener and shows both instances of a two-daemon site
// (site-a, site-b), each online with its camera and faces labelled, live.
// EDGEMO_ARTIFACTS keeps the screenshot (docs/site.png comes from it).
func TestSitePageInChromium(t *testing.T) {
	wsPort := mqtttest.FreePort(t)
	central := mqtttest.StartMosquitto(t, fmt.Sprintf("listener %d 127.0.0.1", wsPort), "protocol websockets")
	var a string
	for _, p := range []string{"site-a", "site-b"} {
		r, _ := start(t, daemonConfig(t, "  broker: "+central.URL()+"\n  topic_prefix: "+p, astronaut))
		if a == "" {
			a = r.d.HTTPAddr() // either instance's dashboard listener serves the page
		}
	}
	dir := testenv.ArtifactsDir(t)
	shot := filepath.Join(dir, "site.png")
	nodeModules := testenv.Path(t, "deps/node/node_modules/playwright-core")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	url := fmt.Sprintf("http://%s/site.html?broker=ws://127.0.0.1:%d", a, wsPort)
	cmd := exec.CommandContext(ctx, "node", testenv.Path(t, "web/testdata/site.cjs"), url, shot, "2")
	cmd.Env = append(os.Environ(), "EDGEMO_NODE_MODULES="+filepath.Dir(nodeModules))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, stderr.String())
	}
	var res struct {
		Instances []struct {
			Prefix, Available string
			Cameras, Faces    []string
			Trees             int
		} `json:"instances"`
		OffMachine []string `json:"off_machine"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.OffMachine) > 0 {
		t.Fatalf("Chromium had sockets off this machine: %v", res.OffMachine)
	}
	var prefixes []string
	for _, in := range res.Instances {
		prefixes = append(prefixes, in.Prefix)
		if in.Available != "online" || !slices.Equal(in.Cameras, []string{"astro"}) || len(in.Faces) == 0 || in.Trees == 0 {
			t.Errorf("instance %+v: want online, camera astro, faces and trees", in)
		}
	}
	if !slices.Equal(prefixes, []string{"site-a", "site-b"}) {
		t.Fatalf("instances %v, want site-a and site-b", prefixes)
	}
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("screenshot %s missing or tiny: %v", shot, err)
	}
	t.Logf("%+v; screenshot %s", res.Instances, shot)
}
