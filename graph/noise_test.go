package graph

import (
	"math"
	"math/rand"
	"testing"
)

func TestDropoutBlockMatchesKeepElem(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, p := range []float64{0.1, 0.5, 0.9, 1e-9, 0.3333333333} {
		for _, base := range []uint64{0, 7, 1 << 33} {
			const n = 1000
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			keep := float32(1 / (1 - p))
			got := make([]float32, n)
			const seed, id = 0x1234567890abcdef, 17
			m := dropoutBlock(got, x, seed, id, base, p, keep)
			if hasDropoutAVX512 && m == 0 {
				t.Fatal("the AVX-512 kernel did not run")
			}
			for j := 0; j < m; j++ {
				want := float32(0)
				if keepElem(seed, id, base+uint64(j), p) {
					want = x[j] * keep
				}
				if math.Float32bits(got[j]) != math.Float32bits(want) {
					t.Fatalf("p %v, base %d, element %d: %v, want %v", p, base, j, got[j], want)
				}
			}
		}
	}
}

func TestDropThresholdIsKeepElemsTest(t *testing.T) {
	for _, p := range []float64{0, 0.1, 0.5, 0.9, 1e-9, 1, 0.3333333333} {
		th := dropThreshold(p)
		for _, k := range []uint64{0, 1, th - 1, th, th + 1, 1<<53 - 1} {
			if k >= 1<<53 {
				continue
			}
			if want := float64(k)*(1.0/(1<<53)) >= p; (k >= th) != want {
				t.Errorf("p %v, k %d: threshold %d says %v, keepElem %v", p, k, th, k >= th, want)
			}
		}
	}
}

// BenchmarkDropout compares the scalar mask loop with the AVX-512 one in
// one process (a BERT hidden-state dropout: 1736 rows of 768).
func BenchmarkDropout(b *testing.B) {
	const n = 1736 * 768
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%17) - 8
	}
	y := make([]float32, n)
	b.Run("scalar", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j := range x {
				if keepElem(99, 3, uint64(j), 0.1) {
					y[j] = x[j] * 1.1
				} else {
					y[j] = 0
				}
			}
		}
	})
	b.Run("applyDropout", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			applyDropout(y, x, 99, 3, 0, 0.1, float32(1.1))
		}
	})
}
