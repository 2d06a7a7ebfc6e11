//go:build !amd64

package train

// Off amd64 the pure-Go kernels run.
const (
	hasAVX512 = false
	hasAVX2   = false
)

func adamAVX512(w, gr, m, v *float32, n int, k *[9]float32, decay bool) {
	panic("train: no AVX-512 kernels on this architecture")
}
func sumSquaresAVX2(gr *float32, n int) (s0, s1, s2, s3 float64) {
	panic("train: no AVX2 kernels on this architecture")
}
func scaleAVX512(gr *float32, n int, s float32) {
	panic("train: no AVX-512 kernels on this architecture")
}
