package graph

import (
	"fmt"
	"slices"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Builder builds one gorgonia graph over a set of Params. It gives each
// parameter exactly one node per graph, bound to the parameter's own tensor
// (no copy), and carries what differs between graphs built from the same
// model definition: training mode and the dropout noise source.
type Builder struct {
	G     *G.ExprGraph
	Dtype tensor.Dtype
	Train bool   // dropout on
	Noise *Noise // dropout masks (training graphs)
	nodes map[nodeKey]*G.Node
	order []nodeKey
}

type nodeKey struct {
	p     *Param
	shape string
}

// NewBuilder starts a graph. train turns dropout on.
func NewBuilder(dt tensor.Dtype, train bool) *Builder {
	return &Builder{G: G.NewGraph(), Dtype: dt, Train: train, Noise: &Noise{}, nodes: map[nodeKey]*G.Node{}}
}

// Param returns p's node in this graph, viewed with the given shape (the
// checkpoint's shape when none is given). A view with another shape shares
// p's memory, e.g. a conv kernel (C,3,P,P) used as a matrix (C,3·P·P), and
// its gradient has the view's shape and p's element order.
func (b *Builder) Param(p *Param, shape ...int) *G.Node {
	if len(shape) == 0 {
		shape = p.Shape()
	}
	key := nodeKey{p, fmt.Sprint(shape)}
	if n, ok := b.nodes[key]; ok {
		return n
	}
	v := p.Value
	if !slices.Equal([]int(v.Shape()), shape) { // not Shape.Eq: it treats (n) and (1,n) as equal
		if tensor.Shape(shape).TotalSize() != v.Shape().TotalSize() {
			panic(buildError{fmt.Errorf("parameter %s: cannot view %v as %v", p.Name, v.Shape(), shape)})
		}
		v = tensor.New(tensor.WithBacking(p.Value.Data()), tensor.WithShape(shape...))
	}
	n := G.NewTensor(b.G, b.Dtype, len(shape), G.WithShape(shape...), G.WithValue(v), G.WithName(p.Name+fmt.Sprint(shape)))
	b.nodes[key] = n
	b.order = append(b.order, key)
	return n
}

// Learnables returns the parameter nodes of this graph (one per view) and
// the parameters they belong to, in creation order.
func (b *Builder) Learnables() (G.Nodes, []*Param) {
	nodes := make(G.Nodes, len(b.order))
	params := make([]*Param, len(b.order))
	for i, k := range b.order {
		nodes[i], params[i] = b.nodes[k], k.p
	}
	return nodes, params
}

// Dropout applies dropout with probability p in training graphs and is the
// identity otherwise.
func (b *Builder) Dropout(x *G.Node, p float64) *G.Node {
	if !b.Train {
		return x
	}
	return Dropout(x, p, b.Noise)
}

// Build runs fn, turning a graph-construction failure (mis-wired shapes in a
// model definition) into an error.
func Build(fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			be, ok := r.(buildError)
			if !ok {
				panic(r)
			}
			err = be.err
		}
	}()
	fn()
	return nil
}

// Const makes an integer constant node (ids, positions) in this graph.
func (b *Builder) Const(name string, v []int) *G.Node {
	t := tensor.New(tensor.WithShape(len(v)), tensor.WithBacking(v))
	return G.NewTensor(b.G, tensor.Int, 1, G.WithShape(len(v)), G.WithValue(t), G.WithName(fmt.Sprintf("%s%d", name, len(v))))
}

// Fail aborts the Build in progress with err (for errors from gorgonia's
// own graph functions, such as G.Grad).
func Fail(err error) { panic(buildError{err}) }
