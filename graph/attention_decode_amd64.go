//go:build amd64

package graph

//go:noescape
func decodeRowScoresAVX512(q, k *float32, ld, n, heads, hd, tail int, scale float32, p *float32, pld int)

//go:noescape
func decodeRowWeightedSumAVX512(p *float32, pld int, v *float32, ld, n, heads, hd, tail int, out *float32)

// decodeTail is the lane mask of the last, partial 16-lane chunk of hd
// elements (0 when hd is a multiple of 16).
func decodeTail(hd int) int { return 1<<(hd&15) - 1 }

// decodeRowScores is decodeRowScoresGo, 16 lanes at a time where the CPU
// has AVX-512 (same bits).
func decodeRowScores(q, k []float32, ld, n, hd int, scale float32, p []float32, pld int) {
	heads := len(q) / hd
	if !hasAVX512 || n == 0 || heads == 0 {
		decodeRowScoresGo(q, k, ld, n, hd, scale, p, pld)
		return
	}
	_ = k[(n-1)*ld+heads*hd-1] // the kernel reads k[j·ld : j·ld+heads·hd] for j < n
	_ = p[(heads-1)*pld+n-1]
	decodeRowScoresAVX512(&q[0], &k[0], ld, n, heads, hd, decodeTail(hd), scale, &p[0], pld)
}

// decodeRowWeightedSum is decodeRowWeightedSumGo, 16 columns at a time
// where the CPU has AVX-512 (same bits).
func decodeRowWeightedSum(p []float32, pld int, v []float32, ld, n, hd int, out []float32) {
	heads := len(out) / hd
	if !hasAVX512 || n == 0 || heads == 0 {
		decodeRowWeightedSumGo(p, pld, v, ld, n, hd, out)
		return
	}
	_ = v[(n-1)*ld+heads*hd-1]
	_ = p[(heads-1)*pld+n-1]
	clear(out)
	decodeRowWeightedSumAVX512(&p[0], pld, &v[0], ld, n, heads, hd, decodeTail(hd), &out[0])
}
