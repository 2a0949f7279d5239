package facetrack

import (
	"math"
	"math/rand/v2"
	"testing"
)

// bruteAssign returns the best objective (forbidden-free pairs maximised,
// then cost minimised) over every assignment of rows to distinct columns.
func bruteAssign(cost [][]float64) (pairs int, total float64) {
	n := len(cost)
	m := 0
	if n > 0 {
		m = len(cost[0])
	}
	bestPairs, bestCost := -1, math.Inf(1)
	used := make([]bool, m)
	var rec func(i, p int, c float64)
	rec = func(i, p int, c float64) {
		if i == n {
			if p > bestPairs || (p == bestPairs && c < bestCost-1e-9) {
				bestPairs, bestCost = p, c
			}
			return
		}
		rec(i+1, p, c) // row i unassigned
		for j := 0; j < m; j++ {
			if used[j] || isForbidden(cost[i][j]) {
				continue
			}
			used[j] = true
			rec(i+1, p+1, c+cost[i][j])
			used[j] = false
		}
	}
	rec(0, 0, 0)
	if bestPairs < 0 {
		return 0, 0
	}
	return bestPairs, bestCost
}

func checkAssignment(t *testing.T, cost [][]float64, got []int) (pairs int, total float64) {
	t.Helper()
	if len(got) != len(cost) {
		t.Fatalf("got %d rows, want %d", len(got), len(cost))
	}
	seen := map[int]bool{}
	for i, j := range got {
		if j < 0 {
			continue
		}
		if j >= len(cost[i]) {
			t.Fatalf("row %d assigned to column %d out of range", i, j)
		}
		if seen[j] {
			t.Fatalf("column %d assigned twice: %v", j, got)
		}
		seen[j] = true
		if isForbidden(cost[i][j]) {
			t.Fatalf("row %d assigned to forbidden column %d", i, j)
		}
		pairs++
		total += cost[i][j]
	}
	return pairs, total
}

func TestHungarianMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 3000; trial++ {
		n, m := 1+rng.IntN(6), 1+rng.IntN(6)
		pForbid := []float64{0, 0.2, 0.5, 0.9}[trial%4]
		cost := make([][]float64, n)
		for i := range cost {
			cost[i] = make([]float64, m)
			for j := range cost[i] {
				switch {
				case rng.Float64() < pForbid:
					cost[i][j] = math.Inf(1)
				case trial%7 == 0:
					cost[i][j] = float64(rng.IntN(4)) // many ties
				default:
					cost[i][j] = rng.Float64()*10 - 2 // negatives allowed
				}
			}
		}
		got := Hungarian(cost)
		gp, gc := checkAssignment(t, cost, got)
		wp, wc := bruteAssign(cost)
		if gp != wp || math.Abs(gc-wc) > 1e-9 {
			t.Fatalf("trial %d (%d×%d): Hungarian gives %d pairs cost %.6f, brute force %d pairs cost %.6f\ncost=%v\ngot=%v", trial, n, m, gp, gc, wp, wc, cost, got)
		}
	}
}

func TestHungarianEdgeCases(t *testing.T) {
	inf := math.Inf(1)
	if got := Hungarian(nil); len(got) != 0 {
		t.Fatalf("nil: %v", got)
	}
	if got := Hungarian([][]float64{{}, {}}); got[0] != -1 || got[1] != -1 {
		t.Fatalf("zero columns: %v", got)
	}
	if got := Hungarian([][]float64{{inf, math.NaN()}, {inf, inf}}); got[0] != -1 || got[1] != -1 {
		t.Fatalf("all forbidden: %v", got)
	}
	// Greedy would take (0,0)=0 and leave row 1 unmatched; the optimum
	// matches both rows.
	got := Hungarian([][]float64{{0, 1}, {5, inf}})
	if got[0] != 1 || got[1] != 0 {
		t.Fatalf("cardinality first: got %v, want [1 0]", got)
	}
	// 3×1: the cheapest row wins.
	got = Hungarian([][]float64{{3}, {1}, {2}})
	if got[0] != -1 || got[1] != 0 || got[2] != -1 {
		t.Fatalf("tall: got %v", got)
	}
}
