package graph

// Tests of the reference GemmBF16's own helpers: delete with
// gemmbf16_ref.go when a bf16 kernel replaces it (GemmBF16's contract is
// tested in precision_test.go).

import (
	"math"
	"math/rand"
	"testing"
)

// BenchmarkBF16ProductOverhead compares, for one linear product of the
// git-base training step (8 × 217 rows, 768 → 768), sgemm with the
// rounding that the reference GemmBF16 adds (both operands into packed
// scratch) and with the whole reference product.
func BenchmarkBF16ProductOverhead(b *testing.B) {
	const n, in, out = 8 * 217, 768, 768
	rng := rand.New(rand.NewSource(1))
	x, w, y := randF32(rng, n*in), randF32(rng, out*in), make([]float32, n*out)
	b.Run("sgemm", func(b *testing.B) {
		for b.Loop() {
			gemm(false, true, n, out, in, 1, x, in, w, in, 0, y, out)
		}
	})
	b.Run("rounding", func(b *testing.B) {
		sa, sb := new([]float32), new([]float32)
		for b.Loop() {
			roundPacked(sa, x, n, in, in)
			roundPacked(sb, w, out, in, in)
		}
	})
	b.Run("GemmBF16", func(b *testing.B) {
		for b.Loop() {
			GemmBF16(false, true, n, out, in, x, in, w, in, 0, y, out)
		}
	})
}

// TestRoundRowIsBF16FromF32 checks GemmBF16's rounding loop against
// BF16FromF32 on ties, NaN, infinities, overflow to infinity and random
// values.
func TestRoundRowIsBF16FromF32(t *testing.T) {
	rng := rand.New(rand.NewSource(10))
	s := []float32{0, float32(math.Copysign(0, -1)), 1, -1, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN()),
		math.Float32frombits(0x3f808000), math.Float32frombits(0x3f818000), math.Float32frombits(0x7f7fffff), math.Float32frombits(0xff800001), math.Float32frombits(1)}
	for range 10000 {
		s = append(s, math.Float32frombits(rng.Uint32()))
	}
	d := make([]float32, len(s))
	roundRow(d, s)
	for i, v := range s {
		if want := F32FromBF16(BF16FromF32(v)); math.Float32bits(d[i]) != math.Float32bits(want) {
			t.Fatalf("%#08x: got %#08x, want %#08x", math.Float32bits(v), math.Float32bits(d[i]), math.Float32bits(want))
		}
	}
}
