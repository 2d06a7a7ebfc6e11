package graph

import (
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Engine is the tensor engine of this package's compiled graphs
// (TapeOptions): gorgonia's standard engine, except that the element-wise
// sum of two float32 tensors of one size runs on every core with AVX-512.
// That sum is how gorgonia's backward pass adds up the gradients a node
// gets from several readers (a residual stream read by a LayerNorm and an
// Add, a LayerNorm's output read by the query, key and value Linears): 72
// sums of a (tokens × hidden) matrix per git-base step, which the standard
// engine does on one core. One rounded addition per element either way, so
// the same bits.
type Engine struct{ tensor.StdEng }

// TapeOptions are the options of a tape machine over a graph of this
// package: its tensors use Engine.
func TapeOptions() []G.VMOpt { return []G.VMOpt{G.WithEngine(Engine{})} }

// Add is StdEng.Add, with dense float32 operands of one size summed by
// add32 when the result goes into a given tensor (reuse) or over a (the
// unsafe form the tape machine uses to overwrite an input).
func (e Engine) Add(a, b tensor.Tensor, opts ...tensor.FuncOpt) (tensor.Tensor, error) {
	ad, aok := a.(*tensor.Dense)
	bd, bok := b.(*tensor.Dense)
	if !aok || !bok || ad.Dtype() != tensor.Float32 || bd.Dtype() != tensor.Float32 || !plain(ad) || !plain(bd) ||
		!ad.Shape().Eq(bd.Shape()) {
		return e.StdEng.Add(a, b, opts...)
	}
	fo := tensor.ParseFuncOpts(opts...) // from the tensor package's pool, which has no exported return
	if fo.Incr() != nil || fo.As().Type != nil {
		return e.StdEng.Add(a, b, opts...)
	}
	dst := ad
	switch r := fo.Reuse(); {
	case r != nil:
		rd, ok := r.(*tensor.Dense)
		if !ok || rd.Dtype() != tensor.Float32 || !plain(rd) || !rd.Shape().Eq(ad.Shape()) {
			return e.StdEng.Add(a, b, opts...)
		}
		dst = rd
	case fo.Safe():
		return e.StdEng.Add(a, b, opts...) // a new tensor: the standard engine allocates it
	}
	add32(dst.Float32s(), ad.Float32s(), bd.Float32s())
	return dst, nil
}

// plain reports whether t's data is its elements in order: not a view,
// no pending transpose, no mask (StdEng iterates over those).
func plain(t *tensor.Dense) bool { return !t.IsView() && !t.RequiresIterator() }

// add32 sets dst = a + b (all of one length; dst may be a or b), in
// parallel chunks.
func add32(dst, a, b []float32) {
	parallelFor(len(dst), 1<<15, func(lo, hi int) {
		addF32(a[lo:hi], b[lo:hi], dst[lo:hi])
	})
}
