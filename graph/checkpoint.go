package graph

import (
	"fmt"
	"slices"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Gradient checkpointing (activation recomputation, HF's
// gradient_checkpointing). A Segment is one block of a model (a transformer
// layer) compiled on its own, twice: a forward graph, and a graph of the
// forward and its backward. In the model's graph each application of the
// block is one Checkpoint op: its forward runs the segment's forward graph
// and keeps only the block's output; its backward op runs the segment's
// full graph again from the block's input and the output gradient, which
// recomputes the block's activations, and returns the input and parameter
// gradients. So the model's graph keeps one activation per block instead of
// all of them, at the cost of one more forward pass of every block.
//
// A segment is compiled once over a template block's parameters and run for
// every block of the same kind and shape: each run binds that block's
// parameters to the segment's parameter nodes, so the segment's buffers
// (one block's activations and gradients) are shared by all blocks.

// Segment is a compiled block for Checkpoint.
type Segment struct {
	name  string
	dt    tensor.Dtype
	shape []int // of the block's input and output
	extra [][]int
	nparm []int // sizes of the parameters, in template order
	pshp  [][]int
	fwd   segGraph
	full  segGraph
}

type segGraph struct {
	b      *Builder
	x      *G.Node
	extra  G.Nodes
	params G.Nodes
	dy     *G.Node // full graph only
	y      *G.Node
	grads  G.Nodes // full graph only: dx, then the parameters'
	vm     G.VM
}

// NewSegment compiles fn, a block mapping x (of the given shape) and extra
// inputs that take no gradient (a mask) to an output of x's shape, over the
// template parameters (every parameter fn uses, in a fixed order). The
// segment's graphs have the dropout rates of b (the model's builder).
func NewSegment(b *Builder, name string, template []*Param, x []int, extra [][]int, fn func(b *Builder, x *G.Node, extra G.Nodes) *G.Node) (*Segment, error) {
	s := &Segment{name: name, dt: b.Dtype, shape: slices.Clone(x), extra: extra}
	for _, p := range template {
		s.nparm = append(s.nparm, p.Value.Shape().TotalSize())
		s.pshp = append(s.pshp, p.Shape())
	}
	for _, full := range []bool{false, true} {
		g := &s.fwd
		if full {
			g = &s.full
		}
		if err := s.build(b, g, template, full, fn); err != nil {
			s.Close()
			return nil, fmt.Errorf("segment %s: %w", name, err)
		}
	}
	return s, nil
}

func (s *Segment) build(outer *Builder, g *segGraph, template []*Param, full bool, fn func(b *Builder, x *G.Node, extra G.Nodes) *G.Node) error {
	g.b = NewBuilder(s.dt, WithDropout(outer.dropout), WithPrecision(outer.precision))
	var keep G.Nodes
	err := Build(func() {
		g.x = G.NewTensor(g.b.G, s.dt, len(s.shape), G.WithShape(s.shape...), G.WithValue(newOut(s.dt, s.shape...)), G.WithName(s.name+".x"))
		for i, sh := range s.extra {
			g.extra = append(g.extra, G.NewTensor(g.b.G, s.dt, len(sh), G.WithShape(sh...), G.WithValue(newOut(s.dt, sh...)), G.WithName(fmt.Sprintf("%s.extra%d", s.name, i))))
		}
		for _, p := range template {
			g.params = append(g.params, g.b.Param(p))
		}
		g.y = fn(g.b, g.x, g.extra)
		if !slices.Equal([]int(g.y.Shape()), s.shape) {
			Fail(fmt.Errorf("block output %v, want its input's shape %v", g.y.Shape(), s.shape))
		}
		if nodes, _ := g.b.Learnables(); len(nodes) != len(template) {
			Fail(fmt.Errorf("the block uses %d parameters, the template lists %d", len(nodes), len(template)))
		}
		keep = G.Nodes{g.y}
		if full {
			g.dy = G.NewTensor(g.b.G, s.dt, len(s.shape), G.WithShape(s.shape...), G.WithValue(newOut(s.dt, s.shape...)), G.WithName(s.name+".dy"))
			loss := apply(newVJP(s.dt, len(s.shape)), g.y, g.dy)
			grads, err := G.Grad(loss, append(G.Nodes{g.x}, g.params...)...)
			if err != nil {
				Fail(err)
			}
			g.grads = grads
			keep = grads
		}
	})
	if err != nil {
		return err
	}
	if _, err := ShareBuffers(g.b.G, keep); err != nil {
		return err
	}
	g.vm = G.NewTapeMachine(g.b.G, TapeOptions()...)
	return nil
}

// Close releases the segment's machines.
func (s *Segment) Close() {
	for _, g := range []*segGraph{&s.fwd, &s.full} {
		if g.vm != nil {
			g.vm.Close()
		}
	}
}

// run binds the block's input, extra inputs, parameters and (full graph)
// output gradient, all values of the model's graph, and runs g with the
// block's dropout seed.
func (s *Segment) run(g *segGraph, seed uint64, vals []G.Value) error {
	i := 0
	bind := func(n *G.Node) error {
		err := G.Let(n, vals[i])
		i++
		return err
	}
	if err := bind(g.x); err != nil {
		return err
	}
	for _, n := range g.extra {
		if err := bind(n); err != nil {
			return err
		}
	}
	for _, n := range g.params {
		if err := bind(n); err != nil {
			return err
		}
	}
	if g.dy != nil {
		if err := bind(g.dy); err != nil {
			return err
		}
	}
	g.b.Noise.SetSeed(seed)
	g.vm.Reset()
	return g.vm.RunAll()
}

// Checkpoint applies the segment to x with the given extra inputs and this
// block's parameter nodes (the template's order and shapes: b.Param of the
// block's parameters), recomputing its activations in the backward pass.
func Checkpoint(b *Builder, s *Segment, x *G.Node, extra, params G.Nodes) *G.Node {
	if len(params) != len(s.nparm) || len(extra) != len(s.extra) {
		panic(buildError{fmt.Errorf("checkpoint %s: %d parameters and %d extra inputs, the segment has %d and %d", s.name, len(params), len(extra), len(s.nparm), len(s.extra))})
	}
	ins := append(G.Nodes{x}, extra...)
	for i, p := range params {
		if !slices.Equal([]int(p.Shape()), s.pshp[i]) {
			panic(buildError{fmt.Errorf("checkpoint %s: parameter %s is %v, the segment's is %v", s.name, p.Name(), p.Shape(), s.pshp[i])})
		}
	}
	ins = append(ins, params...)
	id := b.Noise.nextID()
	t := tt(len(s.shape), s.dt)
	its := make([]hm.Type, len(ins))
	for i, n := range ins {
		its[i] = n.Type()
	}
	sig := fmt.Sprintf("Checkpoint{%s,%v,id=%d}", s.name, s.shape, id)
	op := ckptOp{newBase(sig, t, its...), s, b.Noise, id}
	return apply(op, ins...)
}

// ckptOp is the block's output from (x, extra..., params...).
type ckptOp struct {
	baseOp
	s     *Segment
	noise *Noise
	id    uint64
}

func (op ckptOp) seed() uint64 { return mix64(op.noise.Seed() ^ mix64(op.id)) }

func (op ckptOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(slices.Clone(op.s.shape)), nil
}

func (op ckptOp) Do(vals ...G.Value) (G.Value, error) {
	if err := op.s.run(&op.s.fwd, op.seed(), vals); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	y := op.out(op.s.dt, op.s.shape...)
	copyValue(y, op.s.fwd.y.Value())
	return y, nil
}

func (op ckptOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	d[0] = true
	for i := 1 + len(op.s.extra); i < n; i++ {
		d[i] = true
	}
	return d
}

func (op ckptOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	s := op.s
	total := tensor.Shape(s.shape).TotalSize()
	for _, n := range s.nparm {
		total += n
	}
	its := make([]hm.Type, 0, len(inputs)+1)
	for _, n := range inputs {
		its = append(its, n.Type())
	}
	its = append(its, grad.Type())
	sig := fmt.Sprintf("CheckpointGrad{%s,%v,id=%d}", s.name, s.shape, op.id)
	g := ckptGradOp{newBase(sig, tt(1, s.dt), its...), s, op.noise, op.id, total}
	all := apply(g, append(slices.Clone(inputs), grad)...)
	out := make(G.Nodes, len(inputs))
	off := 0
	out[0] = flatView(all, off, s.shape)
	off += tensor.Shape(s.shape).TotalSize()
	for i, n := range s.nparm {
		out[1+len(s.extra)+i] = flatView(all, off, s.pshp[i])
		off += n
	}
	return out, nil
}

// ckptGradOp is [dx; dparams...] flattened, from (x, extra..., params...,
// dy): the segment's full graph, rerun.
type ckptGradOp struct {
	baseOp
	s     *Segment
	noise *Noise
	id    uint64
	total int
}

func (op ckptGradOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape{op.total}, nil
}

func (op ckptGradOp) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	seed := ckptOp{s: s, noise: op.noise, id: op.id}.seed()
	if err := s.run(&s.full, seed, vals); err != nil {
		return nil, fmt.Errorf("%v: %w", op, err)
	}
	y := op.out(s.dt, op.total)
	off := 0
	for _, g := range s.full.grads {
		switch d := y.Data().(type) {
		case []float32:
			off += copy(d[off:], data[float32](g.Value()))
		case []float64:
			off += copy(d[off:], data[float64](g.Value()))
		}
	}
	return y, nil
}

func (op ckptGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

// sliceOf is elements [off, off+n) of a 1-D tensor, as a tensor sharing its
// memory.
func sliceOf(t *tensor.Dense, off, n int) *tensor.Dense {
	switch d := t.Data().(type) {
	case []float32:
		return tensor.New(tensor.WithBacking(d[off:off+n]), tensor.WithShape(n))
	default:
		return tensor.New(tensor.WithBacking(t.Data().([]float64)[off:off+n]), tensor.WithShape(n))
	}
}

// copyValue copies src's elements into dst (same dtype and size).
func copyValue(dst *tensor.Dense, src G.Value) {
	switch d := dst.Data().(type) {
	case []float32:
		copy(d, data[float32](src))
	case []float64:
		copy(d, data[float64](src))
	}
}

// flatView is elements [off, off+size(shape)) of a 1-D tensor, viewed with
// shape (no copy).
func flatView(x *G.Node, off int, shape []int) *G.Node {
	dt := dtypeOf(x)
	sig := fmt.Sprintf("FlatView{%v,%d,%v}", dt, off, shape)
	return apply(flatViewOp{newBase(sig, tt(len(shape), dt), tt(1, dt)), dt, off, slices.Clone(shape)}, x)
}

type flatViewOp struct {
	baseOp
	dt    tensor.Dtype
	off   int
	shape []int
}

func (op flatViewOp) ReturnsPtr() bool { return true }
func (op flatViewOp) InferShape(...G.DimSizer) (tensor.Shape, error) {
	return tensor.Shape(slices.Clone(op.shape)), nil
}
func (op flatViewOp) Do(vals ...G.Value) (G.Value, error) {
	n := tensor.Shape(op.shape).TotalSize()
	t := sliceOf(dense(vals[0]), op.off, n)
	if err := t.Reshape(op.shape...); err != nil {
		return nil, err
	}
	return t, nil
}
func (op flatViewOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

// newVJP is Σ y·dy from (y, dy): a scalar whose gradient with respect to y
// is dy, so that G.Grad of it gives the vector-Jacobian product of the
// block with the output gradient dy.
func newVJP(dt tensor.Dtype, dims int) vjpOp {
	t := tt(dims, dt)
	return vjpOp{newBase(fmt.Sprintf("VJP{%v,%d}", dt, dims), dt, t, t), dt, dims}
}

type vjpOp struct {
	baseOp
	dt   tensor.Dtype
	dims int
}

func (op vjpOp) InferShape(...G.DimSizer) (tensor.Shape, error) { return tensor.ScalarShape(), nil }
func (op vjpOp) Do(vals ...G.Value) (G.Value, error) {
	// The value is never read (only its gradient is): the dot product is
	// not computed.
	if op.dt == tensor.Float32 {
		return G.NewF32(0), nil
	}
	return G.NewF64(0), nil
}
func (op vjpOp) DiffWRT(n int) []bool { return []bool{true, false} }
func (op vjpOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	// d/dy Σ y·dy = dy (times the seed, which G.Grad sets to 1).
	return G.Nodes{apply(seedGradOp{newBase(fmt.Sprintf("VJPGrad{%v,%d}", op.dt, op.dims), tt(op.dims, op.dt), tt(op.dims, op.dt), op.dt), op.dt}, inputs[1], grad), nil}, nil
}

// seedGradOp is dy·seed from (dy, seed).
type seedGradOp struct {
	baseOp
	dt tensor.Dtype
}

func (op seedGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return shapeOf(in[0]).Clone(), nil
}
func (op seedGradOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	y := op.out(op.dt, x.Shape()...)
	k := scalarOf(vals[1])
	switch d := y.Data().(type) {
	case []float32:
		for i, v := range data[float32](x) {
			d[i] = v * float32(k)
		}
	case []float64:
		for i, v := range data[float64](x) {
			d[i] = v * k
		}
	}
	return y, nil
}
func (op seedGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }
