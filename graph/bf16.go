package graph

import (
	"errors"
	"fmt"
	"math"
	"runtime"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// bfloat16 weights for inference. A Param narrowed by ToBF16 holds its
// values as bf16 bit patterns (a tensor.Uint16 Value, W nil): half the
// memory of float32. Layers that meet such a Param build LinearBF16 or
// EmbedBF16 instead of their float32 ops; activations, biases, LayerNorm
// parameters and every sum stay float32. bf16 weights are inference-only:
// the ops have no gradient.
//
// Products: a bf16 value widens to float32 exactly (it is the top half of a
// float32), so the only rounding bf16 adds is the one of the weights
// themselves; the products and sums are float32, as in the float32 model.
// For a few rows (a decode step) LinearBF16 streams the bf16 weights
// through a GEMV kernel (AVX-512: widen 16 weights, FMA in float32); that
// halves the bytes a memory-bound decode step reads. For many rows (the
// vision tower, a prefix) it widens the matrix into a float32 scratch
// shared by the graph and calls sgemm, whose speed a compute-bound product
// keeps; with WithBF16Activations it rounds the activations to bf16 too and
// runs the AMX tiles (bf16amx.go) or VDPBF16PS (bf16gemm.go). With
// WithBF16Activations and AMX every product, decode steps included, runs on
// the tiles (a row's result then does not depend on how many rows share the
// step), and a weight only those products read can keep just its
// tile-layout copy (Param.PackAMX).

// BF16FromF32 rounds f to bfloat16 (round to nearest, ties to even, as
// PyTorch's float32→bfloat16 cast); NaN stays NaN.
func BF16FromF32(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 { // NaN: keep it quiet, keep the sign
		return uint16(b>>16) | 0x40
	}
	return uint16((b + 0x7fff + (b>>16)&1) >> 16)
}

// F32FromBF16 widens a bfloat16 value (exact).
func F32FromBF16(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// BF16Fast reports whether the AVX-512 bf16 kernels run on this CPU; without
// them the bf16 ops run a pure-Go kernel (correct, but slower than float32).
func BF16Fast() bool { return hasAVX512 }

// AMX reports whether the AMX tile kernels run in this process: then a
// packed weight's products of a few rows (decode steps) run on the tiles
// as fast as from checkpoint layout (Param.PackAMX).
func AMX() bool { return amxOn() }

// BF16Kernels names the kernels the bf16 ops run on this CPU.
func BF16Kernels() string {
	switch {
	case amxOn():
		return "AMX TDPBF16PS for every row count with bf16 activations (bf16-full; Linear matrices packed-only); bf16: AVX-512 GEMV for few rows, widen + sgemm for many"
	case hasBF16DP:
		return "AVX-512 GEMV for few rows (over the packed layout with bf16-full), VDPBF16PS GEMM for many (AMX off: " + amxProbe().reason + ")"
	case hasAVX512:
		return "AVX-512 GEMV for few rows, widen + sgemm for many (no AVX512_BF16)"
	}
	return "pure Go (no AVX-512)"
}

// IsBF16 reports whether p holds bfloat16 weights (see ToBF16).
func (p *Param) IsBF16() bool {
	return p.packedShape != nil || p.Value != nil && p.Value.Dtype() == tensor.Uint16
}

// BF16 returns the bf16 bit patterns of a parameter narrowed by ToBF16 in
// checkpoint layout, or nil (also once PackAMX has dropped them: see
// CheckpointBF16).
func (p *Param) BF16() []uint16 {
	if p.Value == nil || p.Value.Dtype() != tensor.Uint16 {
		return nil
	}
	return p.Value.Data().([]uint16)
}

// ToBF16 narrows p's float32 values to bfloat16 (BF16FromF32) and drops the
// float32 memory; graphs built before keep the old memory, so build graphs
// after narrowing. A bf16 Param cannot be trained (F32 and Builder.Param do
// not accept it).
func (p *Param) ToBF16() {
	if p.IsBF16() {
		return
	}
	src := p.F32()
	dst := make([]uint16, len(src))
	for i, v := range src {
		dst[i] = BF16FromF32(v)
	}
	p.Value = tensor.New(tensor.WithShape(p.Value.Shape().Clone()...), tensor.WithBacking(dst))
	p.W = nil
	p.amx.Store(nil)
}

// SetBF16Bits stores bf16 bit patterns (a checkpoint's BF16 tensor, kept as
// it is) into a bf16 Param.
func (p *Param) SetBF16Bits(bits []uint16) error {
	if p.packedShape != nil {
		return errPackedOnly(p)
	}
	dst := p.BF16()
	if dst == nil {
		return fmt.Errorf("parameter %s does not hold bf16 weights", p.Name)
	}
	if len(bits) != len(dst) {
		return fmt.Errorf("parameter %s: %d values for %d elements", p.Name, len(bits), len(dst))
	}
	copy(dst, bits)
	p.amx.Store(nil)
	return nil
}

// SetF32 stores float32 values into p: copied into a float32 Param,
// narrowed (BF16FromF32) into a bf16 one.
func (p *Param) SetF32(vals []float32) error {
	if p.packedShape != nil {
		return errPackedOnly(p)
	}
	if dst := p.BF16(); dst != nil {
		if len(vals) != len(dst) {
			return fmt.Errorf("parameter %s: %d values for %d elements", p.Name, len(vals), len(dst))
		}
		for i, v := range vals {
			dst[i] = BF16FromF32(v)
		}
		p.amx.Store(nil)
		return nil
	}
	dst := p.F32()
	if len(vals) != len(dst) {
		return fmt.Errorf("parameter %s: %d values for %d elements", p.Name, len(vals), len(dst))
	}
	copy(dst, vals)
	return nil
}

// ResidentBytes is the memory the parameters' values take: 2 bytes per bf16
// element, the dtype's size otherwise, plus every AMX-packed copy
// (Param.ResidentBytes).
func (ps *Params) ResidentBytes() int {
	n := 0
	for _, p := range ps.byName {
		n += p.ResidentBytes()
	}
	return n
}

// ResidentBytes is the memory p's values take: its checkpoint-layout values
// (none once PackAMX dropped them) and its AMX-packed copy if it has one.
func (p *Param) ResidentBytes() int {
	n := 0
	if p.Value != nil {
		n = p.Value.Shape().TotalSize() * int(p.Value.Dtype().Size())
	}
	if w := p.amx.Load(); w != nil {
		n += 2 * len(*w)
	}
	return n
}

// ProductBytes is the memory one product over p reads: its AMX-packed copy
// if it has one, its values otherwise.
func (p *Param) ProductBytes() int {
	if w := p.amx.Load(); w != nil {
		return 2 * len(*w)
	}
	return p.ResidentBytes()
}

func errPackedOnly(p *Param) error {
	return fmt.Errorf("parameter %s holds only its AMX-packed bf16 copy (UnpackAMX restores the checkpoint layout)", p.Name)
}

// matrixDims is the (out, in) matrix LinearBF16 reads p's elements as.
func matrixDims(p *Param) (out, in int) {
	sh := tensor.Shape(p.Shape())
	return sh[0], sh.TotalSize() / sh[0]
}

// PackAMX packs a bf16 weight read only by LinearBF16 into the AMX tile
// layout and drops its checkpoint-layout bits, so that the weight is held
// once (half its float32 bytes, plus the padding to multiples of 32) and
// every LinearBF16 product over it, whatever its row count, runs on the
// tile unit with activations rounded to bf16, or, where the CPU has
// AVX512_BF16 but no AMX, on VDPBF16PS from the same layout (dpPanel) for
// more than gemvRows rows and on the packed-layout GEMV (float32
// activations, linearPackedGEMV; the width a multiple of 32) for decode
// steps. It does nothing (false) where
// neither runs or p is not bf16. Do not pack a Param that
// anything else reads in checkpoint layout (EmbedBF16 refuses it; Builder
// already refuses bf16). Call it before sharing p between goroutines.
func (p *Param) PackAMX() bool {
	if !amxOn() && !hasBF16DP || !p.IsBF16() {
		return false
	}
	if p.packedShape != nil {
		return true
	}
	out, in := matrixDims(p)
	p.amxWeights(in, out)
	p.packedShape = p.Value.Shape().Clone()
	p.Value = nil
	return true
}

// UnpackAMX undoes PackAMX: the checkpoint-layout bits come back (unpacked
// from the tile copy, bit for bit) and the packed copy is dropped.
func (p *Param) UnpackAMX() {
	if p.packedShape == nil {
		return
	}
	bits := p.CheckpointBF16()
	p.Value = tensor.New(tensor.WithShape(p.packedShape...), tensor.WithBacking(bits))
	p.packedShape = nil
	p.amx.Store(nil)
}

// CheckpointBF16 returns p's bf16 bits in checkpoint layout: BF16's slice,
// or, once PackAMX has dropped it, a new slice unpacked from the tile copy.
// nil for a float32 Param.
func (p *Param) CheckpointBF16() []uint16 {
	if p.packedShape == nil {
		return p.BF16()
	}
	out, in := matrixDims(p)
	bits := make([]uint16, out*in)
	unpackWeightsVNNI(bits, *p.amx.Load(), in, out)
	return bits
}

// bf16Scratch is the float32 matrix a graph's many-row LinearBF16 ops widen
// their weights into, one at a time (a graph runs its ops in turn), so a
// graph holds one scratch the size of its largest bf16 matrix.
type bf16Scratch struct {
	roundX bool        // many-row products may round activations to bf16 (WithBF16Activations)
	w      []float32   // a widened matrix
	xp     []uint32    // activations packed for VDPBF16PS (bf16gemm.go)
	amx    amxScratch  // activations packed for AMX (bf16amx.go)
	tiles  [][]float32 // one output tile per worker (bf16gemm.go)
}

func (s *bf16Scratch) get(n int) []float32 {
	if cap(s.w) < n {
		s.w = make([]float32, n)
	}
	return s.w[:n]
}

// WithBF16Activations lets the graph's many-row LinearBF16 products (the
// vision tower, a prefix) round their activations to bf16 and run the
// VDPBF16PS GEMM where the CPU has AVX512_BF16: about twice the speed of
// widening and sgemm, at the cost of a second rounding (the activations',
// relative ≤ 2⁻⁹) on top of the weights'. Without it those products keep
// float32 activations (widen + sgemm). Where AMX runs, every LinearBF16
// product of the graph takes the tiles, decode steps (few rows) included:
// at 16 rows they cost about the weights' streaming, where the GEMV kernel
// is compute-bound, and a row's result is the same whatever the rows beside
// it. Without AMX decode steps keep float32 activations (GEMV, over the
// checkpoint layout or a packed-only weight's VNNI layout).
func WithBF16Activations(on bool) BuilderOption {
	return func(b *Builder) {
		if b.bf16 == nil {
			b.bf16 = &bf16Scratch{}
		}
		b.bf16.roundX = on
	}
}

// gemvRows is the row count up to which LinearBF16 streams bf16 weights
// (GEMV kernel); above it, widening and sgemm is faster.
const gemvRows = 16

// gemvWideRows is the row count from which the GEMV takes four weight rows
// against one x row (dot4x1BF16AVX512) instead of one weight row against
// four x rows (dot1x4BF16AVX512): from here the x rows no longer stay in L1
// while a weight row passes. Measured on Zen 5 (BenchmarkLinearBF16DecodeStep,
// git-base decoder and LM head): 8 rows 8.3 ms one-row vs 9.4 ms four-row,
// 10 rows 10.1 vs 10.9 ms four-row, 16 rows 21.0 vs 13.8 ms four-row.
const gemvWideRows = 9

// LinearBF16 is Linear (x·Wᵀ + b) with a bf16 weight w (out,in) held by the
// op itself rather than a graph input (a Param of any shape whose elements
// form (rows, elements/rows): a conv kernel is a matrix). bias is a float32
// node (out) or nil.
func LinearBF16(b *Builder, x *G.Node, w *Param, bias *G.Node) *G.Node {
	if !w.IsBF16() {
		panic(buildError{fmt.Errorf("LinearBF16: parameter %s holds float32 weights", w.Name)})
	}
	out, in := matrixDims(w)
	if b.bf16 == nil {
		b.bf16 = &bf16Scratch{}
	}
	f32 := tensor.Float32
	sig := fmt.Sprintf("LinearBF16{%s,%p,%dx%d,bias=%v,invariant=%v}", w.Name, w, out, in, bias != nil, b.batchInvariant)
	op := linearBF16Op{w: w, nOut: out, nIn: in, bias: bias != nil, scratch: b.bf16, invariant: b.batchInvariant}
	if bias != nil {
		op.baseOp = newBase(sig, tt(2, f32), tt(2, f32), tt(1, f32))
		return apply(op, x, bias)
	}
	op.baseOp = newBase(sig, tt(2, f32), tt(2, f32))
	return apply(op, x)
}

type linearBF16Op struct {
	baseOp
	w         *Param
	nOut, nIn int
	bias      bool
	scratch   *bf16Scratch
	invariant bool // rows that do not depend on their number (Builder.BatchInvariant)
}

func (op linearBF16Op) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x := shapeOf(in[0])
	if len(x) != 2 || x[1] != op.nIn {
		return nil, fmt.Errorf("LinearBF16: x %v does not fit weight %s (%d,%d)", x, op.w.Name, op.nOut, op.nIn)
	}
	if op.bias {
		if b := shapeOf(in[1]); b.TotalSize() != op.nOut {
			return nil, fmt.Errorf("LinearBF16: bias %v does not fit weight %s (%d,%d)", b, op.w.Name, op.nOut, op.nIn)
		}
	}
	return tensor.Shape{x[0], op.nOut}, nil
}
func (op linearBF16Op) Do(vals ...G.Value) (G.Value, error) {
	x := data[float32](vals[0])
	n := len(x) / op.nIn
	y := op.out(tensor.Float32, n, op.nOut)
	var bias []float32
	if op.bias {
		bias = data[float32](vals[1])
	}
	linearBF16On(x, op.w.BF16(), op.w, bias, y.Data().([]float32), n, op.nIn, op.nOut, op.scratch, op.invariant)
	return y, nil
}
func (op linearBF16Op) DiffWRT(n int) []bool { return allTrue(n) }
func (op linearBF16Op) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errBF16Grad
}

