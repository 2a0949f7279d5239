// Command treediff compares two runs' trees (JSON Lines) of the same input,
// e.g. the amd64 and the emulated arm64 binary: every tree must validate
// against edgemo.tree/v1, both runs must hold the same trees with the same
// labels (expression, emotion, attribute values; the rationale, which prints
// rounded scores, is not compared), and it prints the largest
// absolute difference of each numeric field. Exit 1 on any mismatch.
//
//	go run ./scripts/treediff a.jsonl b.jsonl
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/edgemo/edgemo/engine/tree"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: treediff a.jsonl b.jsonl")
		os.Exit(2)
	}
	a, err := load(os.Args[1])
	if err == nil {
		var b []map[string]any
		b, err = load(os.Args[2])
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
	diffs := map[string]float64{}
	var bad []string
	for i := range a {
		walk("", a[i], b[i], diffs, &bad)
	}
	keys := make([]string, 0, len(diffs))
	for k := range diffs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Printf("%d trees, same labels: %v\nlargest |a-b| per numeric field:\n", len(a), len(bad) == 0)
	for _, k := range keys {
		fmt.Printf("  %-45s %.6g\n", k, diffs[k])
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d fields differ: %s", len(bad), strings.Join(bad, "; "))
	}
	return nil
}

func walk(path string, a, b any, diffs map[string]float64, bad *[]string) {
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
			walk(join(path, k), av[k], v, diffs, bad)
		}
	case []any:
		bv, ok := b.([]any)
		if !ok || len(bv) != len(av) {
			*bad = append(*bad, fmt.Sprintf("%s: %d elements vs %v", path, len(av), b))
			return
		}
		for i := range av {
			walk(path+"[]", av[i], bv[i], diffs, bad)
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
		if fmt.Sprint(a) != fmt.Sprint(b) {
			*bad = append(*bad, fmt.Sprintf("%s: %v vs %v", path, a, b))
		}
	}
}

func join(p, k string) string {
	if p == "" {
		return k
	}
	return p + "." + k
}
