//go:build openblascgo && cgo

package graph

import (
	"fmt"
	"testing"
)

// BenchmarkSgemmSmallCgo is BenchmarkSgemmSmall through a cgo call linked
// against OpenBLAS (the binding before run-time loading).
func BenchmarkSgemmSmallCgo(b *testing.B) {
	BLAS() // the same library, set to one thread as the ops use it
	for _, n := range []int{8, 64} {
		x, y, z := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			for b.Loop() {
				cgoSgemm(n, n, n, x, y, z)
			}
		})
	}
}
