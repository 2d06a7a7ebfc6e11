package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestCrossEntropyGradReadsForwardLogSumExp checks that the gradient from
// the forward pass's saved row log-sum-exp has the bits of the gradient that
// computes it again, with and without label smoothing and ignored rows.
func TestCrossEntropyGradReadsForwardLogSumExp(t *testing.T) {
	rng := rand.New(rand.NewSource(19))
	const n, v = 7, 301
	l := make([]float32, n*v)
	for i := range l {
		l[i] = float32(rng.NormFloat64() * 4)
	}
	tg := []int{3, IgnoreIndex, 0, 300, 17, IgnoreIndex, 150}
	for _, eps := range []float64{0, 0.1} {
		per, off := make([]float64, n), make([]float64, n)
		ceLoss(eps, l, tg, nil, per, off, n, v)
		want, got := make([]float32, n*v), make([]float32, n*v)
		ceGrad(eps, l, tg, nil, nil, 0.5, want, n, v)
		ceGrad(eps, l, tg, nil, off, 0.5, got, n, v)
		for i := range want {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("smoothing %v, element %d: got %v, want %v", eps, i, got[i], want[i])
			}
		}
	}
}
