package openai

import (
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine"
	"github.com/edgemo/edgemo/engine/tokenizer"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/facetrack"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

const tinyManifest = "models/videmo-tiny/videmo.manifest.json"

var (
	tokOnce sync.Once
	tok     *tokenizer.Tokenizer
	tokErr  error
)

func testTokenizer(t testing.TB) *tokenizer.Tokenizer {
	t.Helper()
	p := testenv.Path(t, "models/videmo-tiny/tokenizer.json")
	tokOnce.Do(func() { tok, tokErr = tokenizer.Load(p) })
	if tokErr != nil {
		t.Fatal(tokErr)
	}
	return tok
}

func testRuntime(t testing.TB) *engine.Runtime {
	t.Helper()
	rt, err := engine.NewRuntime(engine.RuntimeConfig{LibraryPath: testenv.ORTLib(t), Providers: []string{"cpu"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// tinyRunner opens the tiny real-architecture VidEmo model set.
func tinyRunner(t testing.TB, rt *engine.Runtime) *videmo.Runner {
	t.Helper()
	r, err := videmo.NewRunner(rt, testenv.Path(t, tinyManifest), testTokenizer(t), videmo.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// tinyServer is a real Server on the tiny model behind a real loopback
// HTTP listener.
func tinyServer(t testing.TB, rt *engine.Runtime, cfg ServerConfig) (*Server, *httptest.Server) {
	t.Helper()
	s := NewServer(tinyRunner(t, rt), cfg)
	hs := httptest.NewServer(s)
	t.Cleanup(func() { hs.Close(); s.Close() })
	return s, hs
}

// testWindow is an 8-sample window at 2 fps of 64x64 BGR crops (a moving
// gradient with a brightening "mouth"); seq varies the pixels.
func testWindow(seq uint64) window.Window {
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC).Add(time.Duration(seq) * 4 * time.Second)
	w := window.Window{Camera: "cam1", TrackID: 7, Seq: seq, FPS: 2, FramesSeen: 40, Start: t0, End: t0.Add(3500 * time.Millisecond)}
	for f := range 8 {
		const S = 64
		pix := make([]byte, S*S*3)
		for y := range S {
			for x := range S {
				i := (y*S + x) * 3
				pix[i] = byte((x*4 + f*9 + int(seq)*31) % 256)
				pix[i+1] = byte((y*4 + f*5) % 256)
				pix[i+2] = byte((x + y + f*13) % 256)
				if y > 40 && y < 50 && x > 20 && x < 44 {
					pix[i], pix[i+1], pix[i+2] = byte(100+f*8), byte(100+f*8), byte(120+f*8)
				}
			}
		}
		w.Samples = append(w.Samples, window.Sample{
			FrameSeq: uint64(100 + f), Time: t0.Add(time.Duration(f) * 500 * time.Millisecond),
			Box: facetrack.Rect{X: 410.25, Y: 96, W: 180, H: 180}, Score: 0.97,
			Crop: facetrack.Crop{W: S, H: S, Pix: pix},
		})
	}
	return w
}
