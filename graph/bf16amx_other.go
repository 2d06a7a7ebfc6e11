//go:build !amd64

package graph

func probeAMX() amxCaps { return amxCaps{reason: "not amd64"} }

func amxPanel(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int) {
	panic("graph: no AMX kernels on this architecture")
}

func amxPanels16(a *uint16, b *uint16, kb int, panels int, c *float32, ldc int, cinit *float32, cs int, rows int) {
	panic("graph: no AMX kernels on this architecture")
}

func cvtBF16AVX512(dst *uint16, src *float32, n int) {
	panic("graph: no AVX512_BF16 kernels on this architecture")
}

func packPairsBF16(dst *uint32, lo, hi *float32, panels, pstride int) {
	panic("graph: no AVX512_BF16 kernels on this architecture")
}

func packColPairsBF16(dst *uint16, lo, hi *float32, blocks, bstride int) {
	panic("graph: no AVX512_BF16 kernels on this architecture")
}

func packRowStepsBF16(dst *uint32, src *float32, steps int) {
	panic("graph: no AVX512_BF16 kernels on this architecture")
}

func cvtStepsBF16(dst *uint16, src *float32, steps int) {
	panic("graph: no AVX512_BF16 kernels on this architecture")
}

func dpPanelN(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int, groups int) {
	panic("graph: no AVX512_BF16 kernels on this architecture")
}

func packHalfPanelVNNI(dst *uint16, w *uint16, idx *int32, steps int) {
	panic("graph: no AVX-512 kernels on this architecture")
}

func packedGEMV1(wp *uint16, x *float32, steps int, y *float32) {
	panic("graph: no AVX-512 kernels on this architecture")
}

func packedGEMV4(wp *uint16, x *float32, ldx int, steps int, y *float32) {
	panic("graph: no AVX-512 kernels on this architecture")
}
