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
// model definition: whether and how much dropout the graph applies
// (WithDropout), the dropout noise source and the precision of the matrix
// products (WithPrecision).
type Builder struct {
	G       *G.ExprGraph
	Dtype   tensor.Dtype
	Noise   *Noise // dropout masks (graphs built WithDropout)
	dropout DropoutRates
	nodes   map[nodeKey]*G.Node
	order   []nodeKey
	bf16    *bf16Scratch  // shared by this graph's LinearBF16 ops (bf16.go)
	sgemm   *sgemmScratch // shared by this graph's float32 Linear ops (sgemm.go)
	// precision is the arithmetic of the matrix products (WithPrecision,
	// precision.go).
	precision Precision
	// batchInvariant: the Linear ops being built give each row the bits it
	// gets alone (BatchInvariant).
	batchInvariant bool
}

// DropoutSite names a kind of place where a layer applies dropout (for
// example a model's hidden-state or attention-probability dropout). Layers
// declare their sites; the graph being built decides the rates.
type DropoutSite string

// DropoutRates maps dropout sites to their drop probabilities; a site not
// listed drops nothing.
type DropoutRates map[DropoutSite]float64

// BuilderOption configures NewBuilder.
type BuilderOption func(*Builder)

// WithDropout builds a training-mode graph that applies dropout at the given
// rates. Without it a graph has no dropout (inference, evaluation and the
// parity checks).
func WithDropout(rates DropoutRates) BuilderOption {
	return func(b *Builder) { b.dropout = rates }
}

// BatchInvariant builds the Linear ops that fn adds (float32 and bf16)
// so that each row of x gets the bits it gets in a product of one row,
// whatever the number of rows: a decode step's sequence, or a prefix's
// last-position row, then gets the same logits, bit for bit, alone or
// beside any number of others (a full serving batch, many images with many
// beams). Outside it a product takes the kernels that are fastest for its
// row count: sgemm above 8 float32 rows, widening and sgemm above 16 bf16
// rows, and, without AMX, VDPBF16PS on rounded activations for bf16
// activations; each computes a row's sums in another order (or from other
// inputs) than the few-row kernels. (Where AMX runs, bf16-full's tile
// products and packed-only weights' are batch-invariant already.) It costs
// speed above those row counts only, so
// it is for products whose row count is small alone and grows with the
// batch: not for a prefix's all-token products, which take the many-row
// kernels alone too.
func (b *Builder) BatchInvariant(fn func()) {
	old := b.batchInvariant
	b.batchInvariant = true
	defer func() { b.batchInvariant = old }()
	fn()
}

type nodeKey struct {
	p     *Param
	shape string
}

// NewBuilder starts a graph.
func NewBuilder(dt tensor.Dtype, opts ...BuilderOption) *Builder {
	b := &Builder{G: G.NewGraph(), Dtype: dt, Noise: &Noise{}, nodes: map[nodeKey]*G.Node{}}
	for _, o := range opts {
		o(b)
	}
	return b
}

// DropoutRate is the drop probability of site in this graph: 0 unless the
// graph was built WithDropout a rate for it.
func (b *Builder) DropoutRate(site DropoutSite) float64 { return b.dropout[site] }

// Param returns p's node in this graph, viewed with the given shape (the
// checkpoint's shape when none is given). A view with another shape shares
// p's memory, e.g. a conv kernel (C,3,P,P) used as a matrix (C,3·P·P), and
// its gradient has the view's shape and p's element order.
func (b *Builder) Param(p *Param, shape ...int) *G.Node {
	if len(shape) == 0 {
		shape = p.Shape()
	}
	if p.IsBF16() {
		panic(buildError{fmt.Errorf("parameter %s holds bf16 weights, which only inference layers read (train and save in float32)", p.Name)})
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

// Dropout applies site's dropout to x: the identity unless the graph was
// built WithDropout a positive rate for site.
func (b *Builder) Dropout(x *G.Node, site DropoutSite) *G.Node {
	return Dropout(x, b.DropoutRate(site), b.Noise)
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
