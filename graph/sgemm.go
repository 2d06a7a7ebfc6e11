package graph

import (
	"math"
	"runtime"
	"sync"
)

// The float32 many-row Linear (x·Wᵀ + b, x of more than fewRows rows: the
// vision tower, a prefix) without packing the weight. OpenBLAS packs the
// whole weight into its panel layout on every call, which at the vision
// tower's 197 rows is about an eighth of the tower's time (perf); here the
// activations are packed instead (32-row blocks, k-major: 197 rows against
// a weight of 768 to 3072 columns, 4 to 16 times fewer values), and
// sgemmTile broadcasts each weight from the checkpoint-layout matrix
// against two registers of 16 rows.
//
// The bits are OpenBLAS's: its SkylakeX sgemm sums each element's products
// in k order with one FMA each, within blocks of k that sgemmKBlocks
// reproduces, starting each block from zero and adding it to C (here the
// bias) once; sgemmTile does the same. Because that depends on OpenBLAS's
// build (its kernels and blocking), the path is taken only where a check
// against the loaded BLAS, on a product of the tower's kind with blocks of
// every kind, gives the same bits (ownSgemmOK).

const (
	sgTileM = 32 // rows of x per tile (two zmm registers)
	sgTileN = 12 // weight rows (output columns) per tile
)

// openblasQ is the k block of OpenBLAS's SkylakeX sgemm (SGEMM_DEFAULT_Q)
// and openblasUnroll its SGEMM_UNROLL_M, which rounds a split tail.
const (
	openblasQ      = 448
	openblasUnroll = 16
)

// sgemmKBlocks calls fn for each block of k in the order OpenBLAS's level-3
// driver takes them: blocks of openblasQ while at least two remain, and a
// remainder between one and two blocks split in two halves (the first
// rounded up to openblasUnroll).
func sgemmKBlocks(k int, fn func(k0, k1 int)) {
	for k0 := 0; k0 < k; {
		l := k - k0
		if l >= 2*openblasQ {
			l = openblasQ
		} else if l > openblasQ {
			l = (l/2 + openblasUnroll - 1) / openblasUnroll * openblasUnroll
		}
		fn(k0, k0+l)
		k0 += l
	}
}

// sgemmScratch holds the packed activations and output tiles of a graph's
// float32 Linear ops (one product at a time: a graph runs its ops in turn;
// x's size, rounded up to 32 rows, and 0.5 MiB of tiles a core at 1024
// rows), and the product in progress, which its two share functions
// (made once) read: a product in a warm scratch allocates nothing.
type sgemmScratch struct {
	xp []float32 // x packed: [blocks][in][32]
	ct []float32 // output tiles, per core: [groupTiles][blocks][16][32] (columns 12-15 unused: transpose16 reads 16)

	x, w, b, y           []float32
	n, in, out           int
	blocks, tiles, parts int
	packFn, tilesFn      func(int)
}

// tileFloats is the room one output tile takes in sgemmScratch.ct.
const tileFloats = 16 * sgTileM

// ownSgemmMaxRows is the row count up to which linearOwnSgemm is faster
// than sgemm (BenchmarkLinearOwnSgemm): at 1736 rows (a training batch of
// 8) packing the weight costs sgemm little and the two are even.
const ownSgemmMaxRows = 1024

// useOwnSgemm reports whether a float32 Linear op takes linearOwnSgemm for n rows
// of in → out.
func useOwnSgemm(n, in, out int) bool {
	return hasSgemmTile && hasAVX512 && n > fewRows && n <= ownSgemmMaxRows && out >= sgTileN && n*in*out >= parallelGemmWork && ownSgemmOK()
}

// linearOwnSgemm computes y = x·Wᵀ + b (b may be nil) for x n×in, W out×in:
// x packed by blocks of rows, then the tiles of 12 columns, one contiguous
// range of them per core.
func linearOwnSgemm(x, w, b, y []float32, n, in, out int, s *sgemmScratch) {
	s.blocks = (n + sgTileM - 1) / sgTileM
	s.tiles = (out + sgTileN - 1) / sgTileN
	s.x, s.w, s.b, s.y, s.n, s.in, s.out = x, w, b, y, n, in, out
	if s.packFn == nil {
		s.packFn, s.tilesFn = s.packShare, s.tilesShare
	}
	workers := runtime.GOMAXPROCS(0)
	s.xp = resize(s.xp, s.blocks*in*sgTileM)
	s.ct = resize(s.ct, workers*groupTiles*s.blocks*tileFloats)
	s.parts = max(1, min(workers, s.blocks))
	runShares(s.parts, s.packFn)
	s.parts = max(1, min(workers, s.tiles))
	runShares(s.parts, s.tilesFn)
	s.x, s.w, s.b, s.y = nil, nil, nil, nil // keep no caller's data
}

// partRange is the range [lo, hi) of n items part i of parts takes.
func partRange(i, parts, n int) (lo, hi int) {
	chunk := (n + parts - 1) / parts
	return min(i*chunk, n), min((i+1)*chunk, n)
}

// packShare packs part i of the row blocks.
func (s *sgemmScratch) packShare(i int) {
	lo, hi := partRange(i, s.parts, s.blocks)
	for bl := lo; bl < hi; bl++ {
		packRows(s.xp[bl*s.in*sgTileM:], s.x, bl*sgTileM, s.n, s.in, blockRows(s.n, bl))
	}
}

// groupTiles is how many column tiles a core computes together: their
// weights for one k block (8×12×448 floats, 168 KiB) and the packed
// activations' block (401 KiB at 197 rows) stay in L2 while the group's
// tiles pass, and its output tiles (8 × 14 KiB at 197 rows) are all the
// scratch a core holds.
const groupTiles = 8

