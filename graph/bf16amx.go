package graph

import (
	"cmp"
	"runtime"
	"sync"
	"unsafe"
)

// The AMX bf16 matrix product (Intel Advanced Matrix Extensions, Sapphire
// Rapids and later), for the many-row bf16 products (LinearBF16 with bf16
// activations: the vision tower, a prefix) and for GemmBF16.
//
// What: C = init + A·B with A and B rounded to bf16 (round to nearest even)
// and every product summed in float32, on the tile unit: TDPBF16PS
// multiplies a 16×32 bf16 tile of A by a 32×16 bf16 tile of B into a 16×16
// float32 tile, 16 times the multiply-adds of one VDPBF16PS (about 2.9
// TFLOP/s per core here, against 230 GFLOP/s for float32 sgemm on the whole
// machine). Why: the vision tower is compute-bound, and VDPBF16PS was
// slower than sgemm on this Intel CPU.
//
// Layout. The micro-kernel (amxPanel, bf16amx_amd64.s) computes one panel
// of 32 columns of C, 32 rows at a time: four float32 accumulator tiles
// tmm0-3 (a 32×32 block of C), two A tiles tmm4-5 (rows 0-15 and 16-31 of a
// 32-wide step of k, loaded straight from row-major bf16 with the row
// stride) and two B tiles tmm6-7 (columns 0-15 and 16-31), over k in steps
// of 32. A is rounded and packed row-major with k padded with zeros to a
// multiple of 32 and rows padded to a multiple of 32. B is packed in the
// tiles' VNNI layout: per panel of 32 columns, per step q of 32 k, two
// tiles of [16 k-pairs p][16 columns c][2]: element (k, j) of B at
// q·1024 + t·512 + p·32 + c·2 + e for k = 32q+2p+e, j = 32·panel+16t+c,
// zeros past k and n. A LinearBF16 weight (out,in) is packed once and kept
// beside its Param (Param.amxWeights); GemmBF16 packs B per call into
// reused scratch. Edges: rows past the last full block of 32 and a last
// panel narrower than 32 go through a 32-wide scratch and are copied out.
// C starts from zero, from a bias row (LinearBF16: the tile loads the same
// 16 floats for every row, stride 0) or from C itself (GemmBF16, beta ≠ 0).
// A product of at most 16 rows (a decode step) takes amxPanels16 instead:
// one A tile and two accumulators configured with m rows, B double-buffered
// across tmm6-7 / tmm2-3 and prefetched ahead, all of k and all of a
// worker's panels in one call; its sums per row are amxPanel's in the same
// order, so a row's result still does not depend on the row count.
//
// The tile state (LDTILECFG … TILERELEASE) lives inside one assembly call:
// Go never preempts assembly asynchronously, so the goroutine cannot move to
// another thread, whose tile state is not ours, in the middle. Linux must
// grant the process the tile data first (arch_prctl ARCH_REQ_XCOMP_PERM,
// once, in amxProbe); if anything about AMX is missing, the products take
// the VDPBF16PS GEMM or float32 sgemm instead (BF16Kernels says which and
// why).
//
// Numerics: the tile unit treats bf16 denormals as zero and flushes
// float32 denormal results, and the activations' conversion (VCVTNE2PS2BF16)
// flushes float32 denormals; otherwise the result is the float32 sum of
// exact products, as on the other paths (in another order).

// EnvAMX names the environment variable that turns the AMX kernels off
// ("off"), e.g. to compare them with the VDPBF16PS path in one run. It is
// read once, by the probe.
const EnvAMX = "GITCAP_AMX"

// amxCaps is the probe's result: whether AMX runs, and if not, why.
type amxCaps struct {
	ok     bool
	reason string
}

// amxProbe checks the CPU, the OS and EnvAMX and asks for the tile state,
// once per process.
var amxProbe = sync.OnceValue(probeAMX)

// amxOn reports whether the AMX kernels run in this process.
func amxOn() bool { return amxProbe().ok }

