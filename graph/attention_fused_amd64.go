//go:build amd64

package graph

//go:noescape
func fusedScores4AVX512(q *float32, ldq int, kt *float32, hd, n3 int, scale float32, s *float32, lds int)

//go:noescape
func fusedPV4AVX512(p *float32, lds int, v *float32, ldv, n int, inv *float32, out *float32, ldo int, cols *[4]uint16)

//go:noescape
func softmaxNumAVX512(x *float32, n int, c *[expConstsLen]float32) float32

//go:noescape
func packKeysAVX512(k *float32, idx *[16]int32, tk, hd int, kt *float32)

// packKeyPanels copies tk key rows k[j·ld:][:hd] into kt as panels of 16
// keys, kt[(j/16)·16·hd + d·16 + j%16] = k[j·ld+d], the padding keys of
// the last panel and the panels past it (to len(kt)) zero (one 16-lane
// gather per panel and d).
func packKeyPanels(k []float32, ld, tk, hd int, kt []float32) {
	_ = k[(tk-1)*ld+hd-1]
	np := (tk + 15) / 16
	_ = kt[np*16*hd-1]
	clear(kt[np*16*hd:])
	var idx [16]int32
	for l := range idx {
		idx[l] = int32(l * ld * 4) // ld < 2²⁵ (the caller's check)
	}
	packKeysAVX512(&k[0], &idx, tk, hd, &kt[0])
}

// softmaxNum32 replaces x (len > 0) by its softmax numerators exp32(x[i] −
// max) and returns their sum (lane-wise, then across lanes).
func softmaxNum32(x []float32) float32 {
	return softmaxNumAVX512(&x[0], len(x), &expConsts)
}

// fusedScores4 sets s[r·lds+j] for the 4 query rows q[r·ldq:][:hd] and
// every key j of the np panels in kt (np ≥ 3): groups of 3 panels, the
// last group shifted back to end at panel np (same bits for the panels it
// repeats).
func fusedScores4(q []float32, ldq int, kt []float32, hd, np int, scale float32, s []float32, lds int) {
	_ = q[3*ldq+hd-1]
	_ = kt[np*16*hd-1]
	_ = s[3*lds+np*16-1]
	fusedScores4AVX512(&q[0], ldq, &kt[0], hd, np/3, scale, &s[0], lds)
	if np%3 != 0 {
		p := np - 3
		fusedScores4AVX512(&q[0], ldq, &kt[p*16*hd], hd, 1, scale, &s[p*16], lds)
	}
}

// fusedPV4 sets out[r·ldo:][:hd] = (Σ_{j<n} s[r·lds+j]·v[j·ldv:][:hd]) ·
// inv[r] for the 4 rows r (hd ≤ 64).
func fusedPV4(s []float32, lds int, v []float32, ldv, n, hd int, inv *[4]float32, out []float32, ldo int) {
	_ = s[3*lds+n-1]
	_ = v[(n-1)*ldv+hd-1]
	_ = out[3*ldo+hd-1]
	var cols [4]uint16
	for c := range cols {
		if w := min(max(hd-16*c, 0), 16); w > 0 {
			cols[c] = uint16(1<<w - 1)
		}
	}
	fusedPV4AVX512(&s[0], lds, &v[0], ldv, n, &inv[0], &out[0], ldo, &cols)
}
