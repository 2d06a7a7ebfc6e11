//go:build !noopenblas

package graph

/*
#cgo LDFLAGS: -lopenblas
void openblas_set_num_threads(int);
*/
import "C"

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/netlib/blas/netlib"
)

// BLASName names the BLAS the custom ops call.
const BLASName = "OpenBLAS"

// OpenBLAS runs single-threaded: the ops split large products across the
// cores themselves (see gemm) and run attention heads in parallel. Letting
// OpenBLAS spawn its own threads as well makes them busy-wait against ours.
func init() { C.openblas_set_num_threads(1) }

func sgemmImpl() blas.Float32 { return netlib.Implementation{} }
func dgemmImpl() blas.Float64 { return netlib.Implementation{} }
