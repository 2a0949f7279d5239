// Command treediff compares two runs' trees (JSON Lines) of the same input,
// e.g. the amd64 and the emulated arm64 binary: every tree must validate
// against edgemo.tree/v1, both runs must hold the same trees with the same
// labels (expression, emotion, attribute values; the rationale, which prints
// rounded scores, is not compared), and it prints the largest
// absolute difference of each numeric field. Exit 1 on any mismatch.
//
// A label that differs is accepted only when its own confidence is below
// -weak (default 0.3) in both runs: a near-tie that the ~1e-2 score
// differences between ISAs (AVX-512 vs NEON kernels) can flip. It is printed
// as "weak"; any other difference fails.
//
//	go run ./scripts/treediff [-weak 0.3] a.jsonl b.jsonl
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

var weak float64

func main() {
	flag.Float64Var(&weak, "weak", 0.3, "a label whose confidence is below this in both runs may differ (reported)")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: treediff [-weak 0.3] a.jsonl b.jsonl")
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
	diffs := map[string]float64{}
	var bad, weakDiffs []string
	for _, ta := range a {
		tb, ok := byID[fmt.Sprint(ta["id"])]
		if !ok {
			bad = append(bad, fmt.Sprintf("tree %v: missing in the second run", ta["id"]))
			continue
		}
		walk("", ta, tb, ta, tb, diffs, &bad, &weakDiffs)
	}
	for _, w := range weakDiffs {
		fmt.Println("weak label (confidence <", weak, "in both runs), differs:", w)
	}
	keys := make([]string, 0, len(diffs))
	for k := range diffs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("%d trees, same labels: %v (weak labels that differ: %d)\nlargest |a-b| per numeric field:\n", len(a), len(bad) == 0, len(weakDiffs))
	for _, k := range keys {
		fmt.Printf("  %-45s %.6g\n", k, diffs[k])
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d fields differ: %s", len(bad), strings.Join(bad, "; "))
	}
	return nil
}

func walk(path string, a, b, pa, pb any, diffs map[string]float64, bad, weakDiffs *[]string) {
	if skip(path) {
		return
	}
	switch av := a.(type) {
	case map[string]any:
		bv, ok := b.(map[string]any)
		if !ok {
			*bad = append(*bad, path+": object vs non-object")
			return
		}
		for k := range av {
			if _, ok := bv[k]; !ok {
				*bad = append(*bad, join(path, k)+": missing in second run")
			}
		}
		for k, v := range bv {
			walk(join(path, k), av[k], v, av, bv, diffs, bad, weakDiffs)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) != len(av) {
			*bad = append(*bad, fmt.Sprintf("%s: %d elements vs %v", path, len(av), b))
			return
		}
		for i := range av {
			walk(path+"[]", av[i], bv[i], pa, pb, diffs, bad, weakDiffs)
		}
	case float64:
		bv, ok := b.(float64)
		if !ok {
			*bad = append(*bad, path+": number vs non-number")
			return
		}
		if d := math.Abs(av - bv); d > diffs[path] {
			diffs[path] = d
		} else if _, seen := diffs[path]; !seen {
			diffs[path] = d
		}
	default: // strings (labels, names), booleans, null: must be equal
		if fmt.Sprint(a) == fmt.Sprint(b) {
			return
		}
		msg := fmt.Sprintf("%s: %v vs %v", path, a, b)
		if ca, cb, ok := confidences(pa, pb); ok && ca < weak && cb < weak {
			*weakDiffs = append(*weakDiffs, fmt.Sprintf("%s (confidence %.4g vs %.4g)", msg, ca, cb))
			return
		}
		*bad = append(*bad, msg)
	}
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}

// confidences are the "confidence" siblings of a label in both runs.
func confidences(pa, pb any) (float64, float64, bool) {
	ma, ok1 := pa.(map[string]any)
	mb, ok2 := pb.(map[string]any)
	if !ok1 || !ok2 {
		return 0, 0, false
	}
	ca, ok1 := ma["confidence"].(float64)
	cb, ok2 := mb["confidence"].(float64)
	return ca, cb, ok1 && ok2
}
