package graph

import (
	"runtime"
	"sync"
)

// GemmBF16 computes C = op(A)·op(B) + beta·C for row-major float32
// matrices, op(A) m×k and op(B) k×n (tA, tB: A is stored k×m, B n×k), like
// BLAS sgemm with alpha 1, but with both inputs rounded to bf16 (round to
// nearest even, BF16FromF32) and the exact products summed in float32: the
// result is what rounding A and B to bf16 and calling sgemm gives, up to
// the order of the float32 sums (and denormals, which the tile unit
// flushes). It is a drop-in, about 10x faster where the CPU has AMX, for
// products whose inputs tolerate bf16's 8-bit mantissa (mixed-precision
// training's forward and backward products).
//
// Kernels, chosen at run time: AMX tiles (bf16amx.go) where the CPU and OS
// have them; else VDPBF16PS (dpPanel, bf16gemm_amd64.s, on the tiles'
// packed operands) where the CPU has AVX512_BF16; else rounding into
// float32 scratch and sgemm. The inputs are
// packed into scratch that is pooled and reused (no allocation once warm);
// large products use every core (GOMAXPROCS). beta 0 does not read C (NaN
// in C is overwritten), as in BLAS. Like sgemm it panics when the
// dimensions and leading dimensions do not fit the slices (a programming
// error, as for the float32 BLAS calls).
//
// GemmBF16 takes its scratch from a sync.Pool, which may miss (and
// allocate the packed operands again) when the calling goroutine has moved
// to another P; a caller that must not allocate in a loop holds a
// GemmBF16Scratch and calls its method.
func GemmBF16(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	s := gemmBF16Pool.Get().(*GemmBF16Scratch)
	s.GemmBF16(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
	gemmBF16Pool.Put(s)
}

// GemmBF16 is the package's GemmBF16 packing into s, which keeps its
// memory for the next call (one call at a time per GemmBF16Scratch).
func (s *GemmBF16Scratch) GemmBF16(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	s.gemm(gemmBF16Best(n), tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}

// gemmBF16Kernel names GemmBF16's three implementations.
type gemmBF16Kernel int

const (
	gemmBF16Ref gemmBF16Kernel = iota // round into float32, sgemm
	gemmBF16DP                        // VDPBF16PS
	gemmBF16AMX                       // AMX tiles
)

// gemmBF16Best is the fastest kernel that runs for an n-column product.
func gemmBF16Best(n int) gemmBF16Kernel {
	switch {
	case amxOn():
		return gemmBF16AMX
	case hasBF16DP:
		return gemmBF16DP
	}
	return gemmBF16Ref
}

// GemmBF16Scratch is the memory GemmBF16 packs its operands into (the zero
// value is ready), grown to the largest product it has served.
type GemmBF16Scratch struct {
	amx  amxScratch
	f, g []float32 // the reference's rounded operands
}

var gemmBF16Pool = sync.Pool{New: func() any { return new(GemmBF16Scratch) }}

// gemm is GemmBF16 on the kernel kern (the reference where kern does not
// run here).
func (s *GemmBF16Scratch) gemm(kern gemmBF16Kernel, tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	checkGemm(tr(tA), tr(tB), m, n, k, len(a), lda, len(b), ldb, len(c), ldc)
	if kern == gemmBF16AMX && !amxOn() || kern == gemmBF16DP && !hasBF16DP {
		kern = gemmBF16Ref
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		scaleRows(c, m, n, ldc, beta)
		return
	}
	workers := runtime.GOMAXPROCS(0)
	if m*n*k < parallelGemmWork {
		workers = 1
	}
	switch kern {
	case gemmBF16AMX, gemmBF16DP:
		// Both pack op(A) and op(B) for the tiles; the DP kernel reads
		// the same layout (dpPanel).
		kp, mp := ceil32(k), ceil32(m)
		s.amx.a = resize(s.amx.a, mp*kp)
		for w := range workers { // each worker's packing row, before they start
			s.amx.tmpFor(w, 2*kp+mp)
		}
		panels := ceil32(n) / 32
		s.amx.b = resize(s.amx.b, panels*kp/32*amxStep)
		if workers == 1 { // no closures: a small product allocates nothing
			s.packA(tA, a, lda, m, k, kp, 0, 0, mp/amxBlock)
			packBVNNI(s.amx.b, s.amx.tmp[0], b, ldb, tB, k, n, 0, panels)
		} else {
			parallelIdx(workers, mp/amxBlock, func(w, lo, hi int) { s.packA(tA, a, lda, m, k, kp, w, lo, hi) })
			parallelIdx(workers, panels, func(w, lo, hi int) { packBVNNI(s.amx.b, s.amx.tmp[w], b, ldb, tB, k, n, lo, hi) })
		}
		if beta != 0 && beta != 1 {
			scaleRows(c, m, n, ldc, beta)
		}
		amxProduct(&s.amx, s.amx.a, m, kp, s.amx.b, n, c, ldc, nil, beta != 0, workers, kern == gemmBF16DP)
	default:
		s.f = resize(s.f, m*k)
		for i := 0; i < m; i++ {
			for kk := 0; kk < k; kk++ {
				s.f[i*k+kk] = roundBF16(opAt(a, lda, tA, i, kk))
			}
		}
		s.g = resize(s.g, k*n)
		for kk := 0; kk < k; kk++ {
			for j := 0; j < n; j++ {
				s.g[kk*n+j] = roundBF16(opAt(b, ldb, tB, kk, j))
			}
		}
		gemm(false, false, m, n, k, 1, s.f, k, s.g, n, beta, c, ldc)
	}
}

// packA rounds and packs row blocks [lo,hi) of op(A) into s.amx.a with
// worker's packing row.
func (s *GemmBF16Scratch) packA(tA bool, a []float32, lda, m, k, kp, worker, lo, hi int) {
	if tA {
		packColsBF16(s.amx.a, s.amx.tmp[worker], a, lda, m, k, kp, lo*amxBlock, hi*amxBlock)
		return
	}
	packRowsBF16(s.amx.a, s.amx.tmp[worker], a, lda, m, k, kp, lo*amxBlock, hi*amxBlock)
}

// opAt is element (i, j) of op(x) for x row-major with leading dimension
// ld (transposed when t).
func opAt(x []float32, ld int, t bool, i, j int) float32 {
	if t {
		return x[j*ld+i]
	}
	return x[i*ld+j]
}

// roundBF16 is v rounded to bf16, as a float32.
func roundBF16(v float32) float32 { return F32FromBF16(BF16FromF32(v)) }

// scaleRows multiplies the m×n matrix c (ldc apart) by beta; beta 0 clears
// it without reading it (BLAS semantics).
func scaleRows(c []float32, m, n, ldc int, beta float32) {
	for i := 0; i < m; i++ {
		row := c[i*ldc : i*ldc+n]
		if beta == 0 {
			clear(row)
			continue
		}
		for j := range row {
			row[j] *= beta
		}
	}
}
