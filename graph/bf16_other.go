//go:build !amd64

package graph

// hasAVX512 is false off amd64: the pure-Go kernels run.
const hasAVX512 = false

func sumF32AVX512(x *float32, n int) float32 { panic("graph: no AVX-512 kernels on this architecture") }
func dot1BF16AVX512(w *uint16, x *float32, k int) float32 {
	panic("graph: no AVX-512 kernels on this architecture")
}
func dot1x4BF16AVX512(w *uint16, x *float32, ldx int, k int, y *float32) {
	panic("graph: no AVX-512 kernels on this architecture")
}
func dot4x1BF16AVX512(w *uint16, ldw int, x *float32, k int, y *float32) {
	panic("graph: no AVX-512 kernels on this architecture")
}
func widenBF16AVX512(dst *float32, src *uint16, n int) {
	panic("graph: no AVX-512 kernels on this architecture")
}

const hasBF16DP = false

func dpbf16Tile(xp *uint32, w *uint16, ldw int, kp int, out *float32) {
	panic("graph: no AVX512_BF16 kernels on this architecture")
}
