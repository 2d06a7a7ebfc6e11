//go:build !amd64

package graph

// dropoutBlock does nothing off amd64: applyDropout's loop does every
// element.
func dropoutBlock(dst, x []float32, seed, id, base uint64, p float64, keep float32) int { return 0 }

// hasDropoutAVX512 is false off amd64 (dropoutBlock never runs).
const hasDropoutAVX512 = false
