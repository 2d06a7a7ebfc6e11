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

// The custom ops share this plumbing. An op is a struct embedding baseOp,
// made by newBase with its signature (the op's name and every parameter,
// which is its String and its hash) and its type (input types, result
// type, which give Arity and Type). What is left in an op's file is its
// shape check (InferShape), its kernel (Do) and its backward (SymDiff, which
// applies separate gradient op types: no op changes arity or type by a mode
// flag). gorgonia hash-conses nodes, so a signature that omitted a
// parameter would silently merge two different ops (the bug of the
// built-in SoftMax/Dropout).

// baseOp holds an op's signature, its type and its output buffer, reused
// from run to run so that a compiled graph allocates nothing in steady
// state. Every op node needs its own (newBase makes a fresh one): an output
// value is valid until the same op runs again, which callers must respect
// (copy what you keep across runs).
type baseOp struct {
	sig   string
	hash  uint32
	ins   []hm.Type
	ret   hm.Type
	cache *outCache
}

type outCache struct{ t *tensor.Dense }

// newBase makes an op's plumbing: its signature, the types of its inputs
// and its result, and a fresh output buffer.
func newBase(sig string, ret hm.Type, ins ...hm.Type) baseOp {
	return baseOp{cache: &outCache{}, ins: ins, ret: ret}.named(sig)
}

// named sets the signature (for an op whose signature names its own buffer).
func (b baseOp) named(sig string) baseOp {
	h := fnv.New32a()
	h.Write([]byte(sig))
	b.sig, b.hash = sig, h.Sum32()
	return b
}

func (b baseOp) String() string        { return b.sig }
func (b baseOp) WriteHash(h hash.Hash) { h.Write([]byte(b.sig)) }
func (b baseOp) Hashcode() uint32      { return b.hash }
func (b baseOp) Arity() int            { return len(b.ins) }
func (b baseOp) Type() hm.Type         { return hm.NewFnType(append(slices.Clip(b.ins), b.ret)...) }
func (baseOp) ReturnsPtr() bool        { return false }
func (baseOp) CallsExtern() bool       { return false }
func (baseOp) OverwritesInput() int    { return -1 }
func (b baseOp) DiffWRT(n int) []bool  { return make([]bool, n) }

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

// noGrad is the SymDiff of an op that has none (gradient ops, masks, cache
// writes): asking for one is a programming error.
func noGrad(op fmt.Stringer) (G.Nodes, error) {
	return nil, fmt.Errorf("%v: no gradient (second derivatives and cache writes are not supported)", op)
}

// tt is a tensor type of the given rank; rank 0 is the scalar dtype itself.
func tt(dims int, dt tensor.Dtype) hm.Type {
	if dims == 0 {
		return dt
	}
	return G.TensorType{Dims: dims, Of: dt}
}

// repeatT is n copies of t (the input types of an op with n like inputs).
func repeatT(n int, t hm.Type) []hm.Type {
	ts := make([]hm.Type, n)
	for i := range ts {
		ts[i] = t
	}
	return ts
}

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
