//go:build amd64

package graph

//go:noescape
func lnSumAVX512(x *float32, n int) float64

//go:noescape
func lnSqDevAVX512(x *float32, n int, mu float64) float64

//go:noescape
func lnApplyAVX512(x, gain, bias, y *float32, n int, mu, rstd float64)

// lnSum32 is lnSumRef with its whole blocks summed by the AVX-512 kernels
// (same order, so the same bits).
func lnSum32(x []float32, mu float64, sq bool) float64 {
	nb := len(x) / lnLanes * lnLanes
	if !hasAVX512 || nb == 0 {
		return lnSumRef(x, mu, sq)
	}
	var sum float64
	if sq {
		sum = lnSqDevAVX512(&x[0], nb, mu)
	} else {
		sum = lnSumAVX512(&x[0], nb)
	}
	return lnTail(sum, x[nb:], mu, sq)
}

// lnApply32 is lnApplyRef, 16 elements at a time with AVX-512.
func lnApply32(x, g, b, y []float32, mu, rstd float64) {
	if nb := len(x) &^ 15; hasAVX512 && nb > 0 {
		lnApplyAVX512(&x[0], &g[0], &b[0], &y[0], nb, mu, rstd)
		x, g, b, y = x[nb:], g[nb:], b[nb:], y[nb:]
	}
	lnApplyRef(x, g, b, y, mu, rstd)
}
