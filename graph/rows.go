package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Embed looks up rows of table w (V,C) for ids (N, tensor.Int): (N,C).
// Its gradient scatter-adds into a dense (V,C) tensor; ids out of range are
// an error at run time, not a panic.
func Embed(w, ids *G.Node) *G.Node {
	dt := dtypeOf(w)
	return apply(embedOp{newBase(fmt.Sprintf("Embed{%v}", dt), tt(2, dt), tt(2, dt), tt(1, tensor.Int)), dt}, w, ids)
}

// embedOp is w[ids] from (w, ids).
type embedOp struct {
	baseOp
	dt tensor.Dtype
}

func (op embedOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	w, ids := shapeOf(in[0]), shapeOf(in[1])
	if len(w) != 2 {
		return nil, fmt.Errorf("Embed: want a (V,C) table, got %v", w)
	}
	return tensor.Shape{ids.TotalSize(), w[1]}, nil
}
func (op embedOp) Do(vals ...G.Value) (G.Value, error) {
	w := dense(vals[0])
	ids := ints(vals[1])
	c := w.Shape()[1]
	y := op.out(op.dt, len(ids), c)
	var err error
	switch op.dt {
	case tensor.Float32:
		err = gather(ids, data[float32](w), y.Data().([]float32), c)
	default:
		err = gather(ids, data[float64](w), y.Data().([]float64), c)
	}
	return y, err
}

func (op embedOp) DiffWRT(n int) []bool { return []bool{true, false} }
func (op embedOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	w, ids := inputs[0], inputs[1]
	v := w.Shape()[0]
	g := embedGradOp{newBase(fmt.Sprintf("EmbedGrad{%v,v=%d}", op.dt, v), tt(2, op.dt), tt(1, tensor.Int), tt(2, op.dt)), op.dt, v}
	return G.Nodes{apply(g, ids, grad), nil}, nil
}

// embedGradOp is dW (V,C) from (ids, dy): dy's rows scatter-added.
type embedGradOp struct {
	baseOp
	dt tensor.Dtype
	v  int // table rows
}

