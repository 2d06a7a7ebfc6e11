package graph

import (
	"fmt"
	"hash"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Embed looks up rows of table w (V,C) for ids (N, tensor.Int): (N,C).
// Its gradient scatter-adds into a dense (V,C) tensor; ids out of range are
// an error at run time, not a panic.
func Embed(w, ids *G.Node) *G.Node {
	return apply(embedOp{baseOp: cached(), dt: dtypeOf(w)}, w, ids)
}

type embedOp struct {
	baseOp
	dt   tensor.Dtype
	grad bool // (ids, dy, w-shape) -> dW
	v    int  // table rows (grad only)
}

func (op embedOp) String() string        { return fmt.Sprintf("Embed{%v,grad=%v,v=%d}", op.dt, op.grad, op.v) }
func (op embedOp) WriteHash(h hash.Hash) { writeHash(h, op) }
func (op embedOp) Hashcode() uint32      { return hashcode(op) }
func (op embedOp) Arity() int            { return 2 }
func (op embedOp) Type() hm.Type {
	if op.grad {
		return fnType(tt(1, tensor.Int), tt(2, op.dt), tt(2, op.dt))
	}
	return fnType(tt(2, op.dt), tt(1, tensor.Int), tt(2, op.dt))
}
func (op embedOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if op.grad {
		return tensor.Shape{op.v, shapeOf(in[1])[1]}, nil
	}
	w, ids := shapeOf(in[0]), shapeOf(in[1])
	if len(w) != 2 {
		return nil, fmt.Errorf("Embed: want a (V,C) table, got %v", w)
	}
	return tensor.Shape{ids.TotalSize(), w[1]}, nil
}
func (op embedOp) Do(vals ...G.Value) (G.Value, error) {
	if op.grad {
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

func (op embedOp) DiffWRT(n int) []bool { return []bool{true, false} }
func (op embedOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	w, ids := inputs[0], inputs[1]
	dw := apply(embedOp{baseOp: cached(), dt: op.dt, grad: true, v: w.Shape()[0]}, ids, grad)
	return G.Nodes{dw, nil}, nil
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
	return apply(concatSeqOp{baseOp: cached(), dt: dtypeOf(xs[0]), b: b, rows: rows, part: -1}, xs...)
}

type concatSeqOp struct {
	baseOp
	dt   tensor.Dtype
	b    int
	rows []int
	part int // >= 0: the gradient op extracting input part from dy
}

func (op concatSeqOp) String() string {
	return fmt.Sprintf("ConcatSeq{%v,b=%d,rows=%v,part=%d}", op.dt, op.b, op.rows, op.part)
}
func (op concatSeqOp) WriteHash(h hash.Hash) { writeHash(h, op) }
func (op concatSeqOp) Hashcode() uint32      { return hashcode(op) }
func (op concatSeqOp) Arity() int {
	if op.part >= 0 {
		return 1
	}
	return len(op.rows)
}
func (op concatSeqOp) Type() hm.Type {
	ts := make([]hm.Type, op.Arity()+1)
	for i := range ts {
		ts[i] = tt(2, op.dt)
	}
	return fnType(ts...)
}
func (op concatSeqOp) total() int {
	t := 0
	for _, r := range op.rows {
		t += r
	}
	return t
}
func (op concatSeqOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	c := shapeOf(in[0])[1]
	if op.part >= 0 {
		return tensor.Shape{op.b * op.rows[op.part], c}, nil
	}
	for i, r := range op.rows {
		if s := shapeOf(in[i]); len(s) != 2 || s[0] != op.b*r || s[1] != c {
			return nil, fmt.Errorf("%v: input %d has shape %v", op, i, s)
		}
	}
	return tensor.Shape{op.b * op.total(), c}, nil
}
func (op concatSeqOp) Do(vals ...G.Value) (G.Value, error) {
	c := dense(vals[0]).Shape()[1]
	var y *tensor.Dense
	if op.part >= 0 {
		y = op.out(op.dt, op.b*op.rows[op.part], c)
	} else {
		y = op.out(op.dt, op.b*op.total(), c)
	}
	switch op.dt {
	case tensor.Float32:
		concatSeqDo[float32](op, vals, y.Data().([]float32), c)
	default:
		concatSeqDo[float64](op, vals, y.Data().([]float64), c)
	}
	return y, nil
}

func concatSeqDo[T Float](op concatSeqOp, vals []G.Value, y []T, c int) {
	tot := op.total()
	if op.part >= 0 {
		src := data[T](vals[0])
		off := 0
		for _, r := range op.rows[:op.part] {
			off += r
		}
		r := op.rows[op.part]
		for b := 0; b < op.b; b++ {
			copy(y[b*r*c:(b+1)*r*c], src[(b*tot+off)*c:(b*tot+off+r)*c])
		}
		return
	}
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
		g := op
		g.baseOp = cached()
		g.part = i
		out[i] = apply(g, grad)
	}
	return out, nil
}

// Rows gathers the given rows of x (N,C). Its gradient scatters back. The
// LM head runs on Rows of the decoder output: text positions when training,
// the last position when generating.
func Rows(x *G.Node, idx []int) *G.Node {
	return apply(rowsOp{baseOp: cached(), dt: dtypeOf(x), idx: idx, n: x.Shape()[0]}, x)
}

type rowsOp struct {
	baseOp
	dt      tensor.Dtype
	idx     []int
	n       int
	scatter bool
}

func (op rowsOp) String() string {
	return fmt.Sprintf("Rows{%v,n=%d,scatter=%v,idx=%v}", op.dt, op.n, op.scatter, op.idx)
}
func (op rowsOp) WriteHash(h hash.Hash) { writeHash(h, op) }
func (op rowsOp) Hashcode() uint32      { return hashcode(op) }
func (op rowsOp) Arity() int            { return 1 }
func (op rowsOp) Type() hm.Type         { return fnType(tt(2, op.dt), tt(2, op.dt)) }
func (op rowsOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := shapeOf(in[0])
	if op.scatter {
		return tensor.Shape{op.n, s[1]}, nil
	}
	for _, i := range op.idx {
		if i < 0 || i >= s[0] {
			return nil, fmt.Errorf("Rows: index %d out of range for %v", i, s)
		}
	}
	return tensor.Shape{len(op.idx), s[1]}, nil
}
func (op rowsOp) Do(vals ...G.Value) (G.Value, error) {
	c := dense(vals[0]).Shape()[1]
	var y *tensor.Dense
	if op.scatter {
		y = op.out(op.dt, op.n, c)
	} else {
		y = op.out(op.dt, len(op.idx), c)
	}
	switch op.dt {
	case tensor.Float32:
		rowsDo(op, data[float32](vals[0]), y.Data().([]float32), c)
	default:
		rowsDo(op, data[float64](vals[0]), y.Data().([]float64), c)
	}
	return y, nil
}

func rowsDo[T Float](op rowsOp, x, y []T, c int) {
	if op.scatter {
		clear(y) // the buffer is reused from the last run
	}
	for k, i := range op.idx {
		if op.scatter {
			dst, src := y[i*c:(i+1)*c], x[k*c:(k+1)*c]
			for j, v := range src {
				dst[j] += v
			}
		} else {
			copy(y[k*c:(k+1)*c], x[i*c:(i+1)*c])
		}
	}
}

func (op rowsOp) DiffWRT(n int) []bool { return []bool{true} }
func (op rowsOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	g := op
	g.baseOp = cached()
	g.scatter = true
	return G.Nodes{apply(g, grad)}, nil
}

// AddRow adds the vector r (C) to every row of x (N,C) without
// materialising a broadcast copy.
func AddRow(x, r *G.Node) *G.Node { return apply(addRowOp{baseOp: cached(), dt: dtypeOf(x)}, x, r) }

type addRowOp struct {
	baseOp
	dt tensor.Dtype
}

func (op addRowOp) String() string        { return fmt.Sprintf("AddRow{%v}", op.dt) }
func (op addRowOp) WriteHash(h hash.Hash) { writeHash(h, op) }
func (op addRowOp) Hashcode() uint32      { return hashcode(op) }
func (op addRowOp) Arity() int            { return 2 }
func (op addRowOp) Type() hm.Type         { return fnType(tt(2, op.dt), tt(1, op.dt), tt(2, op.dt)) }
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
