//go:build amd64

package train

import "golang.org/x/sys/cpu"

// hasAVX512 reports whether the AVX-512 kernels of optim_amd64.s can run;
// hasAVX2 the same for the AVX2 sum of squares. Read from the CPU once.
var (
	hasAVX512 = cpu.X86.HasAVX512F
	hasAVX2   = cpu.X86.HasAVX2
)

//go:noescape
func adamAVX512(w, gr, m, v *float32, n int, k *[9]float32, decay bool)

//go:noescape
func sumSquaresAVX2(gr *float32, n int) (s0, s1, s2, s3 float64)

//go:noescape
func scaleAVX512(gr *float32, n int, s float32)