func (op embedGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.v, shapeOf(in[1])[1]}, nil
}
func (op embedGradOp) Do(vals ...G.Value) (G.Value, error) {
	ids := ints(vals[0])
	dy := dense(vals[1])
	c := dy.Shape()[1]
	y := op.out(op.dt, op.v, c)
	var err error
	switch op.dt {
	case tensor.Float32:
		err = scatterAdd(ids, data[float32](dy), y.Data().([]float32), c)
	default:
		err = scatterAdd(ids, data[float64](dy), y.Data().([]float64), c)
	}
	return y, err
}
func (op embedGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func gather[T Float](ids []int, w, y []T, c int) error {
	v := len(w) / c
	for i, id := range ids {
		if id < 0 || id >= v {
			return fmt.Errorf("embedding index %d out of range [0,%d)", id, v)
		}
		copy(y[i*c:(i+1)*c], w[id*c:(id+1)*c])
	}
	return nil
}

func scatterAdd[T Float](ids []int, dy, dw []T, c int) error {
	clear(dw) // the buffer is reused from the last run
	v := len(dw) / c
	for i, id := range ids {
		if id < 0 || id >= v {
			return fmt.Errorf("embedding index %d out of range [0,%d)", id, v)
		}
		row, src := dw[id*c:(id+1)*c], dy[i*c:(i+1)*c]
		for j, g := range src {
			row[j] += g
		}
	}
	return nil
}

// ConcatSeq joins per-example sequences: input i is (B·rows_i, C), holding
// rows_i consecutive rows for each of B examples; the result is
// (B·Σrows_i, C) with each example's pieces adjacent, in input order. It is
// how CLIP prepends its class token and how GIT puts the image tokens in
// front of the text tokens.
func ConcatSeq(b int, xs ...*G.Node) *G.Node {
	rows := make([]int, len(xs))
	for i, x := range xs {
		rows[i] = x.Shape()[0] / b
	}
	dt := dtypeOf(xs[0])
	sig := fmt.Sprintf("ConcatSeq{%v,b=%d,rows=%v}", dt, b, rows)
	return apply(concatSeqOp{newBase(sig, tt(2, dt), repeatT(len(xs), tt(2, dt))...), dt, b, rows}, xs...)
}

// concatSeqOp is the per-example concatenation of its inputs.
type concatSeqOp struct {
	baseOp
	dt   tensor.Dtype
	b    int
	rows []int
}

func total(rows []int) int {
	t := 0
	for _, r := range rows {
		t += r
	}
	return t
}

func (op concatSeqOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	c := shapeOf(in[0])[1]
	for i, r := range op.rows {
		if s := shapeOf(in[i]); len(s) != 2 || s[0] != op.b*r || s[1] != c {
			return nil, fmt.Errorf("%v: input %d has shape %v", op, i, s)
		}
	}
	return tensor.Shape{op.b * total(op.rows), c}, nil
}
func (op concatSeqOp) Do(vals ...G.Value) (G.Value, error) {
	c := dense(vals[0]).Shape()[1]
	y := op.out(op.dt, op.b*total(op.rows), c)
	switch op.dt {
	case tensor.Float32:
		concatSeqDo(op, vals, y.Data().([]float32), c)
	default:
		concatSeqDo(op, vals, y.Data().([]float64), c)
	}
	return y, nil
}

func concatSeqDo[T Float](op concatSeqOp, vals []G.Value, y []T, c int) {
	tot := total(op.rows)
	off := 0
	for i, r := range op.rows {
		src := data[T](vals[i])
		for b := 0; b < op.b; b++ {
			copy(y[(b*tot+off)*c:(b*tot+off+r)*c], src[b*r*c:(b+1)*r*c])
		}
		off += r
	}
}

func (op concatSeqOp) DiffWRT(n int) []bool { return allTrue(n) }
func (op concatSeqOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	out := make(G.Nodes, len(inputs))
	for i := range inputs {
		sig := fmt.Sprintf("SeqPart{%v,b=%d,rows=%v,part=%d}", op.dt, op.b, op.rows, i)
		out[i] = apply(seqPartOp{newBase(sig, tt(2, op.dt), tt(2, op.dt)), op.dt, op.b, op.rows, i}, grad)
	}
	return out, nil
}

// seqPartOp is ConcatSeq's gradient for one input: the part'th piece of
// every example of dy.
type seqPartOp struct {
	baseOp
	dt   tensor.Dtype
	b    int
	rows []int
	part int
}

func (op seqPartOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.b * op.rows[op.part], shapeOf(in[0])[1]}, nil
}
func (op seqPartOp) Do(vals ...G.Value) (G.Value, error) {
	c := dense(vals[0]).Shape()[1]
	y := op.out(op.dt, op.b*op.rows[op.part], c)
	switch op.dt {
	case tensor.Float32:
		seqPartDo(op, data[float32](vals[0]), y.Data().([]float32), c)
	default:
		seqPartDo(op, data[float64](vals[0]), y.Data().([]float64), c)
	}
	return y, nil
}
func (op seqPartOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func seqPartDo[T Float](op seqPartOp, src, y []T, c int) {
	tot, off := total(op.rows), total(op.rows[:op.part])
	r := op.rows[op.part]
	for b := 0; b < op.b; b++ {
		copy(y[b*r*c:(b+1)*r*c], src[(b*tot+off)*c:(b*tot+off+r)*c])
	}
}

// Rows gathers the given rows of x (N,C). Its gradient scatters back. The
// LM head runs on Rows of the decoder output: text positions when training,
// the last position when generating.
func Rows(x *G.Node, idx []int) *G.Node {
	dt := dtypeOf(x)
	sig := fmt.Sprintf("Rows{%v,n=%d,idx=%v}", dt, x.Shape()[0], idx)
	return apply(rowsOp{newBase(sig, tt(2, dt), tt(2, dt)), dt, idx, x.Shape()[0]}, x)
}

// rowsOp is x[idx] from (x).
type rowsOp struct {
	baseOp
	dt  tensor.Dtype
	idx []int
	n   int
}

func (op rowsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := shapeOf(in[0])
	for _, i := range op.idx {
		if i < 0 || i >= s[0] {
			return nil, fmt.Errorf("Rows: index %d out of range for %v", i, s)
		}
	}
	return tensor.Shape{len(op.idx), s[1]}, nil
}
func (op rowsOp) Do(vals ...G.Value) (G.Value, error) {
	c := dense(vals[0]).Shape()[1]
	y := op.out(op.dt, len(op.idx), c)
	switch op.dt {
	case tensor.Float32:
		gatherRows(op.idx, data[float32](vals[0]), y.Data().([]float32), c)
	default:
		gatherRows(op.idx, data[float64](vals[0]), y.Data().([]float64), c)
	}
	return y, nil
}

func (op rowsOp) DiffWRT(n int) []bool { return []bool{true} }
func (op rowsOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	sig := fmt.Sprintf("ScatterRows{%v,n=%d,idx=%v}", op.dt, op.n, op.idx)
	return G.Nodes{apply(scatterRowsOp{newBase(sig, tt(2, op.dt), tt(2, op.dt)), op.dt, op.idx, op.n}, grad)}, nil
}

// scatterRowsOp is Rows' gradient: dx (n,C) with dy's row k added at row
// idx[k], from (dy).
type scatterRowsOp struct {
	baseOp
	dt  tensor.Dtype
	idx []int
	n   int
}

func (op scatterRowsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.n, shapeOf(in[0])[1]}, nil
}
func (op scatterRowsOp) Do(vals ...G.Value) (G.Value, error) {
	c := dense(vals[0]).Shape()[1]
	y := op.out(op.dt, op.n, c)
	switch op.dt {
	case tensor.Float32:
		scatterRows(op.idx, data[float32](vals[0]), y.Data().([]float32), c)
	default:
		scatterRows(op.idx, data[float64](vals[0]), y.Data().([]float64), c)
	}
	return y, nil
}
func (op scatterRowsOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func gatherRows[T Float](idx []int, x, y []T, c int) {
	for k, i := range idx {
		copy(y[k*c:(k+1)*c], x[i*c:(i+1)*c])
	}
}

func scatterRows[T Float](idx []int, dy, y []T, c int) {
	clear(y) // the buffer is reused from the last run
	for k, i := range idx {
		dst, src := y[i*c:(i+1)*c], dy[k*c:(k+1)*c]
		for j, v := range src {
			dst[j] += v
		}
	}
}

// AddRow adds the vector r (C) to every row of x (N,C) without
// materialising a broadcast copy.
func AddRow(x, r *G.Node) *G.Node {
	dt := dtypeOf(x)
	return apply(addRowOp{newBase(fmt.Sprintf("AddRow{%v}", dt), tt(2, dt), tt(2, dt), tt(1, dt)), dt}, x, r)
}

// addRowOp is x + r (broadcast over rows) from (x, r).
type addRowOp struct {
	baseOp
	dt tensor.Dtype
}

func (op addRowOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x, r := shapeOf(in[0]), shapeOf(in[1])
	if len(x) != 2 || r.TotalSize() != x[1] {
		return nil, fmt.Errorf("AddRow: %v and %v do not fit", x, r)
	}
	return x.Clone(), nil
}
func (op addRowOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	y := op.out(op.dt, x.Shape()...)
	switch op.dt {
	case tensor.Float32:
		addRowDo(data[float32](x), data[float32](vals[1]), y.Data().([]float32))
	default:
		addRowDo(data[float64](x), data[float64](vals[1]), y.Data().([]float64))
	}
	return y, nil
}

func addRowDo[T Float](x, r, y []T) {
	c := len(r)
	for i := 0; i < len(x); i += c {
		for j, v := range r {
			y[i+j] = x[i+j] + v
		}
	}
}

func (op addRowOp) DiffWRT(n int) []bool { return []bool{true, true} }
func (op addRowOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, ColSum(grad)}, nil
}
