//go:build !((linux || darwin || freebsd) && (amd64 || arm64))

package graph

import (
	"runtime"

	"gonum.org/v1/gonum/blas"
)

// openBLAS: this platform has no run-time loader, so gonum's BLAS it is.
func openBLAS(string) *blasLib {
	return pureGo("no run-time library loading on " + runtime.GOOS + "/" + runtime.GOARCH)
}

// The calls below are never made: their entry points stay zero.

func (l *blasLib) callSgemm(blas.Transpose, blas.Transpose, int, int, int, float32, []float32, int, []float32, int, float32, []float32, int) {
}
func (l *blasLib) callDgemm(blas.Transpose, blas.Transpose, int, int, int, float64, []float64, int, []float64, int, float64, []float64, int) {
}
func (l *blasLib) callSgemv(blas.Transpose, int, int, float32, []float32, int, []float32, int, float32, []float32, int) {
}
func (l *blasLib) callDgemv(blas.Transpose, int, int, float64, []float64, int, []float64, int, float64, []float64, int) {
}
