package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Noise is the source of dropout masks for one training graph. Masks are a
// pure function of (seed, op id, element index), so the forward and backward
// pass of a run agree, and a run repeats exactly from the same seeds (which
// is what makes --resume reproduce an uninterrupted run).
type Noise struct {
	seed uint64
	ids  uint64
}

// SetSeed sets the seed for the next run (the trainer derives it from the
// run's seed and the step number).
func (n *Noise) SetSeed(s uint64) { n.seed = s }

// Seed returns the current seed.
func (n *Noise) Seed() uint64 { return n.seed }

func (n *Noise) nextID() uint64 { n.ids++; return n.ids }

func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// keepElem reports whether element i of dropout op id survives.
func keepElem(seed, id, i uint64, p float64) bool {
	h := mix64(seed ^ mix64(id<<32^i))
	return float64(h>>11)*(1.0/(1<<53)) >= p
}

// dropThreshold is keepElem's test in integers: with k = h>>11 < 2⁵³,
// float64(k)·2⁻⁵³ is exact, so it is >= p exactly when k >= ⌈p·2⁵³⌉ (p·2⁵³
// is exact too).
func dropThreshold(p float64) uint64 {
	switch {
	case !(p > 0):
		return 0
	case p >= 1:
		return 1 << 53
	}
	return uint64(math.Ceil(p * (1 << 53)))
}

// applyDropout writes x times its dropout mask into dst (which may be x):
// element j is element base+j of dropout op id under seed, kept and scaled
// by keep (= 1/(1-p)) or zeroed. It is the one mask of the package: the
// dropout op and the attention op (forward and backward) all use it, so a
// backward pass sees exactly its forward pass's mask.
func applyDropout[T Float](dst, x []T, seed, id, base uint64, p float64, keep T) {
	j0 := 0
	if d, ok := any(dst).([]float32); ok {
		j0 = dropoutBlock(d, any(x).([]float32), seed, id, base, p, float32(keep)) // AVX-512, same mask
	}
	for j := j0; j < len(x); j++ {
		if keepElem(seed, id, base+uint64(j), p) {
			dst[j] = x[j] * keep
		} else {
			dst[j] = 0
		}
	}
}

// Dropout zeroes elements with probability p and scales the rest by
// 1/(1-p). With p == 0 it returns x itself (no op is inserted, which avoids
// gorgonia's p=0 Dropout gradient bug).
func Dropout(x *G.Node, p float64, noise *Noise) *G.Node {
	if p <= 0 {
		return x
	}
	return apply(newDropout(dtypeOf(x), x.Dims(), p, noise, noise.nextID()), x)
}

// dropoutOp is x·mask/(1-p) from (x). It is its own derivative: the same
// mask (same id) applied to the gradient.
type dropoutOp struct {
	baseOp
	dt    tensor.Dtype
	dims  int
	p     float64
	noise *Noise
	id    uint64
}

func newDropout(dt tensor.Dtype, dims int, p float64, noise *Noise, id uint64) dropoutOp {
	t := tt(dims, dt)
	return dropoutOp{newBase(fmt.Sprintf("Dropout{%v,dims=%d,p=%g,id=%d}", dt, dims, p, id), t, t), dt, dims, p, noise, id}
}

func (op dropoutOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return shapeOf(in[0]).Clone(), nil
}
func (op dropoutOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	y := op.out(op.dt, x.Shape()...)
	switch op.dt {
	case tensor.Float32:
		dropoutDo(op, data[float32](x), y.Float32s())
	default:
		dropoutDo(op, data[float64](x), y.Float64s())
	}
	return y, nil
}

func dropoutDo[T Float](op dropoutOp, x, y []T) {
	seed := op.noise.Seed()
	scale := T(1 / (1 - op.p))
	parallelFor(len(x), 8192, func(lo, hi int) {
		applyDropout(y[lo:hi], x[lo:hi], seed, op.id, uint64(lo), op.p, scale)
	})
}

func (op dropoutOp) DiffWRT(n int) []bool { return []bool{true} }
func (op dropoutOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	// The same mask applied to the gradient (same id, so the same mask),
	// with its own output buffer.
	return G.Nodes{apply(newDropout(op.dt, op.dims, op.p, op.noise, op.id), grad)}, nil
}
