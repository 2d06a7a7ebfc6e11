//go:build !noopenblas

package graph

// #cgo LDFLAGS: -lopenblas
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// BLASName names the BLAS the custom ops call.
const BLASName = "OpenBLAS"

func sgemmImpl() blas.Float32Level3 { return netlib.Implementation{} }
func dgemmImpl() blas.Float64Level3 { return netlib.Implementation{} }