const (
	amxBlock = 32   // rows and columns of a C block, and the k step
	amxStep  = 1024 // bf16 values of one k step of a B panel (2 tiles of 16×16 pairs)
)

func ceil32(n int) int { return (n + amxBlock - 1) &^ (amxBlock - 1) }

// resize returns s with length n, reallocated only when it is too small.
func resize[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// amxScratch is the memory one AMX product packs into, reused call to call.
type amxScratch struct {
	a    []uint16    // A rounded to bf16, row-major, ceil32(m) × ceil32(k)
	b    []uint16    // B in VNNI panels (GemmBF16; LinearBF16 uses its Param's copy)
	bias []float32   // the bias padded to whole panels
	edge [][]float32 // per worker: a panel's partial rows or columns (32 wide)
	tmp  [][]uint16  // per worker: rows being rounded while packing
	// passBytes overrides amxABytes (tests: passes of one row block).
	passBytes int
	// kPass overrides amxKPass (tests: one pass over all of k).
	kPass int
	// no16 sends products of at most 16 rows through amxPanel too (tests:
	// amxPanels16 against it).
	no16 bool
}

// tmpFor returns worker's packing row of at least n values.
func (s *amxScratch) tmpFor(worker, n int) []uint16 {
	for len(s.tmp) <= worker {
		s.tmp = append(s.tmp, nil)
	}
	s.tmp[worker] = resize(s.tmp[worker], n)
	return s.tmp[worker]
}

// bf16Row rounds src into dst[:len(src)] (VCVTNE2PS2BF16 where it runs).
func bf16Row(dst []uint16, src []float32) {
	j := 0
	if hasBF16DP && len(src) >= 32 {
		j = len(src) &^ 31
		cvtBF16AVX512(&dst[0], &src[0], j)
	}
	for ; j < len(src); j++ {
		dst[j] = BF16FromF32(src[j])
	}
}

// amxAOffset is the index of A's element (r, kk) packed for amxPanel (kb
// steps of 32 k per row): per block of 32 rows, per step, two 16-row tiles
// of [16 rows][32 k], so that a tile is 1 KB in a row (its rows 64 bytes
// apart: no cache-set conflicts, whatever k is).
func amxAOffset(r, kk, kb int) int {
	return r/32*kb*amxStep + kk/32*amxStep + r%32/16*512 + r%16*32 + kk%32
}

// packRowsBF16 rounds rows [r0,r1) (whole blocks of 32) of x (rows rows of
// k, ldx apart) into dst, packed for amxPanel with k padded to kp (zeros
// past k and past row rows); tmp holds kp values.
func packRowsBF16(dst, tmp []uint16, x []float32, ldx, rows, k, kp, r0, r1 int) {
	kb := kp / 32
	steps := 0 // whole steps of 32 k rounded straight into dst
	if hasBF16DP {
		steps = k / 32
	}
	tmp = tmp[:kp]
	for r := r0; r < r1; r++ {
		q0 := 0
		if r >= rows {
			clear(tmp)
		} else {
			if steps > 0 {
				cvtStepsBF16(&dst[amxAOffset(r, 0, kb)], &x[r*ldx], steps)
				q0 = steps
			}
			if q0 == kb {
				continue
			}
			bf16Row(tmp[q0*32:], x[r*ldx+q0*32:r*ldx+k])
			clear(tmp[k:])
		}
		for q := q0; q < kb; q++ {
			o := amxAOffset(r, q*32, kb)
			copy(dst[o:o+32], tmp[q*32:q*32+32])
		}
	}
}

// packColsBF16 is packRowsBF16 for the transpose: row r of op(A) is column
// r of a (k rows of cols, lda apart); tmp holds r1-r0 values. Pairs of
// rows of a (two consecutive k) go 32 columns at a time through
// packColPairsBF16 (VCVTNE2PS2BF16 and a scatter); the rest of the
// columns, and a last odd k, are rounded a row at a time (bf16Row) and
// scattered 16 rows of op(A) (one tile row apart, 32 values) at a time.
func packColsBF16(dst, tmp []uint16, a []float32, lda, cols, k, kp, r0, r1 int) {
	kb := kp / 32
	clear(dst[r0/32*kb*amxStep : r1/32*kb*amxStep])
	w := max(0, min(r1, cols)-r0)
	if w == 0 {
		return
	}
	vb := 0 // whole blocks of 32 columns done in pairs of k
	if hasBF16DP {
		vb = w / 32
	}
	for kk := 0; kk < k; kk++ {
		if vb > 0 && kk%2 == 0 && kk+1 < k {
			packColPairsBF16(&dst[amxAOffset(r0, kk, kb)], &a[kk*lda+r0], &a[(kk+1)*lda+r0], vb, kb*amxStep*2)
			scatterColsBF16(dst, tmp, a, lda, kk, kb, r0, vb*32, w)
			scatterColsBF16(dst, tmp, a, lda, kk+1, kb, r0, vb*32, w)
			kk++
			continue
		}
		scatterColsBF16(dst, tmp, a, lda, kk, kb, r0, 0, w)
	}
}

// scatterColsBF16 rounds columns [r0+from, r0+w) of row kk of a (from a
// multiple of 16) into tmp and stores them packed as rows of op(A).
func scatterColsBF16(dst, tmp []uint16, a []float32, lda, kk, kb, r0, from, w int) {
	if from >= w {
		return
	}
	t := tmp[from:w]
	bf16Row(t, a[kk*lda+r0+from:kk*lda+r0+w])
	for i := 0; i < len(t); i += 16 {
		o := amxAOffset(r0+from+i, kk, kb)
		g := t[i:min(i+16, len(t))]
		d := dst[o : o+(len(g)-1)*32+1]
		for j, v := range g {
			d[j*32] = v
		}
	}
}

// vnniOffset is the index of B's element (kk, jj within its panel) in the
// panel: see the layout above.
func vnniOffset(kk, jj int) int {
	return kk/32*amxStep + jj/16*512 + kk%32/2*32 + jj%16*2 + kk%2
}

// packWeightsVNNI packs panels [j0,j1) of Wᵀ, for W (out,in) bf16, into dst
// (ceil32(out)/32 panels of ceil32(in)/32 steps).
func packWeightsVNNI(dst, w []uint16, in, out, j0, j1 int) {
	pl := ceil32(in) / 32 * amxStep
	for j := j0; j < j1; j++ {
		p := dst[j*pl : (j+1)*pl]
		clear(p)
		for c := 0; c < amxBlock && j*amxBlock+c < out; c++ {
			row := w[(j*amxBlock+c)*in : (j*amxBlock+c+1)*in]
			for kk, v := range row {
				p[vnniOffset(kk, c)] = v
			}
		}
	}
}

// packWeightsVNNIFast is packWeightsVNNI for in and out multiples of 32 on
// AVX-512: each k pair of 16 rows is one gather (packHalfPanelVNNI), 0.4–0.5
// ms for a 768×3072 weight on one Zen 5 core where the scalar loop takes
// about 5 ms (BenchmarkLinearBF16Kernels, fastpack and pack+). It
// writes every element of panels [j0,j1), so dst needs no clearing.
func packWeightsVNNIFast(dst, w []uint16, in, out, j0, j1 int) {
	if !hasAVX512 || in%32 != 0 || out%32 != 0 {
		packWeightsVNNI(dst, w, in, out, j0, j1)
		return
	}
	var idx [16]int32
	for c := range idx {
		idx[c] = int32(2 * c * in)
	}
	pl := in / 32 * amxStep
	for j := j0; j < j1; j++ {
		for h := 0; h < 2; h++ {
			packHalfPanelVNNI(&dst[j*pl+h*512], &w[(j*amxBlock+h*16)*in], &idx[0], in/32)
		}
	}
}

// unpackWeightsVNNI is packWeightsVNNI's inverse: it reads W (out,in) back
// from its packed panels src into dst.
func unpackWeightsVNNI(dst, src []uint16, in, out int) {
	pl := ceil32(in) / 32 * amxStep
	for r := 0; r < out; r++ {
		p := src[r/amxBlock*pl:]
		row := dst[r*in : (r+1)*in]
		for kk := range row {
			row[kk] = p[vnniOffset(kk, r%amxBlock)]
		}
	}
}

// packBVNNI rounds and packs panels [j0,j1) of op(B) (k×n; b is k×n, or
// n×k when tB) into dst, a k pair (two bf16, one uint32) at a time; tmp
// holds 2·ceil32(k) values.
func packBVNNI(dst, tmp []uint16, b []float32, ldb int, tB bool, k, n, j0, j1 int) {
	kp := ceil32(k)
	pl := kp / 32 * amxStep
	clear(dst[j0*pl : j1*pl])
	if tB {
		for j := j0; j < j1; j++ {
			p32 := u32s(dst[j*pl : (j+1)*pl])
			cols := min(amxBlock, n-j*amxBlock)
			// column c of op(B) is row j·32+c of b: whole steps of 32 k
			// with VCVTNE2PS2BF16 and a scatter (packRowStepsBF16), the
			// rest rounded into tmp and stored a pair at a time.
			steps := 0
			if hasBF16DP {
				steps = k / 32
			}
			for c := 0; c < cols; c++ {
				src := b[(j*amxBlock+c)*ldb : (j*amxBlock+c)*ldb+k]
				base := c/16*256 + c%16
				if steps > 0 {
					packRowStepsBF16(&p32[base], &src[0], steps)
				}
				if steps*32 == k {
					continue
				}
				row := tmp[:kp-steps*32]
				bf16Row(row, src[steps*32:])
				clear(row[k-steps*32:])
				for i, v := range u32s(row) {
					pp := steps*16 + i
					p32[pp/16*512+pp%16*16+base] = v
				}
			}
		}
		return
	}
	// Row pairs of b across a group of panels at a time (one contiguous
	// read of each row, a few write streams): whole pairs of whole panels
	// with VCVTNE2PS2BF16 (packPairsBF16), the rest one value at a time.
	full := max(j0, min(j1, n/amxBlock)) // panels [j0,full) are 32 wide
	const group = 8
	for g0 := j0; g0 < j1; g0 += group {
		g1 := min(g0+group, j1)
		v1 := min(g1, full) // [g0,v1) whole panels
		for pp := 0; 2*pp < k; pp++ {
			base := pp/16*512 + pp%16*16
			j := g0
			if hasBF16DP && 2*pp+1 < k && v1 > g0 {
				p32 := u32s(dst[g0*pl:])
				packPairsBF16(&p32[base], &b[2*pp*ldb+g0*amxBlock], &b[(2*pp+1)*ldb+g0*amxBlock], v1-g0, pl*2)
				j = v1
			}
			for ; j < g1; j++ {
				p32 := u32s(dst[j*pl : (j+1)*pl])
				cols := min(amxBlock, n-j*amxBlock)
				lo := b[2*pp*ldb+j*amxBlock : 2*pp*ldb+j*amxBlock+cols]
				var hi []float32
				if 2*pp+1 < k {
					hi = b[(2*pp+1)*ldb+j*amxBlock : (2*pp+1)*ldb+j*amxBlock+cols]
				}
				for c, v := range lo {
					w := uint32(BF16FromF32(v))
					if hi != nil {
						w |= uint32(BF16FromF32(hi[c])) << 16
					}
					p32[base+c/16*256+c%16] = w
				}
			}
		}
	}
}

// u32s views p (even length) as uint32 pairs.
func u32s(p []uint16) []uint32 {
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(p))), len(p)/2)
}

