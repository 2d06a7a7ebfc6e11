//go:build noopenblas

package graph

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// BLASName names the BLAS the custom ops call.
const BLASName = "gonum (pure Go)"

func sgemmImpl() blas.Float32 { return gonum.Implementation{} }
func dgemmImpl() blas.Float64 { return gonum.Implementation{} }
