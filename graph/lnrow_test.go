package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestLayerNormRowKernelsMatchGoReference checks the float32 LayerNorm row
// passes (AVX-512 where the CPU has it) bit for bit against the Go
// reference order, and the row against a float64 LayerNorm, over row
// lengths with and without whole vector blocks and rows far from zero mean.
func TestLayerNormRowKernelsMatchGoReference(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512: lnRow32 is its Go reference")
	}
	rng := rand.New(rand.NewSource(3))
	for _, tc := range []struct {
		name   string
		n      int
		offset float64
	}{
		{"one", 1, 0}, {"tail only", 31, 0.5}, {"one block", 32, 0}, {"block and tail", 47, -3},
		{"git-base width", 768, 0}, {"wide, offset mean", 3072, 100}, {"odd", 777, 1e-3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x, g, b := make([]float32, tc.n), make([]float32, tc.n), make([]float32, tc.n)
			for i := range x {
				x[i] = float32(tc.offset + rng.NormFloat64()*2)
				g[i] = float32(1 + 0.1*rng.NormFloat64())
				b[i] = float32(0.1 * rng.NormFloat64())
			}
			const eps = 1e-5
			y, yref := make([]float32, tc.n), make([]float32, tc.n)
			mu, rstd := lnRow32(x, g, b, y, eps)
			nf := float64(tc.n)
			muRef := lnSumRef(x, 0, false) / nf
			rstdRef := 1 / math.Sqrt(lnSumRef(x, muRef, true)/nf+eps)
			lnApplyRef(x, g, b, yref, muRef, rstdRef)
			if mu != muRef || rstd != rstdRef {
				t.Fatalf("stats (%v, %v), Go reference (%v, %v)", mu, rstd, muRef, rstdRef)
			}
			for i := range y {
				if math.Float32bits(y[i]) != math.Float32bits(yref[i]) {
					t.Fatalf("y[%d] = %v, Go reference %v", i, y[i], yref[i])
				}
			}
			// Against float64 throughout: the row statistics to ~1e-15
			// relative, the output to float32 rounding of its two steps.
			m64, r64 := rowStats(x, eps)
			if math.Abs(mu-m64) > 1e-12*(1+math.Abs(m64)) || math.Abs(rstd-r64) > 1e-12*r64 {
				t.Fatalf("stats (%v, %v), float64 (%v, %v)", mu, rstd, m64, r64)
			}
			for i, v := range x {
				want := (float64(v)-m64)*r64*float64(g[i]) + float64(b[i])
				if d := math.Abs(float64(y[i]) - want); d > 4e-7*(math.Abs(want)+1) {
					t.Fatalf("y[%d] = %v, float64 %v", i, y[i], want)
				}
			}
		})
	}
}