// amxWeightsLen is the length of a (out,in) weight packed by
// packWeightsVNNI.
func amxWeightsLen(in, out int) int { return ceil32(out) / 32 * ceil32(in) / 32 * amxStep }

// amxWeights returns p's bf16 matrix (out rows of in) packed for the AMX
// kernel, packing it on first use; the copy stays beside the Param (one per
// Param, shared by every graph) until its values change (SetBF16Bits,
// SetF32 drop it). It costs as much memory again as the bf16 weight.
func (p *Param) amxWeights(in, out int) []uint16 {
	if w := p.amx.Load(); w != nil && (len(*w) == amxWeightsLen(in, out) || p.packedShape != nil) {
		return *w // a packed-only weight (PackAMX) has no other copy to pack from
	}
	w := make([]uint16, amxWeightsLen(in, out))
	bits := p.BF16()
	parallel(runtime.GOMAXPROCS(0), ceil32(out)/32, func(lo, hi int) { packWeightsVNNIFast(w, bits, in, out, lo, hi) })
	p.amx.Store(&w)
	return w
}

// amxKChunk is the k steps (of 32) per pass over a panel: 8 steps (256 k)
// keep a panel's B (16 KB) in L1 while the row blocks of A stream from L2;
// C, accumulated across passes, costs 8 KB of loads and stores per 32×32
// block per pass against 512 cycles of tile products.
const amxKChunk = 8

