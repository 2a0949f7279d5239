// Command treediff compares two runs' trees (JSON Lines) of the same input,
// e.g. the amd64 and the emulated arm64 binary: every tree must validate
// against edgemo.tree/v1, both runs must hold the same trees with the same
// labels (expression, emotion, attribute values; the rationale, which prints
// rounded scores, is not compared), and it prints the largest
// absolute difference of each numeric field. Exit 1 on any mismatch.
//
// A label that differs (expression, emotion and mikels "label", attribute
// "value") is accepted only as a tie: in both runs, the run's own label
// leads the other run's label by less than -tie. The leads come from the
// label's "scores" where the tree has them; where it has none
// (emotion.label, whose fused scores stay inside the analyzer, and
// attribute values) the other label's score in this run is taken as its
// confidence in the other run, capped at 1 - this run's confidence (a
// gender of 0.73 leaves the other 0.27 at most). The default, 0.05, is the
// largest difference of one class score measured between amd64 and
// emulated arm64 on the sample clip (0.043, expression.scores.angry: ORT's
// arm64 kernels round differently, boxes move by up to 2.4 px, crops follow)
// rounded up: two labels whose scores each move by that much can trade
// places only where both leads are under it. Each tie is printed, and the
// emotion's trend and fine label may follow its tied label; any other
// difference fails.
//
//	go run ./scripts/treediff [-tie 0.05] a.jsonl b.jsonl
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/edgemo/edgemo/engine/tree"
)

// defaultTie is -tie's default (see above).
const defaultTie = 0.05

var tie = defaultTie

func main() {
	flag.Float64Var(&tie, "tie", defaultTie, "a label may differ where, in both runs, it leads the other run's label by less than this (reported)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: treediff [-tie 0.05] a.jsonl b.jsonl")
		os.Exit(2)
	}
	a, err := load(flag.Arg(0))
	if err == nil {
		var b []map[string]any
		b, err = load(flag.Arg(1))
		if err == nil {
			err = compare(a, b)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "treediff:", err)
		os.Exit(1)
	}
}

func load(path string) ([]map[string]any, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := tree.ValidateJSON(line); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no trees", path)
	}
	return out, nil
}

// Fields that differ run to run by design (wall-clock times, latencies).
func skip(path string) bool {
	for _, s := range []string{"window.start", "window.end", "onset", "latency_ms", "source.", "id", "emotion.rationale"} {
		if path == s || strings.HasPrefix(path, s) || strings.HasSuffix(path, "."+s) {
			return true
		}
	}
	return false
}

func compare(a, b []map[string]any) error {
	if len(a) != len(b) {
		return fmt.Errorf("%d trees vs %d", len(a), len(b))
	}
	// Trees are matched by id (camera, track, sequence): tracks whose
	// windows close on the same frame are analysed concurrently, so the
	// order of lines differs run to run.
	byID := map[string]map[string]any{}
	for _, t := range b {
		byID[fmt.Sprint(t["id"])] = t
	}
	d := differ{diffs: map[string]float64{}}
	for _, ta := range a {
		tb, ok := byID[fmt.Sprint(ta["id"])]
		if !ok {
			d.bad = append(d.bad, fmt.Sprintf("tree %v: missing in the second run", ta["id"]))
			continue
		}
		d.walk("", ta, tb, ta, tb)
	}
	for _, t := range d.ties {
		fmt.Println("tie, label differs:", t)
	}
	keys := make([]string, 0, len(d.diffs))
	for k := range d.diffs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("%d trees, same labels: %v (ties that differ: %d, -tie %g)\n", len(a), len(d.bad) == 0, len(d.ties), tie)
	fmt.Println("largest |a-b| per numeric field:")
	for _, k := range keys {
		fmt.Printf("  %-45s %.6g\n", k, d.diffs[k])
	}
	if len(d.bad) > 0 {
		return fmt.Errorf("%d fields differ: %s", len(d.bad), strings.Join(d.bad, "; "))
	}
	return nil
}

// differ walks two trees side by side.
type differ struct {
	diffs     map[string]float64 // largest |a-b| per numeric field
	bad, ties []string
}

func (d *differ) walk(path string, a, b, pa, pb any) {
	if skip(path) {
		return
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			d.bad = append(d.bad, path+": object vs non-object")
			return
		}
		for k := range av {
			if _, ok := bv[k]; !ok {
				d.bad = append(d.bad, join(path, k)+": missing in second run")
			}
		}
		for k, v := range bv {
			d.walk(join(path, k), av[k], v, av, bv)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) != len(av) {
			d.bad = append(d.bad, fmt.Sprintf("%s: %d elements vs %v", path, len(av), b))
			return
		}
		for i := range av {
			d.walk(path+"[]", av[i], bv[i], pa, pb)
		}
	case float64:
		bv, ok := b.(float64)
		if !ok {
			d.bad = append(d.bad, path+": number vs non-number")
			return
		}
		diff := math.Abs(av - bv)
		if old, seen := d.diffs[path]; !seen || diff > old {
			d.diffs[path] = diff
		}
	default: // strings (labels, names), booleans, null: must be equal
		if fmt.Sprint(a) == fmt.Sprint(b) {
			return
		}
		msg := fmt.Sprintf("%s: %v vs %v", path, a, b)
		ma, _ := pa.(map[string]any)
		mb, _ := pb.(map[string]any)
		key := path[strings.LastIndexByte(path, '.')+1:]
		switch {
		case key == "label" || key == "value":
			if la, lb, how, ok := leads(fmt.Sprint(a), fmt.Sprint(b), ma, mb); ok && la < tie && lb < tie {
				d.ties = append(d.ties, fmt.Sprintf("%s (leads %.4g and %.4g < %g, from %s)", msg, la, lb, tie, how))
				return
			}
		case (key == "trend" || key == "fine") && ma != nil && mb != nil && fmt.Sprint(ma["label"]) != fmt.Sprint(mb["label"]):
			// Judged with the label it describes: its own difference
			// fails the label (walked either way) unless that is a tie.
			if la, lb, _, ok := leads(fmt.Sprint(ma["label"]), fmt.Sprint(mb["label"]), ma, mb); ok && la < tie && lb < tie {
				d.ties = append(d.ties, msg+" (follows the tied label)")
				return
			}
		}
		d.bad = append(d.bad, msg)
	}
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// leads are how far each run's label la (run a), lb (run b) leads the
// other run's label in that run: from the label's "scores" siblings when
// both runs have both labels' scores, else from the "confidence" siblings
// (the other label's score here taken as its confidence there, at most
// what this run's distribution leaves: 1 - confidence, and not above the
// winner).
func leads(la, lb string, ma, mb map[string]any) (float64, float64, string, bool) {
	if ma == nil || mb == nil {
		return 0, 0, "", false
	}
	sa, okA := ma["scores"].(map[string]any)
	sb, okB := mb["scores"].(map[string]any)
	if okA && okB {
		aa, ok1 := sa[la].(float64)
		ab, ok2 := sa[lb].(float64)
		ba, ok3 := sb[la].(float64)
		bb, ok4 := sb[lb].(float64)
		if ok1 && ok2 && ok3 && ok4 {
			return aa - ab, bb - ba, "scores", true
		}
	}
	ca, ok1 := ma["confidence"].(float64)
	cb, ok2 := mb["confidence"].(float64)
	if !ok1 || !ok2 {
		return 0, 0, "", false
	}
	return ca - min(cb, 1-ca, ca), cb - min(ca, 1-cb, cb), "confidences", true
}
