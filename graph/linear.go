package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Linear returns x·Wᵀ + b for x (N,in), W (out,in) as HuggingFace stores it,
// and b (out) or nil. It calls BLAS directly with W transposed in place, so
// the weight keeps the checkpoint's layout and is never copied.
func Linear(x, w, b *G.Node) *G.Node { return linear(x, w, b, nil, nil) }

// linear is Linear whose products (forward and backward) call mm (nil:
// sgemm; see Builder.Linear). With own set, a float32 forward product of
// many rows may take linearOwnSgemm (the same bits as sgemm's) in that
// scratch, which the graph's Linear ops share.
func linear(x, w, b *G.Node, mm products, own *sgemmScratch) *G.Node {
	dt := dtypeOf(x)
	if b != nil {
		return apply(linearOp{newBase(fmt.Sprintf("Linear{%v,bias%s}", dt, precSig(mm)), tt(2, dt), tt(2, dt), tt(2, dt), tt(1, dt)), dt, true, mm, own}, x, w, b)
	}
	return apply(linearOp{newBase(fmt.Sprintf("Linear{%v%s}", dt, precSig(mm)), tt(2, dt), tt(2, dt), tt(2, dt)), dt, false, mm, own}, x, w)
}

// linearOp is x·Wᵀ (+ b) from (x, W[, b]).
type linearOp struct {
	baseOp
	dt   tensor.Dtype
	bias bool
	mm   products // the graph's product (precision.go); nil: sgemm
	own  *sgemmScratch
}

func (op linearOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, w := shapeOf(in[0]), shapeOf(in[1])
	if len(x) != 2 || len(w) != 2 || x[1] != w[1] {
		return nil, fmt.Errorf("Linear: x %v and weight %v do not fit (want x (N,in), weight (out,in))", x, w)
	}
	if op.bias {
		if b := shapeOf(in[2]); b.TotalSize() != w[0] {
			return nil, fmt.Errorf("Linear: bias %v does not fit weight %v", b, w)
		}
	}
	return tensor.Shape{x[0], w[0]}, nil
}
func (op linearOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	n, in := x.Shape()[0], x.Shape()[1]
	out := dense(vals[1]).Shape()[0]
	y := op.out(op.dt, n, out)
	switch op.dt {
	case tensor.Float32:
		if op.mm == nil && op.own != nil && useOwnSgemm(n, in, out) {
			linearOwnSgemm(data[float32](vals[0]), data[float32](vals[1]), biasOf[float32](op.bias, vals), y.Data().([]float32), n, in, out, op.own)
			break
		}
		linearFwdVia(op.mm, data[float32](vals[0]), data[float32](vals[1]), biasOf[float32](op.bias, vals), y.Data().([]float32), n, in, out)
	default:
		linearFwd(data[float64](vals[0]), data[float64](vals[1]), biasOf[float64](op.bias, vals), y.Data().([]float64), n, in, out)
	}
	return y, nil
}

func biasOf[T Float](has bool, vals []G.Value) []T {
	if !has {
		return nil
	}
	return data[T](vals[2])
}

func linearFwd[T Float](x, w, b, y []T, n, in, out int) { linearFwdVia(nil, x, w, b, y, n, in, out) }

// linearFwdVia is linearFwd with the product mm (nil: sgemm).
func linearFwdVia[T Float](mm products, x, w, b, y []T, n, in, out int) {
	if b != nil && mm == nil {
		linearBiasFwd(x, w, b, y, n, in, out)
		return
	}
	if b != nil {
		parallelFor(n, 64, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				copy(y[i*out:(i+1)*out], b)
			}
		})
		gemmVia(mm, false, false, true, n, out, in, 1, x, in, w, in, 1, y, out)
		return
	}
	gemmVia(mm, false, false, true, n, out, in, 1, x, in, w, in, 0, y, out)
}

// linearBiasFwd is y = x·wᵀ + b through BLAS: b copied into y's rows and
// a beta = 1 product. Each worker copies the bias into its own block of y
// just before its product (gemm's blocks, gemmParallel's split), so the
// copy needs no parallel region of its own and its block is still in cache
// for the product; the products are gemm's, so the bits are too.
func linearBiasFwd[T Float](x, w, b, y []T, n, in, out int) {
	if n == 0 || out == 0 {
		return
	}
	block := func(r0, r1, c0, c1 int) {
		for i := r0; i < r1; i++ {
			copy(y[i*out+c0:i*out+c1], b[c0:c1])
		}
		if in > 0 {
			gemm1(false, true, r1-r0, c1-c0, in, 1, x[r0*in:], in, w[c0*in:], in, 1, y[r0*out+c0:], out)
		}
	}
	wk := gemmWorkers(n, out, in)
	if wk <= 1 {
		block(0, n, 0, out)
		return
	}
	splitBlocks(n, out, wk, block) // gemmParallel's blocks
}

func (op linearOp) DiffWRT(n int) []bool { return allTrue(n) }

func (op linearOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, w := inputs[0], inputs[1]
	dx := apply(newMatMul(op.dt, false, false, true, op.mm), grad, w) // (N,out)·(out,in)
	// x itself, or an MLP's activation computed again (recomputedAct).
	xa := recomputedAct(x, grad)
	dw := apply(newMatMul(op.dt, true, false, false, op.mm), grad, xa) // (out,N)·(N,in)
	if !op.bias {
		return G.Nodes{dx, dw}, nil
	}
	return G.Nodes{dx, dw, ColSum(grad)}, nil
}

