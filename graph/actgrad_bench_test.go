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
		cases := []opCase{
			{string(a) + "/ActGrad", func() (G.Value, error) { return grad.Do(h, dy) }},
			{string(a) + "/ActAgain", func() (G.Value, error) { return again.Do(h, dy) }},
		}
		benchOps(b, cases)
	}
}
