package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// MaskShape is the size of an attention mask: B examples of Tq queries
// over Tk keys each, the first Prefix keys of which form a bidirectional
// prefix.
type MaskShape struct{ B, Tq, Tk, Prefix int }

// PrefixCausalMask builds the additive attention mask (B,Tq,Tk) of a prefix
// language model (UniLM's sequence-to-sequence mask, which is GIT's): every
// query sees every prefix key; a key after the prefix is seen only by
// queries at or after its position (causal), and only if it is kept (not
// padding). Query i of example b sits at key position qpos[b·Tq+i]; a query
// inside the prefix therefore sees the prefix only. keep (B·(Tk-Prefix)
// ints, 0 = padding) may be nil: every key is kept. Hidden keys get -Inf,
// whose exp is exactly 0. Positions and keep are inputs, so one compiled
// graph serves every batch and every decode step. dt is the mask's (the
// attention's) dtype.
func PrefixCausalMask(dt tensor.Dtype, qpos, keep *G.Node, s MaskShape) *G.Node {
	ins := G.Nodes{qpos}
	if keep != nil {
		ins = append(ins, keep)
	}
	sig := fmt.Sprintf("PrefixCausalMask{%v,%+v,keep=%v}", dt, s, keep != nil)
	b := newBase(sig, tt(3, dt), repeatT(len(ins), tt(1, tensor.Int))...)
	return apply(maskOp{b, dt, s, keep != nil}, ins...)
}

// maskOp is the additive mask from (qpos[, keep]). It takes no gradient.
type maskOp struct {
	baseOp
	dt   tensor.Dtype
	s    MaskShape
	keep bool
}

func (op maskOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.s
	if got := shapeOf(in[0]).TotalSize(); got != s.B*s.Tq {
		return nil, fmt.Errorf("%v: %d query positions, want %d", op, got, s.B*s.Tq)
	}
	if op.keep {
		if got := shapeOf(in[1]).TotalSize(); got != s.B*(s.Tk-s.Prefix) {
			return nil, fmt.Errorf("%v: %d keep flags, want %d", op, got, s.B*(s.Tk-s.Prefix))
		}
	}
	return tensor.Shape{s.B, s.Tq, s.Tk}, nil
}

func (op maskOp) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	y := op.out(op.dt, s.B, s.Tq, s.Tk)
	var keep []int
	if op.keep {
		keep = ints(vals[1])
	}
	switch op.dt {
	case tensor.Float32:
		prefixCausalMask(y.Data().([]float32), ints(vals[0]), keep, s)
	default:
		prefixCausalMask(y.Data().([]float64), ints(vals[0]), keep, s)
	}
	return y, nil
}

func (op maskOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func prefixCausalMask[T Float](dst []T, qpos, keep []int, s MaskShape) {
	negInf := T(math.Inf(-1))
	text := s.Tk - s.Prefix
	for b := 0; b < s.B; b++ {
		for i := 0; i < s.Tq; i++ {
			q := qpos[b*s.Tq+i]
			row := dst[(b*s.Tq+i)*s.Tk : (b*s.Tq+i+1)*s.Tk]
			clear(row[:s.Prefix])
			for j := s.Prefix; j < s.Tk; j++ {
				if j <= q && (keep == nil || keep[b*text+j-s.Prefix] != 0) {
					row[j] = 0
				} else {
					row[j] = negInf
				}
			}
		}
	}
}

// CacheWrite stores new rows in a KV cache and returns the cache: cache is
// (B·slots, C), B examples of slots rows each; x (B·T, C) holds T new rows
// per example, written to slots at[b], ..., at[b]+T-1 of example b (at:
// B ints, an input, so each example has its own length). The cache is
// written in place (no copy): a graph that reads the cache must read it
// through this op's output, which orders the read after the write. A write
// past the last slot is an error at run time. It takes no gradient.
func CacheWrite(cache, x, at *G.Node, slots int) *G.Node {
	dt := dtypeOf(cache)
	sig := fmt.Sprintf("CacheWrite{%v,slots=%d}", dt, slots)
	return apply(cacheWriteOp{newBase(sig, tt(2, dt), tt(2, dt), tt(2, dt), tt(1, tensor.Int)), dt, slots}, cache, x, at)
}

// cacheWriteOp is the cache with x written in, from (cache, x, at).
type cacheWriteOp struct {
	baseOp
	dt    tensor.Dtype
	slots int
}

func (op cacheWriteOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	c, x, at := shapeOf(in[0]), shapeOf(in[1]), shapeOf(in[2])
	b := at.TotalSize()
	if len(c) != 2 || len(x) != 2 || c[1] != x[1] || b == 0 || c[0] != b*op.slots || x[0]%b != 0 {
		return nil, fmt.Errorf("%v: cache %v, rows %v and %d positions do not fit", op, c, x, b)
	}
	return c.Clone(), nil
}

// ReturnsPtr: the output is the cache's own memory.
func (op cacheWriteOp) ReturnsPtr() bool { return true }

func (op cacheWriteOp) Do(vals ...G.Value) (G.Value, error) {
	cache, x, at := dense(vals[0]), dense(vals[1]), ints(vals[2])
	var err error
	switch op.dt {
	case tensor.Float32:
		err = cacheWrite(data[float32](cache), data[float32](x), at, op.slots, cache.Shape()[1])
	default:
		err = cacheWrite(data[float64](cache), data[float64](x), at, op.slots, cache.Shape()[1])
	}
	return cache, err
}

func (op cacheWriteOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func cacheWrite[T Float](cache, x []T, at []int, slots, c int) error {
	t := len(x) / c / len(at)
	for b, n := range at {
		if n < 0 || n+t > slots {
			return fmt.Errorf("KV cache: %d new positions at %d run past its %d slots", t, n, slots)
		}
		dst := cache[(b*slots+n)*c : (b*slots+n+t)*c]
		copy(dst, x[b*t*c:(b+1)*t*c])
	}
	return nil
}