// MatMul returns op(a)·op(b) for 2-D a and b, transposing in BLAS.
func MatMul(a, b *G.Node, transA, transB bool) *G.Node { return matMul(a, b, transA, transB, nil) }

// matMul is MatMul whose products (forward and backward) call mm (nil:
// sgemm).
func matMul(a, b *G.Node, transA, transB bool, mm products) *G.Node {
	return apply(newMatMul(dtypeOf(a), transA, transB, false, mm), a, b)
}

// matMulOp is op(a)·op(b) from (a, b).
type matMulOp struct {
	baseOp
	dt             tensor.Dtype
	transA, transB bool
	// private marks a Linear's input gradient: its signature includes the
	// op's own buffer address, so gorgonia never merges it with an
	// identical product elsewhere, and an activation gradient may overwrite
	// it in place (see actGradOp.inPlace).
	private bool
	mm      products // the graph's product (precision.go); nil: sgemm
}

func newMatMul(dt tensor.Dtype, transA, transB, private bool, mm products) matMulOp {
	op := matMulOp{baseOp: newBase("", tt(2, dt), tt(2, dt), tt(2, dt)), dt: dt, transA: transA, transB: transB, private: private, mm: mm}
	sig := fmt.Sprintf("MatMul{%v,tA=%v,tB=%v%s}", dt, transA, transB, precSig(mm))
	if private {
		sig = fmt.Sprintf("MatMul{%v,tA=%v,tB=%v%s,private=%p}", dt, transA, transB, precSig(mm), op.cache)
	}
	op.baseOp = op.baseOp.named(sig)
	return op
}

func (op matMulOp) dims(a, b tensor.Shape) (m, n, k, k2 int) {
	m, k = a[0], a[1]
	if op.transA {
		m, k = k, m
	}
	k2, n = b[0], b[1]
	if op.transB {
		k2, n = n, k2
	}
	return
}
func (op matMulOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, b := shapeOf(in[0]), shapeOf(in[1])
	if len(a) != 2 || len(b) != 2 {
		return nil, fmt.Errorf("MatMul: want 2-D operands, got %v and %v", a, b)
	}
	m, n, k, k2 := op.dims(a, b)
	if k != k2 {
		return nil, fmt.Errorf("MatMul: %v and %v do not fit (%v)", a, b, op)
	}
	return tensor.Shape{m, n}, nil
}
func (op matMulOp) Do(vals ...G.Value) (G.Value, error) {
	a, b := dense(vals[0]), dense(vals[1])
	m, n, k, _ := op.dims(a.Shape(), b.Shape())
	c := op.out(op.dt, m, n)
	lda, ldb := a.Shape()[1], b.Shape()[1]
	switch op.dt {
	case tensor.Float32:
		gemmVia(op.mm, false, op.transA, op.transB, m, n, k, 1, data[float32](a), lda, data[float32](b), ldb, 0, c.Data().([]float32), n)
	default:
		gemm(op.transA, op.transB, m, n, k, 1, data[float64](a), lda, data[float64](b), ldb, 0, c.Data().([]float64), n)
	}
	return c, nil
}
func (op matMulOp) DiffWRT(n int) []bool { return []bool{true, true} }
func (op matMulOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	a, b := inputs[0], inputs[1]
	var da, db *G.Node
	switch {
	case !op.transA && !op.transB: // C = AB
		da, db = matMul(grad, b, false, true, op.mm), matMul(a, grad, true, false, op.mm)
	case !op.transA && op.transB: // C = ABᵀ
		da, db = matMul(grad, b, false, false, op.mm), matMul(grad, a, true, false, op.mm)
	case op.transA && !op.transB: // C = AᵀB
		da, db = matMul(b, grad, false, true, op.mm), matMul(a, grad, false, false, op.mm)
	default: // C = AᵀBᵀ
		da, db = matMul(b, grad, true, true, op.mm), matMul(grad, a, true, true, op.mm)
	}
	return G.Nodes{da, db}, nil
}

// ColSum sums a 2-D tensor over its rows: (N,C) -> (C).
func ColSum(x *G.Node) *G.Node {
	dt := dtypeOf(x)
	return apply(colSumOp{newBase(fmt.Sprintf("ColSum{%v}", dt), tt(1, dt), tt(2, dt)), dt}, x)
}

// colSumOp is Σ_rows x from (x); it is only ever a gradient (of a bias or
// a gain), so it has none itself.
type colSumOp struct {
	baseOp
	dt tensor.Dtype
}

func (op colSumOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := shapeOf(in[0])
	if len(s) != 2 {
		return nil, fmt.Errorf("ColSum: want a 2-D input, got %v", s)
	}
	return tensor.Shape{s[1]}, nil
}
func (op colSumOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	n, c := x.Shape()[0], x.Shape()[1]
	y := op.out(op.dt, c)
	switch op.dt {
	case tensor.Float32:
		colSum(data[float32](x), n, c, y.Data().([]float32))
	default:
		colSum(data[float64](x), n, c, y.Data().([]float64))
	}
	return y, nil
}