var errBF16Grad = errors.New("bf16 weights are for inference only: they have no gradient (train in float32)")

// linearBF16 computes y = x·Wᵀ + b for x (n,in), bf16 W (out,in).
func linearBF16(x []float32, w []uint16, bias, y []float32, n, in, out int, scratch *bf16Scratch) {
	linearBF16On(x, w, nil, bias, y, n, in, out, scratch, false)
}

// linearBF16On is linearBF16 for w held by p (the op's Param, whose AMX
// copy of w it uses; nil: the AMX path packs w into the scratch per call).
//
// With bf16 activations (roundX) and AMX, every product takes the tile
// unit whatever n, so that a row's result does not depend on how many rows
// share the call (decode steps alone or batched, prefixes): the tiles'
// rows are independent and each row's k order is the same for any n
// (amxProduct). A weight PackAMX packed has no other copy, so its products
// take the tile unit even without roundX. With invariant (an op built
// under Builder.BatchInvariant), without AMX, every product stays on the GEMV
// kernels (checkpoint or packed layout, float32 activations) whatever n:
// their rows are computed alike for any n.
func linearBF16On(x []float32, w []uint16, p *Param, bias, y []float32, n, in, out int, scratch *bf16Scratch, invariant bool) {
	if p != nil && p.packedShape != nil {
		if packedGEMVFits(n, in) || invariant && packedGEMVFits(1, in) {
			linearPackedGEMV(x, p.amxWeights(in, out), bias, y, n, in, out)
			return
		}
		if scratch == nil {
			scratch = &bf16Scratch{}
		}
		linearBF16AMX(x, p.amxWeights(in, out), bias, y, n, in, out, &scratch.amx)
		return
	}
	if scratch != nil && scratch.roundX && (amxOn() || !invariant && useBF16DP(n, in, out)) {
		linearBF16DP(x, w, p, bias, y, n, in, out, scratch)
		return
	}
	if n > gemvRows && scratch != nil && !invariant {
		wf := scratch.get(out * in)
		widenBF16(wf, w)
		linearFwd(x, wf, bias, y, n, in, out)
		return
	}
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || out*in < 1<<16 || out < 8*workers {
		gemvBF16(x, w, bias, y, n, in, out, 0, out)
		return
	}
	chunk := (out/workers + 3) &^ 3
	runChunks(out, chunk, func(_, lo, hi int) { gemvBF16(x, w, bias, y, n, in, out, lo, hi) })
}