// amxABytes is the most of packed A one pass over a worker's panels reads
// (a block of rows, amxKPass steps of k): it stays in the core's L2 (2 MB
// here) beside the panels being read, so each row of A comes from memory
// once per pass and each panel of B once per pass (512 KB measured best of
// 256 KB-1 MB on the 1576×768×3072 product).
const amxABytes = 1 << 19

// amxKPass is the most k steps (of 32) one pass covers. A pass over all
// of a long k (the MLP's 3072→768) would hold only 2 row blocks of A in
// amxABytes, and the worker's panels of B (2.3 MB at git-base's fc2) would
// stream from L3 once per 64 rows: that product ran at 55% of fc1's rate
// (BenchmarkLinearBF16Kernels/3072-768/n1576/amx, one pass against passes,
// interleaved: 7.7–7.8 ms against 5.4–5.5).
// Passes over 768 k hold 10 row blocks, and a worker's B for them (590 KB)
// stays in L2 too. A row's sums still run over the same chunks of k in
// the same order, whichever pass computes them (a pass ends on a chunk
// boundary: a multiple of amxKChunk).
const amxKPass = 3 * amxKChunk

// amxProduct computes rows [0,m) and columns [0,n) of C (ldc apart) =
// init + A·B on the tile unit, or with dp on VDPBF16PS (dpPanel, from the
// same packed operands: CPUs with AVX512_BF16 but no AMX): a is packed by
// packRowsBF16 or packColsBF16 (ceil32(m) rows of kp), bp by
// packWeightsVNNI or packBVNNI (k padded to kp). init is C itself when
// accum, else the bias (nil: zero). Panels are split across workers; each
// panel runs k in chunks of amxKChunk steps.
func amxProduct(s *amxScratch, a []uint16, m, kp int, bp []uint16, n int, c []float32, ldc int, bias []float32, accum bool, workers int, dp bool) {
	kb := kp / 32
	panels := ceil32(n) / 32
	if bias != nil {
		s.bias = resize(s.bias, panels*amxBlock)
		copy(s.bias, bias[:n])
		clear(s.bias[n:])
	}
	workers = max(1, min(workers, panels))
	for len(s.edge) < workers {
		s.edge = append(s.edge, nil)
	}
	if m <= 16 && !s.no16 && !dp {
		if workers == 1 {
			amxRows16(s, a, m, kb, bp, n, c, ldc, bias, accum, 0, 0, panels)
			return
		}
		parallelIdx(workers, panels, func(worker, lo, hi int) {
			amxRows16(s, a, m, kb, bp, n, c, ldc, bias, accum, worker, lo, hi)
		})
		return
	}
	fullBlocks := m / amxBlock // row blocks written straight into C
	kPass := min(kb, cmp.Or(s.kPass, amxKPass))
	passBlocks := max(1, cmp.Or(s.passBytes, amxABytes)/(kPass*amxStep*2))
	kern := amxPanel
	if dp {
		kern = dpPanel
	}
	if workers == 1 { // no closure: a small product allocates nothing
		amxPanels(s, kern, dp, a, m, kb, bp, n, c, ldc, bias, accum, fullBlocks, passBlocks, kPass, 0, 0, panels)
		return
	}
	parallelIdx(workers, panels, func(worker, lo, hi int) {
		amxPanels(s, kern, dp, a, m, kb, bp, n, c, ldc, bias, accum, fullBlocks, passBlocks, kPass, worker, lo, hi)
	})
}

