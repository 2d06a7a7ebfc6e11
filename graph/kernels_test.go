package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestGemmParallelMatchesSingleCall checks one BLAS call (gemm, or gemv
// for a single row) against a naive product, then splits the product across
// 2 and 3 workers, along rows and along columns, for every transpose
// combination, and compares.
func TestGemmParallelMatchesSingleCall(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	fill := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	for _, dims := range [][3]int{{37, 5, 11}, {5, 41, 9}, {1, 23, 7}} { // m ≥ n splits rows, else columns; m = 1 is gemv
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
				// Naive reference: c = 0.5·op(a)·op(b) + 0.25·c.
				naive := append([]float32(nil), want...)
				for i := 0; i < m; i++ {
					for j := 0; j < n; j++ {
						var sum float64
						for p := 0; p < k; p++ {
							var av, bv float32
							if tA {
								av = a[p*lda+i]
							} else {
								av = a[i*lda+p]
							}
							if tB {
								bv = b[j*ldb+p]
							} else {
								bv = b[p*ldb+j]
							}
							sum += float64(av) * float64(bv)
						}
						naive[i*n+j] = float32(0.5*sum + 0.25*float64(naive[i*n+j]))
					}
				}
				gemm1(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, want, n)
				for i := range want {
					if math.Abs(float64(want[i]-naive[i])) > 1e-4 {
						t.Fatalf("m=%d n=%d k=%d tA=%v tB=%v: BLAS element %d is %g, naive %g", m, n, k, tA, tB, i, want[i], naive[i])
					}
				}
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

// TestGemmWritesOnlyItsOutput passes output slices that run on past the
// matrix (as attention does for each head's columns) and checks nothing
// past it changes: gonum's gemv with beta 0 once cleared the whole slice.
func TestGemmWritesOnlyItsOutput(t *testing.T) {
	for _, m := range []int{1, 3} {
		for _, beta := range []float32{0, 1} {
			const n, k, ldc = 4, 5, 9
			a := make([]float32, m*k)
			b := make([]float32, k*n)
			for i := range a {
				a[i] = 1
			}
			for i := range b {
				b[i] = 1
			}
			c := make([]float32, m*ldc+20)
			for i := range c {
				c[i] = 7
			}
			gemm1(false, false, m, n, k, 1, a, k, b, n, beta, c, ldc)
			for i := range m {
				for j := range ldc {
					want := float32(7)
					if j < n {
						want = 5 + 7*beta
					}
					if c[i*ldc+j] != want {
						t.Fatalf("m=%d beta=%g: c[%d,%d] = %g, want %g", m, beta, i, j, c[i*ldc+j], want)
					}
				}
			}
			for i := m * ldc; i < len(c); i++ {
				if c[i] != 7 {
					t.Fatalf("m=%d beta=%g: wrote past the output at %d", m, beta, i)
				}
			}
		}
	}
}
