package graph

import (
	"math/rand"
	"testing"
)

// TestExpFastPathMatchesScalar checks the vector exp32 on whole vectors
// inside the fast path's range (|x| <= 87, no special-case fix-ups) and on
// either side of its bound, for expSub32 and QuickGELU, against the
// scalar code bit for bit.
func TestExpFastPathMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var x []float32
	for i := 0; i < 4096; i++ {
		x = append(x, float32(rng.NormFloat64()*4))
	}
	for _, c := range []float32{87, -87, 86.99, -86.99, 88, -88, 88.72283, -88.72283} {
		for i := 0; i < 16; i++ { // a whole vector of values near the bound
			x = append(x, c*(1-float32(i)*1e-7))
		}
	}
	got := append([]float32(nil), x...)
	expSub32(got, 0)
	for i, v := range x {
		if want := exp32(v); !sameBits32(got[i], want) {
			t.Fatalf("exp32(%v): vector %v, scalar %v", v, got[i], want)
		}
	}
	y := make([]float32, len(x))
	for i := range x {
		x[i] /= -1.702 // the activation's exp argument is -1.702·x
	}
	n := quickGELUBlock(false, x, nil, y)
	for i, v := range x[:n] {
		if want := v * (1 / (1 + exp32(-1.702*v))); !sameBits32(y[i], want) {
			t.Fatalf("QuickGELU(%v): vector %v, scalar %v", v, y[i], want)
		}
	}
}