// amxRows16 is amxProduct's work on panels [lo,hi) when m ≤ 16 (a decode
// step: one row, or a few beams): amxPanels16 over all of k at once (one
// row block: no pass of A to keep in L2, nothing to reuse B for), its
// tiles configured with m rows so that whole panels go straight into C; a
// last panel narrower than 32 goes through worker's edge scratch. Each
// row's sums are amxPanel's, in the same order, so a row's result does not
// depend on the row count.
func amxRows16(s *amxScratch, a []uint16, m, kb int, bp []uint16, n int, c []float32, ldc int, bias []float32, accum bool, worker, lo, hi int) {
	if lo >= hi {
		return
	}
	full := hi
	if n-(hi-1)*amxBlock < amxBlock {
		full = hi - 1
	}
	if full > lo {
		var init *float32
		cs := 0
		switch {
		case accum:
			init, cs = &c[lo*amxBlock], ldc
		case bias != nil:
			init = &s.bias[lo*amxBlock]
		}
		amxPanels16(&a[0], &bp[lo*kb*amxStep], kb, full-lo, &c[lo*amxBlock], ldc, init, cs, m)
	}
	if full == hi {
		return
	}
	c0 := full * amxBlock
	cols := n - c0
	e := resize(s.edge[worker], m*amxBlock)
	s.edge[worker] = e
	var init *float32
	cs := 0
	switch {
	case accum:
		for r := range m {
			copy(e[r*amxBlock:r*amxBlock+cols], c[r*ldc+c0:r*ldc+c0+cols])
		}
		init, cs = &e[0], amxBlock
	case bias != nil:
		init = &s.bias[c0]
	}
	amxPanels16(&a[0], &bp[full*kb*amxStep], kb, 1, &e[0], amxBlock, init, cs, m)
	for r := range m {
		copy(c[r*ldc+c0:r*ldc+c0+cols], e[r*amxBlock:r*amxBlock+cols])
	}
}

