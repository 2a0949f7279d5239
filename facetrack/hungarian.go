package facetrack

import "math"

// Hungarian solves the rectangular linear assignment problem on cost
// (rows × cols, every row the same length) with the Hungarian algorithm
// (Kuhn–Munkres with row/column potentials, O(n²·m)).
//
// A cost of ±Inf or NaN marks a forbidden pair. The result assigns each row a
// column index, or -1 when the row is unassigned. Among all assignments it
// first maximises the number of allowed (finite) pairs and then minimises
// their total cost; it never returns a forbidden pair. Costs may be negative.
// An empty matrix (or one with zero columns) leaves every row unassigned.
func Hungarian(cost [][]float64) []int {
	n := len(cost)
	rowToCol := make([]int, n)
	for i := range rowToCol {
		rowToCol[i] = -1
	}
	if n == 0 || len(cost[0]) == 0 {
		return rowToCol
	}
	m := len(cost[0])

	// Range of the finite costs, to build a "forbidden" cost larger than any
	// sum of finite ones, so the solver prefers one more allowed pair over
	// any saving in cost.
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, row := range cost {
		for _, c := range row {
			if isForbidden(c) {
				continue
			}
			lo = math.Min(lo, c)
			hi = math.Max(hi, c)
		}
	}
	if math.IsInf(lo, 1) { // nothing allowed
		return rowToCol
	}
	k := float64(min(n, m))
	big := (hi-lo+1)*(k+1) + 1

	// The solver needs rows ≤ columns; transpose otherwise.
	transposed := n > m
	r, c := n, m
	if transposed {
		r, c = m, n
	}
	at := func(i, j int) float64 { // i in [0,r), j in [0,c)
		var v float64
		if transposed {
			v = cost[j][i]
		} else {
			v = cost[i][j]
		}
		if isForbidden(v) {
			return big
		}
		return v - lo
	}

	// e-maxx formulation, 1-based with a virtual column 0.
	u := make([]float64, r+1)
	v := make([]float64, c+1)
	p := make([]int, c+1) // p[j]: row matched to column j (0 = none)
	way := make([]int, c+1)
	minv := make([]float64, c+1)
	used := make([]bool, c+1)
	for i := 1; i <= r; i++ {
		p[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = math.Inf(1)
			used[j] = false
		}
		for {
			used[j0] = true
			i0 := p[j0]
			delta := math.Inf(1)
			j1 := 0
			for j := 1; j <= c; j++ {
				if used[j] {
					continue
				}
				cur := at(i0-1, j-1) - u[i0] - v[j]
				if cur < minv[j] {
					minv[j] = cur
					way[j] = j0
				}
				if minv[j] < delta {
					delta = minv[j]
					j1 = j
				}
			}
			for j := 0; j <= c; j++ {
				if used[j] {
					u[p[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if p[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			p[j0] = p[j1]
			j0 = j1
		}
	}

	for j := 1; j <= c; j++ {
		if p[j] == 0 {
			continue
		}
		row, col := p[j]-1, j-1
		if transposed {
			row, col = col, row
		}
		if !isForbidden(cost[row][col]) {
			rowToCol[row] = col
		}
	}
	return rowToCol
}

func isForbidden(c float64) bool { return math.IsInf(c, 0) || math.IsNaN(c) }
