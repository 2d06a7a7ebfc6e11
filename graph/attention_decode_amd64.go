//go:build amd64

package graph

//go:noescape
func decodeScoresAVX512(q, k *float32, ld, n, hd, tail int, scale float32, p *float32)

//go:noescape
func decodeWeightedSumAVX512(p, v *float32, ld, n, hd, tail int, out *float32)

// decodeTail is the lane mask of the last, partial 16-lane chunk of hd
// elements (0 when hd is a multiple of 16).
func decodeTail(hd int) int { return 1<<(hd&15) - 1 }

// decodeScores is decodeScoresGo, 16 lanes at a time where the CPU has
// AVX-512 (same bits).
func decodeScores(q, k []float32, ld int, scale float32, p []float32) {
	if !hasAVX512 || len(p) == 0 || len(q) == 0 {
		decodeScoresGo(q, k, ld, scale, p)
		return
	}
	hd := len(q)
	_ = k[(len(p)-1)*ld+hd-1] // the kernel reads k[j·ld : j·ld+hd] for j < len(p)
	decodeScoresAVX512(&q[0], &k[0], ld, len(p), hd, decodeTail(hd), scale, &p[0])
}

// decodeWeightedSum is decodeWeightedSumGo, 16 columns at a time where the
// CPU has AVX-512 (same bits).
func decodeWeightedSum(p, v []float32, ld int, out []float32) {
	if !hasAVX512 || len(p) == 0 || len(out) == 0 {
		decodeWeightedSumGo(p, v, ld, out)
		return
	}
	hd := len(out)
	_ = v[(len(p)-1)*ld+hd-1]
	decodeWeightedSumAVX512(&p[0], &v[0], ld, len(p), hd, decodeTail(hd), &out[0])
}