// gemvBF16 computes columns [lo,hi) of y = x·Wᵀ + b. For few x rows it
// takes one weight row at a time against every x row: the weight row is
// read from memory as one sequential stream, the pattern the hardware
// prefetcher serves fastest, and widened once for four x rows
// (dot1x4BF16AVX512, dot1BF16AVX512 for the rest). For gemvWideRows or more
// it takes four weight rows, which stay in L1 while the x rows pass
// (dot4x1BF16AVX512). All three kernels compute each (row, column) dot
// product in the same order, bit for bit, so a sequence's result never
// depends on n, lo, hi or the batch it shares the call with.
func gemvBF16(x []float32, w []uint16, bias, y []float32, n, in, out, lo, hi int) {
	k16 := 0
	if hasAVX512 {
		k16 = in &^ 15
	}
	var acc [4]float32
	j := lo
	for ; k16 > 0 && n >= gemvWideRows && j+4 <= hi; j += 4 {
		wj := w[j*in : (j+4)*in]
		for i := 0; i < n; i++ {
			xi := x[i*in : (i+1)*in]
			dot4x1BF16AVX512(&wj[0], in, &xi[0], k16, &acc[0])
			for r, s := range acc {
				if k16 < in {
					s += dotBF16Go(wj[r*in+k16:(r+1)*in], xi[k16:])
				}
				var b float32
				if bias != nil {
					b = bias[j+r]
				}
				y[i*out+j+r] = s + b
			}
		}
	}
	for ; j < hi; j++ {
		wj := w[j*in : (j+1)*in]
		var b float32
		if bias != nil {
			b = bias[j]
		}
		i := 0
		for ; k16 > 0 && i+4 <= n; i += 4 {
			dot1x4BF16AVX512(&wj[0], &x[i*in], in, k16, &acc[0])
			for r, s := range acc {
				if k16 < in {
					s += dotBF16Go(wj[k16:], x[(i+r)*in+k16:(i+r+1)*in])
				}
				y[(i+r)*out+j] = s + b
			}
		}
		for ; i < n; i++ {
			xi := x[i*in : (i+1)*in]
			var s float32
			if k16 > 0 {
				s = dot1BF16AVX512(&wj[0], &xi[0], k16)
				if k16 < in {
					s += dotBF16Go(wj[k16:], xi[k16:])
				}
			} else {
				s = dotBF16Go(wj, xi)
			}
			y[i*out+j] = s + b
		}
	}
}

