package graph

import (
	"fmt"
	"hash"
	"hash/fnv"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The custom ops below share this plumbing. Each op's String() spells out
// every parameter, and WriteHash writes String(): gorgonia hash-conses nodes,
// so an op whose hash omitted a parameter would be silently merged with a
// different one (the bug of the built-in SoftMax/Dropout).

// baseOp holds an op's output buffer, reused from run to run so that a
// compiled graph allocates nothing in steady state. Every op node needs its
// own (ops copied in SymDiff get a fresh one via cached()): an output value
// is valid until the same op runs again, which callers must respect (copy
// what you keep across runs).
type baseOp struct{ cache *outCache }

type outCache struct{ t *tensor.Dense }

func cached() baseOp { return baseOp{cache: &outCache{}} }

// out returns the op's output tensor of the given shape: last run's if it
// fits, else a fresh one (which it keeps).
func (b baseOp) out(dt tensor.Dtype, shape ...int) *tensor.Dense {
	if c := b.cache; c != nil && c.t != nil && c.t.Dtype() == dt && slices.Equal([]int(c.t.Shape()), shape) {
		return c.t
	}
	t := newOut(dt, shape...)
	if b.cache != nil {
		b.cache.t = t
	}
	return t
}

func (baseOp) ReturnsPtr() bool     { return false }
func (baseOp) CallsExtern() bool    { return false }
func (baseOp) OverwritesInput() int { return -1 }

func writeHash(h hash.Hash, s fmt.Stringer) { fmt.Fprint(h, s.String()) }

func hashcode(s fmt.Stringer) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, s.String())
	return h.Sum32()
}

// tt is a tensor type of the given rank; rank 0 is the scalar dtype itself.
func tt(dims int, dt tensor.Dtype) hm.Type {
	if dims == 0 {
		return dt
	}
	return G.TensorType{Dims: dims, Of: dt}
}

func fnType(ts ...hm.Type) hm.Type { return hm.NewFnType(ts...) }

func dense(v G.Value) *tensor.Dense {
	d, ok := v.(*tensor.Dense)
	if !ok {
		panic(fmt.Sprintf("graph: expected a *tensor.Dense, got %T", v))
	}
	return d
}

func data[T Float](v G.Value) []T { return dense(v).Data().([]T) }

func ints(v G.Value) []int { return dense(v).Data().([]int) }

// scalarOf reads a scalar gradient seed, which arrives as a 0-d tensor or a
// gorgonia scalar value.
func scalarOf(v G.Value) float64 {
	switch s := v.(type) {
	case *G.F32:
		return float64(*s)
	case *G.F64:
		return float64(*s)
	case *tensor.Dense:
		switch d := s.Data().(type) {
		case float32:
			return float64(d)
		case float64:
			return d
		case []float32:
			return float64(d[0])
		case []float64:
			return d[0]
		}
	}
	panic(fmt.Sprintf("graph: cannot read a scalar from %T", v))
}

// newOut allocates an output tensor of the given dtype and shape.
func newOut(dt tensor.Dtype, shape ...int) *tensor.Dense {
	return tensor.New(tensor.Of(dt), tensor.WithShape(shape...))
}

func shapeOf(ds G.DimSizer) tensor.Shape {
	s, ok := ds.(tensor.Shape)
	if !ok {
		panic(fmt.Sprintf("graph: expected a tensor.Shape, got %T", ds))
	}
	return s
}

func dtypeOf(n *G.Node) tensor.Dtype { return n.Dtype() }

// apply wraps G.ApplyOp; graph construction errors are programming errors in
// the model definition (wrong shapes wired together), so they panic with the
// op named, and Builder.Build turns them into errors.
func apply(op G.Op, children ...*G.Node) *G.Node {
	n, err := G.ApplyOp(op, children...)
	if err != nil {
		panic(buildError{fmt.Errorf("%v: %w", op, err)})
	}
	return n
}

// buildError carries a graph-construction failure through panic to Build.
type buildError struct{ err error }

// allTrue is DiffWRT for ops differentiable in every input.
func allTrue(n int) []bool {
	d := make([]bool, n)
	for i := range d {
		d[i] = true
	}
	return d
}
