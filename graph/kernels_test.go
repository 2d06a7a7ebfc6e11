package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestGemmParallelMatchesSingleCall splits products across 2 and 3
// workers, along rows and along columns, for every transpose combination,
// and compares with one BLAS call.
func TestGemmParallelMatchesSingleCall(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, dims := range [][3]int{{37, 5, 11}, {5, 41, 9}} { // m ≥ n splits rows, else columns
		m, n, k := dims[0], dims[1], dims[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				a, b := fill(m*k), fill(k*n)
				lda, ldb := k, n
				if tA {
					lda = m
				}
				if tB {
					ldb = k
				}
				want := fill(m * n)
				got := append([]float32(nil), want...)
				gemm1(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, want, n)
				for _, w := range []int{2, 3} {
					g := append([]float32(nil), got...)
					gemmParallel(w, tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, g, n)
					for i := range g {
						if math.Abs(float64(g[i]-want[i])) > 1e-5 {
							t.Fatalf("m=%d n=%d k=%d tA=%v tB=%v workers=%d: element %d is %g, want %g", m, n, k, tA, tB, w, i, g[i], want[i])
						}
					}
				}
			}
		}
	}
}