// dotBF16Go is the pure-Go kernel (and reference): Σ widen(w[i])·x[i].
func dotBF16Go(w []uint16, x []float32) float32 {
	x = x[:len(w)]
	var a0, a1, a2, a3 float32
	i := 0
	for ; i+4 <= len(w); i += 4 {
		a0 += F32FromBF16(w[i]) * x[i]
		a1 += F32FromBF16(w[i+1]) * x[i+1]
		a2 += F32FromBF16(w[i+2]) * x[i+2]
		a3 += F32FromBF16(w[i+3]) * x[i+3]
	}
	for ; i < len(w); i++ {
		a0 += F32FromBF16(w[i]) * x[i]
	}
	return (a0 + a1) + (a2 + a3)
}

// widenBF16 writes src widened to float32 into dst (len(src) elements),
// split across cores for large matrices.
func widenBF16(dst []float32, src []uint16) {
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || len(src) < 1<<18 {
		widenBF16Range(dst, src)
		return
	}
	chunk := (len(src)/workers + 63) &^ 63
	runChunks(len(src), chunk, func(_, lo, hi int) { widenBF16Range(dst[lo:hi], src[lo:hi]) })
}

func widenBF16Range(dst []float32, src []uint16) {
	n := 0
	if hasAVX512 && len(src) >= 16 {
		n = len(src) &^ 15
		widenBF16AVX512(&dst[0], &src[0], n)
	}
	for i := n; i < len(src); i++ {
		dst[i] = F32FromBF16(src[i])
	}
}

