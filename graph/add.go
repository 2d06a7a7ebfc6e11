package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Add returns a + c for same-shaped tensors. Unlike G.Add it never writes
// into an input, so every intermediate value stays readable after a run
// (hidden states are model outputs too).
func Add(a, c *G.Node) *G.Node {
	dt, t := dtypeOf(a), tt(a.Dims(), dtypeOf(a))
	return apply(addOp{newBase(fmt.Sprintf("Add{%v,%d}", dt, a.Dims()), t, t, t), dt}, a, c)
}

// addOp is a + c from (a, c).
type addOp struct {
	baseOp
	dt tensor.Dtype
}

func (op addOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	a, c := shapeOf(in[0]), shapeOf(in[1])
	if !a.Eq(c) {
		return nil, fmt.Errorf("Add: shapes %v and %v differ", a, c)
	}
	return a.Clone(), nil
}
func (op addOp) Do(vals ...G.Value) (G.Value, error) {
	a := dense(vals[0])
	y := op.out(op.dt, a.Shape()...)
	switch op.dt {
	case tensor.Float32:
		a, c, y := data[float32](a), data[float32](vals[1]), y.Float32s()
		parallelFor(len(a), 1<<15, func(lo, hi int) { addF32(a[lo:hi], c[lo:hi], y[lo:hi]) })
	default:
		a, c, y := data[float64](a), data[float64](vals[1]), y.Float64s()
		parallelFor(len(a), 1<<15, func(lo, hi int) { addRef(a[lo:hi], c[lo:hi], y[lo:hi]) })
	}
	return y, nil
}

// addRef sets y = a + c (the reference for addF32's vector kernel).
func addRef[T Float](a, c, y []T) {
	for i := range a {
		y[i] = a[i] + c[i]
	}
}

func (op addOp) DiffWRT(n int) []bool { return []bool{true, true} }
func (op addOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	return G.Nodes{grad, grad}, nil
}
