//go:build !amd64

package graph

// decodeRowScores is decodeRowScoresGo (no kernel off amd64).
func decodeRowScores(q, k []float32, ld, n, hd int, scale float32, p []float32, pld int) {
	decodeRowScoresGo(q, k, ld, n, hd, scale, p, pld)
}

// decodeRowWeightedSum is decodeRowWeightedSumGo (no kernel off amd64).
func decodeRowWeightedSum(p []float32, pld int, v []float32, ld, n, hd int, out []float32) {
	decodeRowWeightedSumGo(p, pld, v, ld, n, hd, out)
}
