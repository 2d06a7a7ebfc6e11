package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestAddF32MatchesGoReference checks the float32 Add kernel (AVX-512
// where the CPU has it) bit for bit against the Go loop, over lengths with
// and without whole vectors.
func TestAddF32MatchesGoReference(t *testing.T) {
	rng := rand.New(rand.NewSource(5))
	for _, n := range []int{1, 15, 16, 17, 63, 64, 65, 197 * 768} {
		a, c := make([]float32, n), make([]float32, n)
		for i := range a {
			a[i], c[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()*1e-3)
		}
		y, want := make([]float32, n), make([]float32, n)
		addF32(a, c, y)
		addRef(a, c, want)
		for i := range y {
			if math.Float32bits(y[i]) != math.Float32bits(want[i]) {
				t.Fatalf("n %d: y[%d] = %v, want %v", n, i, y[i], want[i])
			}
		}
	}
}
