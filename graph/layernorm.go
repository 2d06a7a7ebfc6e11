package graph

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LayerNorm normalises each row of x (N,C) to zero mean and unit variance
// and applies gain g and bias b (both (C)), as torch.nn.LayerNorm does. One
// fused op replaces the ~80 nodes of a composed layer norm, and it sidesteps
// gorgonia's wrong InverseSqrt gradient.
func LayerNorm(x, g, b *G.Node, eps float64) *G.Node {
	return apply(layerNormOp{baseOp: cached(), dt: dtypeOf(x), eps: eps, which: lnForward}, x, g, b)
}

const (
	lnForward = iota // y
	lnGradX          // dx from (x, g, dy)
	lnGradG          // dg from (x, dy)
)

type layerNormOp struct {
	baseOp
	dt    tensor.Dtype
	eps   float64
	which int
}

func (op layerNormOp) String() string {
	return fmt.Sprintf("LayerNorm{%v,eps=%g,which=%d}", op.dt, op.eps, op.which)
}
func (op layerNormOp) WriteHash(h hash.Hash) { writeHash(h, op) }
func (op layerNormOp) Hashcode() uint32      { return hashcode(op) }
func (op layerNormOp) Arity() int {
	if op.which == lnGradG {
		return 2
	}
	return 3
}
func (op layerNormOp) Type() hm.Type {
	switch op.which {
	case lnForward:
		return fnType(tt(2, op.dt), tt(1, op.dt), tt(1, op.dt), tt(2, op.dt))
	case lnGradX:
		return fnType(tt(2, op.dt), tt(1, op.dt), tt(2, op.dt), tt(2, op.dt))
	default:
		return fnType(tt(2, op.dt), tt(2, op.dt), tt(1, op.dt))
	}
}
func (op layerNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	x := shapeOf(in[0])
	if len(x) != 2 {
		return nil, fmt.Errorf("LayerNorm: want x (N,C), got %v", x)
	}
	if op.which == lnGradG {
		return tensor.Shape{x[1]}, nil
	}
	if g := shapeOf(in[1]); g.TotalSize() != x[1] {
		return nil, fmt.Errorf("LayerNorm: gain %v does not fit x %v", g, x)
	}
	return x.Clone(), nil
}
func (op layerNormOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	n, c := x.Shape()[0], x.Shape()[1]
	var y *tensor.Dense
	if op.which == lnGradG {
		y = op.out(op.dt, c)
	} else {
		y = op.out(op.dt, n, c)
	}
	switch op.dt {
	case tensor.Float32:
		layerNormDo[float32](op, vals, y.Data().([]float32), n, c)
	default:
		layerNormDo[float64](op, vals, y.Data().([]float64), n, c)
	}
	return y, nil
}

func layerNormDo[T Float](op layerNormOp, vals []G.Value, y []T, n, c int) {
	x := data[T](vals[0])
	switch op.which {
	case lnForward:
		g, b := data[T](vals[1]), data[T](vals[2])
		parallelFor(n, 16, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				xr, yr := x[i*c:(i+1)*c], y[i*c:(i+1)*c]
				mu, rstd := rowStats(xr, op.eps)
				for j, v := range xr {
					yr[j] = T((float64(v)-mu)*rstd)*g[j] + b[j]
				}
			}
		})
	case lnGradX:
		g, dy := data[T](vals[1]), data[T](vals[2])
		parallelFor(n, 16, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				xr, dyr, dxr := x[i*c:(i+1)*c], dy[i*c:(i+1)*c], y[i*c:(i+1)*c]
				mu, rstd := rowStats(xr, op.eps)
				var sd, sdx float64 // Σ dxhat, Σ dxhat·xhat
				for j, v := range xr {
					xh := (float64(v) - mu) * rstd
					d := float64(dyr[j]) * float64(g[j])
					sd += d
					sdx += d * xh
				}
				sd /= float64(c)
				sdx /= float64(c)
				for j, v := range xr {
					xh := (float64(v) - mu) * rstd
					d := float64(dyr[j]) * float64(g[j])
					dxr[j] = T(rstd * (d - sd - xh*sdx))
				}
			}
		})
	case lnGradG:
		dy := data[T](vals[1])
		acc := make([]float64, c)
		for i := 0; i < n; i++ {
			xr, dyr := x[i*c:(i+1)*c], dy[i*c:(i+1)*c]
			mu, rstd := rowStats(xr, op.eps)
			for j, v := range xr {
				acc[j] += float64(dyr[j]) * (float64(v) - mu) * rstd
			}
		}
		for j := range y {
			y[j] = T(acc[j])
		}
	}
}

// rowStats returns the mean and 1/sqrt(var+eps) of a row (biased variance),
// accumulated in float64.
func rowStats[T Float](r []T, eps float64) (mu, rstd float64) {
	var s float64
	for _, v := range r {
		s += float64(v)
	}
	mu = s / float64(len(r))
	var ss float64
	for _, v := range r {
		d := float64(v) - mu
		ss += d * d
	}
	return mu, 1 / math.Sqrt(ss/float64(len(r))+eps)
}

func (op layerNormOp) DiffWRT(n int) []bool { return []bool{true, true, true} }
func (op layerNormOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.which != lnForward {
		return nil, fmt.Errorf("%v: second derivatives are not supported", op)
	}
	x, g := inputs[0], inputs[1]
	dx := apply(layerNormOp{baseOp: cached(), dt: op.dt, eps: op.eps, which: lnGradX}, x, g, grad)
	dg := apply(layerNormOp{baseOp: cached(), dt: op.dt, eps: op.eps, which: lnGradG}, x, grad)
	return G.Nodes{dx, dg, ColSum(grad)}, nil
}