// tilesShare computes part i of the column tiles, a group at a time: every
// k block in order over each of the group's tiles and row blocks, then the
// group's tiles transposed into y.
func (s *sgemmScratch) tilesShare(i int) {
	lo, hi := partRange(i, s.parts, s.tiles)
	xp, w, b, n, in, out, blocks := s.xp, s.w, s.b, s.n, s.in, s.out, s.blocks
	ct := s.ct[i*groupTiles*blocks*tileFloats:][:groupTiles*blocks*tileFloats]
	for g0 := lo; g0 < hi; g0 += groupTiles {
		g1 := min(g0+groupTiles, hi)
		first := true
		sgemmKBlocks(in, func(k0, k1 int) {
			mode := 2 // add to the tile
			if first && b == nil {
				mode = 1 // store
			} else if first {
				mode = 0 // add to the bias
			}
			first = false
			for t := g0; t < g1; t++ {
				n0 := min(t*sgTileN, out-sgTileN) // the last tile overlaps the one before
				var bias *float32
				if b != nil {
					bias = &b[n0]
				}
				for bl := 0; bl < blocks; bl++ {
					tile := &ct[((t-g0)*blocks+bl)*tileFloats]
					if blockRows(n, bl) == sgTileM {
						sgemmTile(&xp[bl*in*sgTileM+k0*sgTileM], &w[n0*in+k0], in, k1-k0, tile, bias, mode)
					} else {
						sgemmTile16(&xp[bl*in*sgTileM+k0*16], &w[n0*in+k0], in, k1-k0, tile, bias, mode)
					}
				}
			}
		})
		for t := g0; t < g1; t++ {
			n0 := min(t*sgTileN, out-sgTileN)
			mask := uint16(1<<sgTileN-1) &^ uint16(1<<(t*sgTileN-n0)-1) // not the columns the tile before writes
			for bl := 0; bl < blocks; bl++ {
				bm := blockRows(n, bl)
				for h := 0; h < bm; h += 16 {
					r0 := bl*sgTileM + h
					if r0 >= n {
						break
					}
					transpose16(&ct[((t-g0)*blocks+bl)*tileFloats+h], bm, &s.y[r0*out+n0], out, min(16, n-r0), mask)
				}
			}
		}
	}
}

// blockRows is the row count block bl of an n-row product is packed and
// computed with: 32, or 16 for a last block of at most 16 rows.
func blockRows(n, bl int) int {
	if n-bl*sgTileM <= 16 {
		return 16
	}
	return sgTileM
}

// packRows writes rows m0..m0+bm-1 of x (n rows of in) into dst as
// [in][bm] float32, zero past row n: 16×16 transposes where 16 rows and 16
// columns are there.
func packRows(dst, x []float32, m0, n, in, bm int) {
	for h := 0; h < bm; h += 16 {
		r0 := m0 + h
		k0 := 0
		if r0+16 <= n {
			for ; k0+16 <= in; k0 += 16 {
				transpose16(&x[r0*in+k0], in, &dst[k0*bm+h], bm, 16, 0xFFFF)
			}
		}
		for r := h; r < h+16; r++ {
			m := m0 + r
			if m >= n {
				for k := k0; k < in; k++ {
					dst[k*bm+r] = 0
				}
				continue
			}
			for k := k0; k < in; k++ {
				dst[k*bm+r] = x[m*in+k]
			}
		}
	}
}

// OwnLinearKernel reports whether float32 Linear products of more than 8
// and at most 1024 rows run on this package's kernel (linearOwnSgemm, with
// the loaded OpenBLAS's bits) instead of the BLAS's sgemm.
func OwnLinearKernel() bool { return hasSgemmTile && hasAVX512 && ownSgemmOK() }

// ownSgemmOK reports whether linearOwnSgemm gives the loaded BLAS's bits:
// checked once per process on two products that take every kind of k
// block (whole blocks, a remainder split evenly and one split unevenly),
// both tile heights, an overlapping last tile, a single block, with and without a bias,
// against the BLAS's own (single-threaded) sgemm. Another OpenBLAS build
// (another kernel, other blocks), another CORETYPE or the pure-Go BLAS
// fails it and keeps sgemm.
var ownSgemmOK = sync.OnceValue(func() bool {
	for _, c := range []struct {
		n, in, out int
		bias       bool
	}{{45, 3072, 40, true}, {53, 1000, 45, false}, {20, 300, 400, true}} {
		if !ownSgemmMatches(c.n, c.in, c.out, c.bias) {
			return false
		}
	}
	return true
})

// ownSgemmMatches compares linearOwnSgemm with gemm1 on one product of
// pseudo-random values.
func ownSgemmMatches(n, in, out int, withBias bool) bool {
	seed := uint32(1)
	next := func() float32 { // an LCG's top bits, centred: values in [-1, 1)
		seed = seed*1664525 + 1013904223
		return float32(int32(seed>>8)-1<<23) / (1 << 23)
	}
	x, w := make([]float32, n*in), make([]float32, out*in)
	for i := range x {
		x[i] = next()
	}
	for i := range w {
		w[i] = next()
	}
	var b []float32
	want := make([]float32, n*out)
	beta := float32(0)
	if withBias {
		b = make([]float32, out)
		for i := range b {
			b[i] = next()
		}
		for i := 0; i < n; i++ {
			copy(want[i*out:(i+1)*out], b)
		}
		beta = 1
	}
	gemm1(false, true, n, out, in, 1, x, in, w, in, beta, want, out)
	got := make([]float32, n*out)
	linearOwnSgemm(x, w, b, got, n, in, out, &sgemmScratch{})
	for i := range got {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			return false
		}
	}
	return true
}
