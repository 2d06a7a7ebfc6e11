//go:build amd64

package graph

//go:noescape
func colSumAVX512(x *float32, rows, stride int, out *float32, w int)

// colSumBlock32 sums the first w&^15 columns of the rows×stride matrix x
// into out with the AVX-512 kernel (same bits as the scalar column sums)
// and returns how many columns it did: 0 without AVX-512.
func colSumBlock32(x []float32, rows, stride int, out []float32) int {
	w := len(out) &^ 15
	if !hasAVX512 || w == 0 || rows == 0 {
		return 0
	}
	_ = x[(rows-1)*stride+w-1] // bounds: the kernel reads rows×w values
	colSumAVX512(&x[0], rows, stride, &out[0], w)
	return w
}

//go:noescape
func lnGradGAVX512(x, dy *float32, rows, stride int, mu, rstd *float64, out *float32, w int)

//go:noescape
func lnGradXAVX512(x, dy, gain *float32, rows, c int, mu, rstd *float64, dx *float32)

// lnGradGBlock32 is layerNormGradG's column sums over the first w&^7
// columns of x and dy (rows×stride) with the AVX-512 kernel (same bits)
// and returns how many columns it did: 0 without AVX-512.
func lnGradGBlock32(x, dy []float32, rows, stride int, mu, rstd []float64, out []float32) int {
	w := len(out) &^ 7
	if !hasAVX512 || w == 0 || rows == 0 {
		return 0
	}
	last := (rows-1)*stride + w - 1
	_, _, _, _ = x[last], dy[last], mu[rows-1], rstd[rows-1]
	lnGradGAVX512(&x[0], &dy[0], rows, stride, &mu[0], &rstd[0], &out[0], w)
	return w
}

// lnGradXRows32 is layerNormGradX over whole rows with the AVX-512 kernel
// (same bits as layerNormGradXRow) when the CPU has it and the row length
// is a multiple of 8; it reports whether it ran.
func lnGradXRows32(x, dy, g []float32, rows, c int, mu, rstd []float64, dx []float32) bool {
	if !hasAVX512 || c < 8 || c%8 != 0 || rows == 0 {
		return false
	}
	n := rows * c
	_, _, _, _, _, _ = x[n-1], dy[n-1], dx[n-1], g[c-1], mu[rows-1], rstd[rows-1]
	lnGradXAVX512(&x[0], &dy[0], &g[0], rows, c, &mu[0], &rstd[0], &dx[0])
	return true
}

//go:noescape
func softmaxGradAVX512(p, d *float32, rows, cols int)

// softmaxGradRows32 is softmaxGradRow over every row of p and d (rows×cols)
// with the AVX-512 kernel (same bits) when the CPU has it and cols >= 8;
// it reports whether it ran.
func softmaxGradRows32(p, d []float32, rows, cols int) bool {
	if !hasAVX512 || cols < 8 || rows == 0 {
		return false
	}
	n := rows * cols
	_, _ = p[n-1], d[n-1]
	softmaxGradAVX512(&p[0], &d[0], rows, cols)
	return true
}
