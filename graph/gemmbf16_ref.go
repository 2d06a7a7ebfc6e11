package graph

import (
	"math"
	"sync"
)

// GemmBF16 is the matrix product of mixed-precision training (a graph built
// WithPrecision(BF16)): c = op(a)·op(b) + beta·c for row-major matrices,
// op(a) m×k and op(b) k×n, where a and b are first rounded to bfloat16
// (BF16FromF32: round to nearest, ties to even), the products of the
// rounded values are exact (8-bit by 8-bit significands fit float32) and
// they are summed in float32.
//
// This is the reference implementation: it rounds both operands into
// packed scratch matrices and calls the float32 sgemm (gemm: BLAS, split
// across cores for large products) on them, which is the same arithmetic up
// to the order of the float32 sums. It is as slow as sgemm plus the
// rounding; a kernel with bf16 inputs (AMX, VDPBF16PS) replaces it with the
// same signature and semantics.
func GemmBF16(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ar, ac := m, k
	if tA {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB {
		br, bc = n, k
	}
	sa, sb := bf16RefScratch.Get().(*[]float32), bf16RefScratch.Get().(*[]float32)
	ra := roundPacked(sa, a, ar, ac, lda)
	rb := roundPacked(sb, b, br, bc, ldb)
	gemm(tA, tB, m, n, k, 1, ra, ac, rb, bc, beta, c, ldc)
	bf16RefScratch.Put(sa)
	bf16RefScratch.Put(sb)
}

// bf16RefScratch recycles the rounded copies of GemmBF16's operands, so that
// a training step's products allocate nothing once the buffers have grown
// (products run concurrently, in the attention op, so each call takes its
// own).
var bf16RefScratch = sync.Pool{New: func() any { return new([]float32) }}

// roundPacked writes the rows×cols matrix src (leading dimension ld),
// rounded to bf16 and widened back, into *buf as a packed matrix (leading
// dimension cols), growing *buf when it is too small.
func roundPacked(buf *[]float32, src []float32, rows, cols, ld int) []float32 {
	n := rows * cols
	if cap(*buf) < n {
		*buf = make([]float32, n)
	}
	dst := (*buf)[:n]
	for r := 0; r < rows; r++ {
		roundRow(dst[r*cols:(r+1)*cols], src[r*ld:r*ld+cols])
	}
	return dst
}

// roundRow writes F32FromBF16(BF16FromF32(v)) for each v of s into d, on
// the bits (about 5x faster than the two calls).
func roundRow(d, s []float32) {
	d = d[:len(s)]
	for j, v := range s {
		b := math.Float32bits(v)
		if b&0x7fffffff > 0x7f800000 { // NaN: quiet, as BF16FromF32
			d[j] = math.Float32frombits(b&^0xffff | 0x400000)
			continue
		}
		d[j] = math.Float32frombits((b + 0x7fff + (b>>16)&1) &^ 0xffff)
	}
}