// panelKernel is a 32-column panel micro-kernel: amxPanel or dpPanel.
type panelKernel func(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int)

// dpPanel is amxPanel's product on VDPBF16PS (dpPanelN over whole blocks).
func dpPanel(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int) {
	dpPanelN(a, ablk, mb, b, kb, c, ldc, cinit, cs, 4)
}

// amxPanels is amxProduct's work on panels [lo,hi) with the micro-kernel
// kern (dpPanel when dp), with worker's edge scratch.
func amxPanels(s *amxScratch, kern panelKernel, dp bool, a []uint16, m, kb int, bp []uint16, n int, c []float32, ldc int, bias []float32, accum bool, fullBlocks, passBlocks, kPass, worker, lo, hi int) {
	// Whole panels, kPass steps of k and passBlocks row blocks at a time
	// (that much of A stays in L2 while the worker's panels of B pass);
	// every element still takes k's chunks in order, each from the C the
	// previous one stored.
	for k0 := 0; k0 < kb; k0 += kPass {
		k1 := min(kb, k0+kPass)
		for rb := 0; rb < fullBlocks; rb += passBlocks {
			nrb := min(passBlocks, fullBlocks-rb)
			for j := lo; j < hi; j++ {
				c0 := j * amxBlock
				if n-c0 < amxBlock {
					continue
				}
				panel := bp[j*kb*amxStep : (j+1)*kb*amxStep]
				cj := c[rb*amxBlock*ldc+c0:]
				for q := k0; q < k1; q += amxKChunk {
					init, cs := s.chunkInit(accum || q > 0, &cj[0], ldc, bias != nil, c0)
					kern(&a[rb*kb*amxStep+q*amxStep], kb*amxStep, nrb, &panel[q*amxStep], min(amxKChunk, k1-q), &cj[0], ldc, init, cs)
				}
			}
		}
	}
	// The rest through the worker's edge scratch: rows past the last
	// whole block, and every row of a panel narrower than 32.
	for j := lo; j < hi; j++ {
		c0 := j * amxBlock
		cols := min(amxBlock, n-c0)
		r0 := 0
		if cols == amxBlock {
			r0 = fullBlocks * amxBlock
		}
		if r0 == m {
			continue
		}
		panel := bp[j*kb*amxStep : (j+1)*kb*amxStep]
		rows := m - r0
		e := resize(s.edge[worker], ceil32(rows)*amxBlock)
		s.edge[worker] = e
		if accum {
			for r := 0; r < rows; r++ {
				copy(e[r*amxBlock:r*amxBlock+cols], c[(r0+r)*ldc+c0:(r0+r)*ldc+c0+cols])
			}
		}
		for q := 0; q < kb; q += amxKChunk {
			init, cs := s.chunkInit(accum || q > 0, &e[0], amxBlock, bias != nil, c0)
			mb := ceil32(rows) / amxBlock
			if dp && rows%amxBlock != 0 {
				// The last block's rows only, 8 at a time (a decode
				// step's one row costs 8, not 32).
				if mb--; mb > 0 {
					kern(&a[r0/32*kb*amxStep+q*amxStep], kb*amxStep, mb, &panel[q*amxStep], min(amxKChunk, kb-q), &e[0], amxBlock, init, cs)
				}
				if cs != 0 {
					init = &e[mb*amxBlock*amxBlock]
				}
				dpPanelN(&a[(r0/32+mb)*kb*amxStep+q*amxStep], kb*amxStep, 1, &panel[q*amxStep], min(amxKChunk, kb-q), &e[mb*amxBlock*amxBlock], amxBlock, init, cs, (rows%amxBlock+7)/8)
				continue
			}
			kern(&a[r0/32*kb*amxStep+q*amxStep], kb*amxStep, mb, &panel[q*amxStep], min(amxKChunk, kb-q), &e[0], amxBlock, init, cs)
		}
		for r := 0; r < rows; r++ {
			copy(c[(r0+r)*ldc+c0:(r0+r)*ldc+c0+cols], e[r*amxBlock:r*amxBlock+cols])
		}
	}
}

