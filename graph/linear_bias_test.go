package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestLinearBiasForwardMatchesCopyThenGemm checks the Linear forward that
// copies the bias inside each product block against copying it first and
// one gemm call, bit for bit, at shapes below and above the parallel split
// (row and column splits, a decode-step row, a few rows).
func TestLinearBiasForwardMatchesCopyThenGemm(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, sh := range []struct{ n, in, out int }{
		{1, 64, 48}, {5, 128, 256}, {37, 20, 30}, {197, 768, 768}, {197, 768, 3072}, {600, 128, 64}, {3, 0, 7},
	} {
		x, w, b := make([]float32, sh.n*sh.in), make([]float32, sh.out*sh.in), make([]float32, sh.out)
		for _, s := range [][]float32{x, w, b} {
			for i := range s {
				s[i] = float32(rng.NormFloat64())
			}
		}
		y, want := make([]float32, sh.n*sh.out), make([]float32, sh.n*sh.out)
		linearBiasFwd(x, w, b, y, sh.n, sh.in, sh.out)
		for i := 0; i < sh.n; i++ {
			copy(want[i*sh.out:(i+1)*sh.out], b)
		}
		gemm(false, true, sh.n, sh.out, sh.in, 1, x, max(sh.in, 1), w, max(sh.in, 1), 1, want, sh.out)
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
				t.Fatalf("%+v: y[%d] = %v, want %v", sh, i, y[i], want[i])
			}
		}
	}
}
