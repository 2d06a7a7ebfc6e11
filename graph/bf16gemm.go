package graph

import (
	"runtime"
)

// The many-row bf16 product on CPUs with AVX512_BF16: x is rounded to bf16
// (round to nearest even) and packed in blocks of 32 rows, bf16 pairs along
// k interleaved by row; VDPBF16PS multiplies each pair by a broadcast pair
// of weights read straight from the checkpoint-layout matrix and sums in
// float32 (dpbf16Tile: a 32×12 tile of x·Wᵀ). Twice the multiply-adds per
// instruction of a float32 FMA, and half the bytes of the weights; the cost
// is the rounding of the activations (relative ≤ 2⁻⁹, like the weights').

const (
	dpTileM = 32 // rows of x per tile (two zmm registers of 16 lanes)
	dpTileN = 12 // weight rows per tile
)

// useBF16DP reports whether linearBF16 takes the VDPBF16PS path for a
// product of n rows by a (out,in) matrix: many rows (not a decode step), an
// even in (bf16 pairs) and at least one full tile of weight rows.
func useBF16DP(n, in, out int) bool {
	return hasBF16DP && n > gemvRows && in%2 == 0 && out >= dpTileN
}

// linearBF16DP computes y = x·Wᵀ + b with x rounded to bf16 (useBF16DP
// holds): on the AMX tiles where they run (bf16amx.go; the weight packed
// once beside p, or into the scratch when p is nil), with VDPBF16PS
// otherwise.
func linearBF16DP(x []float32, w []uint16, p *Param, bias, y []float32, n, in, out int, s *bf16Scratch) {
	if amxOn() {
		var wp []uint16
		if p != nil {
			wp = p.amxWeights(in, out)
		} else {
			s.amx.b = resize(s.amx.b, amxWeightsLen(in, out))
			wp = s.amx.b
			packWeightsVNNIFast(wp, w, in, out, 0, ceil32(out)/32)
		}
		linearBF16AMX(x, wp, bias, y, n, in, out, &s.amx)
		return
	}
	linearBF16VDP(x, w, bias, y, n, in, out, s)
}

// linearBF16VDP computes y = x·Wᵀ + b with VDPBF16PS (useBF16DP holds).
func linearBF16VDP(x []float32, w []uint16, bias, y []float32, n, in, out int, s *bf16Scratch) {
	kp := in / 2
	blocks := (n + dpTileM - 1) / dpTileM
	if cap(s.xp) < blocks*kp*dpTileM {
		s.xp = make([]uint32, blocks*kp*dpTileM)
	}
	xp := s.xp[:blocks*kp*dpTileM]
	workers := runtime.GOMAXPROCS(0)
	if n*in*out < parallelGemmWork {
		workers = 1
	}
	tiles := (out + dpTileN - 1) / dpTileN
	for len(s.tiles) < workers {
		s.tiles = append(s.tiles, make([]float32, dpTileM*dpTileN))
	}
	if workers == 1 { // no closures: a small product allocates nothing
		for b := 0; b < blocks; b++ {
			packBF16Pairs(xp[b*kp*dpTileM:(b+1)*kp*dpTileM], x, b*dpTileM, n, in)
		}
		vdpTiles(xp, w, bias, y, n, in, out, blocks, s.tiles[0], 0, tiles)
		return
	}
	parallel(workers, blocks, func(lo, hi int) {
		for b := lo; b < hi; b++ {
			packBF16Pairs(xp[b*kp*dpTileM:(b+1)*kp*dpTileM], x, b*dpTileM, n, in)
		}
	})
	parallelIdx(workers, tiles, func(worker, lo, hi int) {
		vdpTiles(xp, w, bias, y, n, in, out, blocks, s.tiles[worker], lo, hi)
	})
}

// vdpTiles computes tiles [lo,hi) of 12 output columns of linearBF16VDP's
// product, xp packed by packBF16Pairs, in tile (a worker's 32×12 scratch).
func vdpTiles(xp []uint32, w []uint16, bias, y []float32, n, in, out, blocks int, tile []float32, lo, hi int) {
	kp := in / 2
	var bc [dpTileN]float32
	for t := lo; t < hi; t++ {
		n0 := min(t*dpTileN, out-dpTileN) // the last tile overlaps the one before
		skip := t*dpTileN - n0            // columns the tile before writes (another worker may hold it)
		if bias != nil {
			copy(bc[:], bias[n0:n0+dpTileN])
		}
		for b := 0; b < blocks; b++ {
			dpbf16Tile(&xp[b*kp*dpTileM], &w[n0*in], in, kp, &tile[0])
			storeTile(y[b*dpTileM*out+n0:], tile, bc, skip, min(dpTileM, n-b*dpTileM), out)
		}
	}
}

// storeTile writes rows of a dpbf16Tile output (column c, row r at
// tile[c*32+r]) plus the bias into y (row r at y[r*ldy:], columns c0..11).
func storeTile(y, tile []float32, bias [dpTileN]float32, c0, rows, ldy int) {
	for r := 0; r < rows; r++ {
		dst := y[r*ldy : r*ldy+dpTileN]
		for c := c0; c < dpTileN; c++ {
			dst[c] = tile[c*dpTileM+r] + bias[c]
		}
	}
}

// packBF16Pairs writes rows m0..m0+31 of x (n rows of in) into dst as
// [in/2][32] pairs of bf16 (low half: even k), zero past row n.
func packBF16Pairs(dst []uint32, x []float32, m0, n, in int) {
	kp := in / 2
	for r := 0; r < dpTileM; r++ {
		m := m0 + r
		if m >= n {
			for kk := 0; kk < kp; kk++ {
				dst[kk*dpTileM+r] = 0
			}
			continue
		}
		row := x[m*in : (m+1)*in]
		for kk := 0; kk < kp; kk++ {
			dst[kk*dpTileM+r] = uint32(BF16FromF32(row[2*kk])) | uint32(BF16FromF32(row[2*kk+1]))<<16
		}
	}
}

// parallel splits [0,n) into one contiguous range per worker.
func parallel(workers, n int, fn func(lo, hi int)) {
	parallelIdx(workers, n, func(_, lo, hi int) { fn(lo, hi) })
}

// parallelIdx splits [0,n) into one contiguous range per worker and runs
// them at once, the worker's index given; the first range runs on the
// calling goroutine.
func parallelIdx(workers, n int, fn func(worker, lo, hi int)) {
	workers = max(1, min(workers, n))
	if workers == 1 {
		fn(0, 0, n)
		return
	}
	chunk := (n + workers - 1) / workers
	runChunks(n, chunk, fn)
}
