package openai

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgemo/edgemo/engine/schedule"
	"github.com/edgemo/edgemo/engine/videmo"
	"github.com/edgemo/edgemo/internal/testenv"
	"github.com/edgemo/edgemo/window"
)

// live is testWindow(seq) for track id, ending now (deadlines are wall
// clock).
func live(id int, seq uint64) window.Window {
	w := testWindow(seq)
	w.TrackID = id
	shift := time.Since(w.End)
	w.Start, w.End = w.Start.Add(shift), w.End.Add(shift)
	for i := range w.Samples {
		w.Samples[i].Time = w.Samples[i].Time.Add(shift)
	}
	return w
}

// Behind the scheduler the remote engine is one more slow analyzer: while
// a slow server holds one track's window past the deadline, the other
// track's queued window goes stale and is counted, and the first still
// lands as a valid tree.
func TestRemoteBehindSchedulerDropsStale(t *testing.T) {
	rt := testRuntime(t)
	srv := NewServer(tinyRunner(t, rt), ServerConfig{})
	t.Cleanup(func() { srv.Close() })
	var first atomic.Bool
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			time.Sleep(1500 * time.Millisecond) // a busy GPU
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	plan, err := videmo.LoadPlan(testenv.Path(t, tinyManifest))
	if err != nil {
		t.Fatal(err)
	}
	rem, err := NewRemote(RemoteConfig{Client: ClientConfig{URL: hs.URL, Model: srv.Model()}, Plan: plan})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan schedule.Result, 4)
	sc := schedule.New(context.Background(), rem, schedule.Config{MaxAge: time.Second, OnResult: func(r schedule.Result) { done <- r }})
	defer sc.Close()
	if !sc.Submit(live(1, 1), 1) {
		t.Fatalf("track 1's window refused: %+v", sc.Stats())
	}
	time.Sleep(100 * time.Millisecond) // track 1 is running
	sc.Submit(live(2, 2), 1)
	select {
	case r := <-done:
		if r.Err != nil || r.Tree == nil || r.Tree.TrackID != 1 {
			t.Fatalf("track 1: %+v", r)
		}
		if err := r.Tree.Validate(); err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("no result: %+v, remote %+v", sc.Stats(), rem.Client().Stats())
	}
	time.Sleep(100 * time.Millisecond)
	if st := sc.Stats(); st.Stale != 1 || st.Completed != 1 {
		t.Fatalf("stats %+v: want track 2's window dropped as stale", st)
	}
}
