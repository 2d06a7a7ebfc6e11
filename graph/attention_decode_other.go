//go:build !amd64

package graph

// decodeScores is decodeScoresGo (no kernel off amd64).
func decodeScores(q, k []float32, ld int, scale float32, p []float32) {
	decodeScoresGo(q, k, ld, scale, p)
}

// decodeWeightedSum is decodeWeightedSumGo (no kernel off amd64).
func decodeWeightedSum(p, v []float32, ld int, out []float32) {
	decodeWeightedSumGo(p, v, ld, out)
}