// chunkInit is where a chunk of k starts its block of C from (amxPanel's
// cinit and its row stride): C itself (ld apart) when it accumulates (a
// later chunk, or a product onto C), the padded bias row from column c0
// (stride 0), or zero (nil).
func (s *amxScratch) chunkInit(fromC bool, c *float32, ld int, hasBias bool, c0 int) (*float32, int) {
	switch {
	case fromC:
		return c, ld
	case hasBias:
		return &s.bias[c0], 0
	}
	return nil, 0
}

// linearBF16AMX computes y = x·Wᵀ + b on the tile unit (on VDPBF16PS
// where AMX does not run), x (n,in) rounded to bf16, wp the weight
// (out,in) packed by packWeightsVNNI.
func linearBF16AMX(x []float32, wp []uint16, bias, y []float32, n, in, out int, s *amxScratch) {
	kp := ceil32(in)
	mp := ceil32(n)
	s.a = resize(s.a, mp*kp)
	workers := runtime.GOMAXPROCS(0)
	for w := range workers { // each worker's packing row, before they start
		s.tmpFor(w, kp)
	}
	parallelIdx(workers, mp/amxBlock, func(w, lo, hi int) {
		packRowsBF16(s.a, s.tmp[w], x, in, n, in, kp, lo*amxBlock, hi*amxBlock)
	})
	amxProduct(s, s.a, n, kp, wp, out, y, out, bias, false, workers, !amxOn())
}