// EmbedBF16 is Embed with a bf16 table w (V,C) held by the op: the looked-up
// rows are widened to float32.
func EmbedBF16(w *Param, ids *G.Node) *G.Node {
	if !w.IsBF16() {
		panic(buildError{fmt.Errorf("EmbedBF16: parameter %s holds float32 weights", w.Name)})
	}
	if w.BF16() == nil {
		panic(buildError{fmt.Errorf("EmbedBF16: %w", errPackedOnly(w))})
	}
	sh := w.Value.Shape()
	v, c := sh[0], sh.TotalSize()/sh[0]
	base := newBase(fmt.Sprintf("EmbedBF16{%s,%p,%dx%d}", w.Name, w, v, c), tt(2, tensor.Float32), tt(1, tensor.Int))
	return apply(embedBF16Op{baseOp: base, w: w, v: v, c: c}, ids)
}

type embedBF16Op struct {
	baseOp
	w    *Param
	v, c int
}

func (op embedBF16Op) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{shapeOf(in[0]).TotalSize(), op.c}, nil
}
func (op embedBF16Op) Do(vals ...G.Value) (G.Value, error) {
	ids := ints(vals[0])
	y := op.out(tensor.Float32, len(ids), op.c)
	dst, w := y.Data().([]float32), op.w.BF16()
	if w == nil {
		return nil, errPackedOnly(op.w)
	}
	for i, id := range ids {
		if id < 0 || id >= op.v {
			return nil, fmt.Errorf("embedding index %d out of range [0,%d)", id, op.v)
		}
		widenBF16Range(dst[i*op.c:(i+1)*op.c], w[id*op.c:(id+1)*op.c])
	}
	return y, nil
}
func (op embedBF16Op) DiffWRT(n int) []bool { return []bool{false} }
func (op embedBF16Op) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) {
	return nil, errBF16Grad
}

