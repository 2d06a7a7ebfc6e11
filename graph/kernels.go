package graph

import (
	"runtime"
	"time"

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
			if beta == 0 { // BLAS semantics: C is not read
				clear(row)
				continue
			}
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	if w := gemmWorkers(m, n, k); w > 1 {
		gemmParallel(w, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemm1(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// parallelGemmWork is the multiply-add count above which gemm splits the
// product across cores (below it the handoff to a helper costs more).
const parallelGemmWork = 1 << 21

// parallelFewRowsWork is the size of b (n·k) above which gemm splits a
// product of at most fewRows rows (a decode step's Linear: a gemv per
// row, which streams the weight once). It does not depend on m, so a
// product of a few rows is cut at the same columns as the one-row product
// and each row keeps its one-row bits (TestFewRowProductsEqualOneRowProducts).
// With the pooled helpers (shares.go) a handoff is cheap enough to split
// the one-row 768×768 projections of a float32 git-base decode step: the
// step went from 15.8–16.1 to 13.0–13.2 ms (BenchmarkGitBaseDecodeStep/rows1,
// interleaved A/B, 2 rounds) when this came down from m·n·k ≥ 2²¹.
const parallelFewRowsWork = 1 << 19

// gemmWorkers is how many cores gemm and linearBiasFwd split an m×n×k
// product across (1: not split).
func gemmWorkers(m, n, k int) int {
	w := runtime.GOMAXPROCS(0)
	if m <= fewRows {
		if n*k < parallelFewRowsWork {
			return 1
		}
	} else if m*n*k < parallelGemmWork {
		return 1
	}
	return w
}

// gemmParallel splits C along its larger dimension into one block per
// worker (splitBlocks); each block is an independent single-threaded BLAS
// call.
func gemmParallel[T Float](w int, transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	splitBlocks(m, n, w, func(r0, r1, c0, c1 int) {
		aOff, bOff := r0*lda, c0 // rows of A, columns of B
		if transA {
			aOff = r0 // columns of the stored k×m matrix
		}
		if transB {
			bOff = c0 * ldb // rows of the stored n×k matrix
		}
		gemm1(transA, transB, r1-r0, c1-c0, k, alpha, a[aOff:], lda, b[bOff:], ldb, beta, c[r0*ldc+c0:], ldc)
	})
}

// splitAlign is the column multiple a few-row product's blocks start on.
const splitAlign = 16

// splitBlocks cuts an m×n result along its larger dimension into w blocks
// and runs block(r0, r1, c0, c1) for each, in parallel (runShares: the
// calling goroutine computes the first block, pool helpers the others).
//
// A product of at most fewRows rows is cut into columns (its larger
// dimension) on multiples of splitAlign: OpenBLAS's gemv takes a call's
// columns in groups from its first, so a block that starts on a group
// boundary gives each column the bits the unsplit call gives it (an
// unaligned cut moved a few columns by an ulp), and a decode step's
// logits do not depend on the number of cores
// (TestFewRowSplitProductsEqualUnsplit: one-row and few-row products,
// widths that divide evenly and ones that do not).
func splitBlocks(m, n, w int, block func(r0, r1, c0, c1 int)) {
	size := max(m, n)
	chunk := (size + w - 1) / w
	if m <= fewRows && chunk > splitAlign {
		chunk = (chunk + splitAlign - 1) &^ (splitAlign - 1)
	}
	one := func(lo, hi int) {
		if m >= n {
			block(lo, hi, 0, n)
		} else {
			block(0, m, lo, hi)
		}
	}
	runChunks(size, chunk, func(_, lo, hi int) { one(lo, hi) })
}

// gemm1 is one BLAS call. A single-row product (a decode step's Linear)
// is a matrix-vector product, for which gemv streams the weights about 2.5x
// faster than gemm does.
func gemm1[T Float](transA, transB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	// Callers pass slices that run to the end of bigger buffers (a head's
	// columns, a block of rows); cut them to exactly the matrices, because
	// gonum's gemv with beta 0 clears the whole output slice it is given.
	c = c[:(m-1)*ldc+n]
	if m == 1 {
		inc := 1 // a is one row of k values
		if transA {
			inc = lda // a is one column of a k×1 matrix
		}
		bt := blas.Trans // b is k×n: c = bᵀ·a
		rows, cols := k, n
		if transB { // b is n×k: c = b·a
			bt, rows, cols = blas.NoTrans, n, k
		}
		a = a[:(k-1)*inc+1]
		switch a := any(a).(type) {
		case []float32:
			s3.Sgemv(bt, rows, cols, float32(alpha), any(b).([]float32), ldb, a, inc, float32(beta), any(c).([]float32), 1)
		case []float64:
			d3.Dgemv(bt, rows, cols, float64(alpha), any(b).([]float64), ldb, a, inc, float64(beta), any(c).([]float64), 1)
		}
		return
	}
	if !transA && transB && m <= fewRows && n*k >= fewRowsWeight {
		gemmFewRows(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	switch a := any(a).(type) {
	case []float32:
		s3.Sgemm(tr(transA), tr(transB), m, n, k, float32(alpha), a, lda, any(b).([]float32), ldb, float32(beta), any(c).([]float32), ldc)
	case []float64:
		d3.Dgemm(tr(transA), tr(transB), m, n, k, float64(alpha), a, lda, any(b).([]float64), ldb, float64(beta), any(c).([]float64), ldc)
	}
}

// A product a·bᵀ of a few rows (a decode step over several sequences, a
// prefix's last-position rows: a Linear of m ≤ fewRows rows) with a large
// b (the weight, n×k) runs as one gemv per row over blocks of
// fewRowsBlock values of b: each block is read from memory once and stays
// in cache for the m gemvs, where gemm first packs all of b. Measured
// single-threaded on git-base's weights, min of 40 alternating runs (under
// load): 0.45–0.5× gemm's time at 2 rows, 0.65× (the LM head) to 0.96× at
// 8, but 1.06–1.38× at 16, hence the bound. Each row is then computed
// exactly as the same row alone (one gemv), so a sequence decoded beside
// others gets bit for bit the products it gets alone.
const (
	fewRows       = 8
	fewRowsWeight = 1 << 16 // n·k: below it b is small enough for gemm
	fewRowsBlock  = 1 << 17 // values of b per block (512 KiB of float32), well inside L2
)

// gemmFewRows is c = alpha·a·bᵀ + beta·c for row-major a (m×k) and b
// (n×k), as gemv calls over blocks of b's rows.
func gemmFewRows[T Float](m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	nb := max(16, fewRowsBlock/k/16*16) // rows of b per block, a multiple of 16
	for j0 := 0; j0 < n; j0 += nb {
		j1 := min(j0+nb, n)
		bb := b[j0*ldb : (j1-1)*ldb+k]
		for i := 0; i < m; i++ {
			x := a[i*lda : i*lda+k]
			y := c[i*ldc+j0 : i*ldc+j1]
			switch bb := any(bb).(type) {
			case []float32:
				s3.Sgemv(blas.NoTrans, j1-j0, k, float32(alpha), bb, ldb, any(x).([]float32), 1, float32(beta), any(y).([]float32), 1)
			case []float64:
				d3.Dgemv(blas.NoTrans, j1-j0, k, float64(alpha), bb, ldb, any(x).([]float64), 1, float64(beta), any(y).([]float64), 1)
			}
		}
	}
}

// rowProducts is the float32 product of the Linear ops built under
// Builder.BatchInvariant: a·bᵀ of any number of rows computed as one-row
// products are, row by row. The columns are cut across the cores into the
// blocks a one-row product gets (gemmWorkers and splitBlocks for one row:
// they depend on n and k only), and each row is one gemv per block of b
// (gemmFewRows), where a one-row product is one gemv per column block:
// the same sums (TestFewRowProductsEqualOneRowProducts), so each row gets
// the bits it gets alone (TestRowProductsDoNotDependOnTheRowCount). Up to
// fewRows rows over a large weight this is what gemm does anyway; above,
// gemm's sgemm is faster, and for a small weight (below fewRowsWeight) it
// takes sgemm from two rows on, whose sums run in another order.
type rowProducts struct{}

func (rowProducts) gemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m <= 1 || tA || !tB {
		gemm(tA, tB, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
		return
	}
	block := func(_, _, c0, c1 int) {
		gemmFewRows(m, c1-c0, k, 1, a, lda, b[c0*ldb:], ldb, beta, c[c0:], ldc)
	}
	if w := gemmWorkers(1, n, k); w > 1 {
		splitBlocks(1, n, w, block)
		return
	}
	block(0, m, 0, n)
}
func (rowProducts) String() string { return "rows" }

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
	chunk := (n + workers - 1) / workers
	runChunks(n, chunk, func(_, lo, hi int) { fn(lo, hi) })
}

// handOff is called by a goroutine that has just started a goroutine (a
// share no pool helper was free for, or a parked helper's wake-up) and is
// about to compute a share of the work itself. The runtime puts the
// goroutine started last in the caller's own run slot (runnext), which an
// idle core takes only after a deliberate back-off (runtime.runqgrab sleeps
// 3 µs before stealing it; with the retries before that, a trace of the
// vision tower on this project's 2-core VMs showed every helper starting
// about 90 µs after the caller). Yielding once moves the caller to the
// global queue, which an idle core checks before it steals: the helper runs
// on this core at once and the caller resumes on the other as soon as that
// core is awake (about 20 µs in the same trace), which makes the vision
// tower about 4% faster. Nothing else changes: the same blocks, the same
// bits.
func handOff() { runtime.Gosched() }

// colSum adds the rows of x (n×c) into out (c), overwriting out: column
// blocks in parallel, each column summed in row order.
func colSum[T Float](x []T, n, c int, out []T) {
	x32, is32 := any(x).([]float32)
	parallelFor(c, colBlock, func(lo, hi int) {
		o := out[lo:hi]
		if is32 && n > 0 { // AVX-512 over whole 16-column blocks, same bits
			lo += colSumBlock32(x32[lo:], n, c, any(o).([]float32))
			o = out[lo:hi]
		}
		clear(o)
		for i := 0; i < n; i++ {
			row := x[i*c+lo : i*c+hi]
			for j, v := range row {
				o[j] += v
			}
		}
	})
}

// SgemmGFLOPS measures this machine's float32 matrix-multiply speed through
// the same BLAS path the ops use (n×n×n products for at least minSeconds).
func SgemmGFLOPS(n int, minSeconds float64) float64 {
	a := make([]float32, n*n)
	b := make([]float32, n*n)
	c := make([]float32, n*n)
	for i := range a {
		a[i] = float32(i%7) * 0.1
		b[i] = float32(i%5) * 0.1
	}
	gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
	reps := 0
	start := time.Now()
	for time.Since(start).Seconds() < minSeconds {
		gemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n)
		reps++
	}
	return 2 * float64(n) * float64(n) * float64(n) * float64(reps) / time.Since(start).Seconds() / 1e9
}
