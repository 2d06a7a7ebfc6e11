package graph

import (
	"math/rand"
	"testing"
)

// BenchmarkBF16DPTile times the VDPBF16PS tile kernel alone (operands in cache).
func BenchmarkBF16DPTile(b *testing.B) {
	if !hasBF16DP {
		b.Skip("no AVX512_BF16")
	}
	const in = 768
	rng := rand.New(rand.NewSource(1))
	w := randBF16(rng, dpTileN*in)
	xp := make([]uint32, in/2*dpTileM)
	for i := range xp {
		xp[i] = uint32(BF16FromF32(float32(rng.NormFloat64()))) * 0x10001
	}
	out := make([]float32, dpTileM*dpTileN)
	for i := 0; i < b.N; i++ {
		dpbf16Tile(&xp[0], &w[0], in, in/2, &out[0])
	}
	b.ReportMetric(2*dpTileM*dpTileN*in*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
