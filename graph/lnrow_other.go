//go:build !amd64

package graph

// lnSum32 is lnSumRef (no vector kernel off amd64).
func lnSum32(x []float32, mu float64, sq bool) float64 { return lnSumRef(x, mu, sq) }

// lnApply32 is lnApplyRef (no vector kernel off amd64).
func lnApply32(x, g, b, y []float32, mu, rstd float64) { lnApplyRef(x, g, b, y, mu, rstd) }