// packedGEMVFits says whether a product of n rows over a packed-only weight
// takes the packed-layout GEMV (float32 activations): on a CPU with
// AVX512_BF16 but no AMX, for decode steps (at most gemvRows rows) and
// widths in multiples of 32. On AMX every product takes the tiles.
func packedGEMVFits(n, in int) bool {
	return hasAVX512 && !amxOn() && n <= gemvRows && in%32 == 0
}

// linearPackedGEMV computes y = x·Wᵀ + b for few rows of float32 x over a
// weight held only in the tiles' VNNI layout (wp; in a multiple of 32): a
// decode step over weights PackAMX packed on a CPU without AMX, so that the
// decoder is held once, packed, and its prefix runs dpPanel while its steps
// stream it here. The panels are split across the cores; each row's result
// is the same whatever n (packedGEMV1 and packedGEMV4 agree bit for bit).
func linearPackedGEMV(x []float32, wp []uint16, bias, y []float32, n, in, out int) {
	panels := ceil32(out) / 32
	workers := runtime.GOMAXPROCS(0)
	if workers < 2 || out*in < 1<<16 || panels < 2*workers {
		packedGEMVPanels(x, wp, bias, y, n, in, out, 0, panels)
		return
	}
	chunk := (panels + workers - 1) / workers
	runChunks(panels, chunk, func(_, lo, hi int) { packedGEMVPanels(x, wp, bias, y, n, in, out, lo, hi) })
}

// packedGEMVPanels computes panels [lo,hi) (32 columns each) of
// linearPackedGEMV's product: four x rows at a time, then one.
func packedGEMVPanels(x []float32, wp []uint16, bias, y []float32, n, in, out, lo, hi int) {
	var t [4 * 32]float32
	steps := in / 32
	pl := steps * amxStep
	for j := lo; j < hi; j++ {
		panel := &wp[j*pl]
		c0, cols := j*32, min(32, out-j*32)
		store := func(i int, t []float32) {
			yi := y[i*out+c0 : i*out+c0+cols]
			for c := range yi {
				var b float32
				if bias != nil {
					b = bias[c0+c]
				}
				yi[c] = t[c] + b
			}
		}
		i := 0
		for ; i+4 <= n; i += 4 {
			packedGEMV4(panel, &x[i*in], in, steps, &t[0])
			for r := 0; r < 4; r++ {
				store(i+r, t[r*32:])
			}
		}
		for ; i < n; i++ {
			packedGEMV1(panel, &x[i*in], steps, &t[0])
			store(i, t[:])
		}
	}
}
