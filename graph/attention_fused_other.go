//go:build !amd64

package graph

// The fused attention kernels exist only on amd64; fusedApplies is false
// elsewhere (hasAVX512 is), so these are never called.

func packKeyPanels(k []float32, ld, tk, hd int, kt []float32) {
	panic("graph: fused attention without AVX-512")
}

func softmaxNum32(x []float32) float32 { panic("graph: fused attention without AVX-512") }

func fusedScores4(q []float32, ldq int, kt []float32, hd, np int, scale float32, s []float32, lds int) {
	panic("graph: fused attention without AVX-512")
}

func fusedPV4(s []float32, lds int, v []float32, ldv, n, hd int, inv *[4]float32, out []float32, ldo int) {
	panic("graph: fused attention without AVX-512")
}
