//go:build !amd64

package graph

// colSumBlock32 does nothing off amd64: the scalar loop sums every column.
func colSumBlock32(x []float32, rows, stride int, out []float32) int { return 0 }

// lnGradGBlock32 does nothing off amd64: the scalar loop does every column.
func lnGradGBlock32(x, dy []float32, rows, stride int, mu, rstd []float64, out []float32) int {
	return 0
}

// lnGradXRows32 does nothing off amd64: the scalar loop does every row.
func lnGradXRows32(x, dy, g []float32, rows, c int, mu, rstd []float64, dx []float32) bool {
	return false
}

// softmaxGradRows32 does nothing off amd64: the scalar loop does every row.
func softmaxGradRows32(p, d []float32, rows, cols int) bool { return false }
