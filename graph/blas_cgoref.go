//go:build openblascgo && cgo

package graph

// This file exists only for BenchmarkSgemmSmallCgo (go test -tags
// openblascgo -bench SgemmSmall ./graph, needs libopenblas-dev): the same
// product through a cgo call linked against OpenBLAS, to measure what the
// run-time (purego) call costs against the old link-time binding.

/*
#cgo LDFLAGS: -lopenblas
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
	const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
*/
import "C"

import "unsafe"

// cgoSgemm is a row-major, untransposed C = A·B through cgo (CblasRowMajor
// = 101, CblasNoTrans = 111).
func cgoSgemm(m, n, k int, a, b, c []float32) {
	C.cblas_sgemm(101, 111, 111, C.int(m), C.int(n), C.int(k), 1,
		(*C.float)(unsafe.Pointer(&a[0])), C.int(k), (*C.float)(unsafe.Pointer(&b[0])), C.int(n),
		0, (*C.float)(unsafe.Pointer(&c[0])), C.int(n))
}
