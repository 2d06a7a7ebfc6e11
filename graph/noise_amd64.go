//go:build amd64

package graph

import "golang.org/x/sys/cpu"

// hasDropoutAVX512 reports whether dropoutAVX512 can run (64-bit lane
// multiplies need AVX512DQ, masked 256-bit moves AVX512VL). Read once.
var hasDropoutAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512DQ && cpu.X86.HasAVX512VL

// dropArgs is dropoutAVX512's argument block (its layout is read by
// noise_amd64.s).
type dropArgs struct {
	seed, idHi, base, thresh uint64
	keep                     float32
}

//go:noescape
func dropoutAVX512(dst, x *float32, n int, k *dropArgs)

// dropoutBlock applies the float32 dropout mask to whole 8-element blocks
// with AVX-512 and returns how many leading elements it did (0 without
// it); the elements are those of applyDropout, bit for bit.
func dropoutBlock(dst, x []float32, seed, id, base uint64, p float64, keep float32) int {
	b := len(x) &^ 7
	if !hasDropoutAVX512 || b == 0 {
		return 0
	}
	k := dropArgs{seed: seed, idHi: id << 32, base: base, thresh: dropThreshold(p), keep: keep}
	dropoutAVX512(&dst[0], &x[0], b, &k)
	return b
}
