package graph

import (
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// BenchmarkActBackward times the MLP backward's activation passes at the
// git-base training step's shape (1608 rows × 3072, batch 8): the
// gradient dy·f'(h) (ActGrad) and f(h) computed again (ActAgain), for
// QuickGELU (vision) and the exact GELU (text), in CPU time per op.
func BenchmarkActBackward(b *testing.B) {
	rng := rand.New(rand.NewSource(1))
	const n, inter = 1608, 3072
	h, dy := rand32(rng, n, inter), rand32(rng, n, inter)
	for _, a := range []Activation{QuickGELU, GELU} {
		grad := actGradOp{newBase("grad", nil), tensor.Float32, a, false}
		again := actAgainOp{newBase("again", nil), tensor.Float32, a}
		cases := []struct {
			name string
			fn   func() (G.Value, error)
		}{
			{string(a) + "/ActGrad", func() (G.Value, error) { return grad.Do(h, dy) }},
			{string(a) + "/ActAgain", func() (G.Value, error) { return again.Do(h, dy) }},
		}
		for _, cs := range cases {
			b.Run(cs.name, func(b *testing.B) {
				cs.fn()
				b.ResetTimer()
				t0 := benchCPUTime()
				for i := 0; i < b.N; i++ {
					if _, err := cs.fn(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(benchCPUTime()-t0)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
