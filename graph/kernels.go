package graph

import (
	"runtime"
	"sync"

	"gonum.org/v1/gonum/blas"
)

// Float is the element type of the model's tensors: float32 for models,
// float64 for finite-difference gradient checks.
type Float interface{ ~float32 | ~float64 }

var (
	s3 = sgemmImpl()
	d3 = dgemmImpl()
)

func tr(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemm computes c = alpha*op(a)*op(b) + beta*c for row-major matrices, where
// op(a) is m×k and op(b) is k×n.
func gemm[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	switch a := any(a).(type) {
	case []float32:
		s3.Sgemm(tr(transA), tr(transB), m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		d3.Dgemm(tr(transA), tr(transB), m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// parallelFor splits [0,n) into contiguous chunks of at least minChunk items
// and runs fn on them concurrently, one goroutine per CPU at most.
func parallelFor(n, minChunk int, fn func(lo, hi int)) {
	workers := runtime.GOMAXPROCS(0)
	if minChunk < 1 {
		minChunk = 1
	}
	if w := n / minChunk; w < workers {
		workers = w
	}
	if workers <= 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := chunk; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			fn(lo, hi)
		}(lo, hi)
	}
	fn(0, min(chunk, n))
	wg.Wait()
}

// colSum adds the rows of x (n×c) into out (c), overwriting out.
func colSum[T Float](x []T, n, c int, out []T) {
	clear(out)
	for i := 0; i < n; i++ {
		row := x[i*c : i*c+c]
		for j, v := range row {
			out[j] += v
		}
	}
}
