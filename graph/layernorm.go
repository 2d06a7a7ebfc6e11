package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// LayerNorm normalises each row of x (N,C) to zero mean and unit variance
// and applies gain g and bias b (both (C)), as torch.nn.LayerNorm does. One
// fused op replaces the ~80 nodes of a composed layer norm, and it sidesteps
// gorgonia's wrong InverseSqrt gradient. The forward op saves each row's
// mean and 1/std, and its backward ops (dx, dg) read them instead of
// recomputing them.
func LayerNorm(x, g, b *G.Node, eps float64) *G.Node {
	dt := dtypeOf(x)
	sig := fmt.Sprintf("LayerNorm{%v,eps=%g}", dt, eps)
	return apply(layerNormOp{newBase(sig, tt(2, dt), tt(2, dt), tt(1, dt), tt(1, dt)), dt, eps, &lnStats{}}, x, g, b)
}

// lnStats are the per-row statistics of one LayerNorm's last forward run,
// shared by the forward op and the backward ops SymDiff makes from it (in a
// training graph the forward runs before its backward in every run).
type lnStats struct{ mu, rstd []float64 }

func (s *lnStats) resize(n int) {
	if cap(s.mu) < n {
		s.mu, s.rstd = make([]float64, n), make([]float64, n)
	}
	s.mu, s.rstd = s.mu[:n], s.rstd[:n]
}

// layerNormOp is y = (x-mu)·rstd·g + b from (x, g, b).
type layerNormOp struct {
	baseOp
	dt    tensor.Dtype
	eps   float64
	stats *lnStats
}

func (op layerNormOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) { return lnShape(in, false) }
func (op layerNormOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	n, c := x.Shape()[0], x.Shape()[1]
	y := op.out(op.dt, n, c)
	op.stats.resize(n)
	switch op.dt {
	case tensor.Float32:
		layerNormForward32(op, vals, y.Float32s(), n, c)
	default:
		layerNormForward[float64](op, vals, y.Float64s(), n, c)
	}
	return y, nil
}

func (op layerNormOp) DiffWRT(n int) []bool { return []bool{true, true, true} }
func (op layerNormOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	x, g := inputs[0], inputs[1]
	dt := op.dt
	gx := newBase(fmt.Sprintf("LayerNormGradX{%v,eps=%g}", dt, op.eps), tt(2, dt), tt(2, dt), tt(1, dt), tt(2, dt))
	gg := newBase(fmt.Sprintf("LayerNormGradG{%v,eps=%g}", dt, op.eps), tt(1, dt), tt(2, dt), tt(2, dt))
	dx := apply(layerNormGradXOp{gx, dt, op.eps, op.stats}, x, g, grad)
	dg := apply(layerNormGradGOp{gg, dt, op.eps, op.stats}, x, grad)
	return G.Nodes{dx, dg, ColSum(grad)}, nil
}

func layerNormForward[T Float](op layerNormOp, vals []G.Value, y []T, n, c int) {
	x, g, b := data[T](vals[0]), data[T](vals[1]), data[T](vals[2])
	st := op.stats
	parallelFor(n, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xr, yr := x[i*c:(i+1)*c], y[i*c:(i+1)*c]
			mu, rstd := rowStats(xr, op.eps)
			st.mu[i], st.rstd[i] = mu, rstd
			for j, v := range xr {
				yr[j] = T((float64(v)-mu)*rstd)*g[j] + b[j]
			}
		}
	})
}

// layerNormForward32 is layerNormForward for float32 rows, through
// lnRow32 (AVX-512 where the CPU has it; its row sums are added in another
// order than rowStats', see lnrow.go).
func layerNormForward32(op layerNormOp, vals []G.Value, y []float32, n, c int) {
	x, g, b := data[float32](vals[0]), data[float32](vals[1]), data[float32](vals[2])
	st := op.stats
	parallelFor(n, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			st.mu[i], st.rstd[i] = lnRow32(x[i*c:(i+1)*c], g, b, y[i*c:(i+1)*c], op.eps)
		}
	})
}

// layerNormGradXOp is dx from (x, g, dy), with the forward's saved stats.
type layerNormGradXOp struct {
	baseOp
	dt    tensor.Dtype
	eps   float64
	stats *lnStats
}

func (op layerNormGradXOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lnShape(in, false)
}
func (op layerNormGradXOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	n, c := x.Shape()[0], x.Shape()[1]
	if len(op.stats.mu) != n {
		return nil, fmt.Errorf("%v: the forward pass has not run on %d rows", op, n)
	}
	y := op.out(op.dt, n, c)
	switch op.dt {
	case tensor.Float32:
		layerNormGradX[float32](op, vals, y.Float32s(), n, c)
	default:
		layerNormGradX[float64](op, vals, y.Float64s(), n, c)
	}
	return y, nil
}
func (op layerNormGradXOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func layerNormGradX[T Float](op layerNormGradXOp, vals []G.Value, y []T, n, c int) {
	x, g, dy := data[T](vals[0]), data[T](vals[1]), data[T](vals[2])
	st := op.stats
	x32, is32 := any(x).([]float32)
	parallelFor(n, 16, func(lo, hi int) {
		if is32 && lnGradXRows32(x32[lo*c:hi*c], any(dy).([]float32)[lo*c:hi*c], any(g).([]float32), hi-lo, c,
			st.mu[lo:hi], st.rstd[lo:hi], any(y).([]float32)[lo*c:hi*c]) {
			return // AVX-512, same bits
		}
		for i := lo; i < hi; i++ {
			layerNormGradXRow(x[i*c:(i+1)*c], dy[i*c:(i+1)*c], g, st.mu[i], st.rstd[i], y[i*c:(i+1)*c])
		}
	})
}

// layerNormGradXRow is one row of dx = rstd·(d − mean(d) − xh·mean(d·xh))
// with xh = (x−mu)·rstd and d = dy·g, in float64. The two sums run in
// eight lanes (element j in lane j mod 8 for j below the last multiple of
// 8), added as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), then the remaining
// elements in order: the order of the AVX-512 kernel (lnGradXAVX512), which
// gives the same bits.
func layerNormGradXRow[T Float](xr, dyr, g []T, mu, rstd float64, dxr []T) {
	var sd, sdx [8]float64 // Σ dxhat, Σ dxhat·xhat, by lane
	c := len(xr)
	b := c &^ 7
	for j0 := 0; j0 < b; j0 += 8 {
		for l := 0; l < 8; l++ {
			j := j0 + l
			xh := (float64(xr[j]) - mu) * rstd
			d := float64(dyr[j]) * float64(g[j])
			sd[l] += d
			sdx[l] += float64(d * xh) // float64(): never fused into an FMA
		}
	}
	lanes := func(s *[8]float64) float64 {
		return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
	}
	sdSum, sdxSum := lanes(&sd), lanes(&sdx)
	for j := b; j < c; j++ {
		xh := (float64(xr[j]) - mu) * rstd
		d := float64(dyr[j]) * float64(g[j])
		sdSum += d
		sdxSum += float64(d * xh)
	}
	sdSum /= float64(c)
	sdxSum /= float64(c)
	for j, v := range xr {
		xh := (float64(v) - mu) * rstd
		d := float64(dyr[j]) * float64(g[j])
		dxr[j] = T(rstd * (d - sdSum - float64(xh*sdxSum)))
	}
}

// layerNormGradGOp is dg from (x, dy), with the forward's saved stats.
type layerNormGradGOp struct {
	baseOp
	dt    tensor.Dtype
	eps   float64
	stats *lnStats
}

func (op layerNormGradGOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return lnShape(in, true)
}
func (op layerNormGradGOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	n, c := x.Shape()[0], x.Shape()[1]
	if len(op.stats.mu) != n {
		return nil, fmt.Errorf("%v: the forward pass has not run on %d rows", op, n)
	}
	y := op.out(op.dt, c)
	switch op.dt {
	case tensor.Float32:
		layerNormGradG[float32](op, vals, y.Float32s(), n, c)
	default:
		layerNormGradG[float64](op, vals, y.Float64s(), n, c)
	}
	return y, nil
}
func (op layerNormGradGOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func layerNormGradG[T Float](op layerNormGradGOp, vals []G.Value, y []T, n, c int) {
	x, dy := data[T](vals[0]), data[T](vals[1])
	st := op.stats
	// Column blocks in parallel, each column summed over the rows in row
	// order as before (so the same bits), in a float64 accumulator on the
	// stack.
	x32, is32 := any(x).([]float32)
	parallelFor(c, colBlock, func(lo, hi int) {
		if is32 && n > 0 { // AVX-512 over whole 8-column blocks, same bits
			lo += lnGradGBlock32(x32[lo:], any(dy).([]float32)[lo:], n, c, st.mu, st.rstd, any(y).([]float32)[lo:hi])
		}
		var acc [colBlock]float64
		for j0 := lo; j0 < hi; j0 += colBlock {
			w := min(colBlock, hi-j0)
			a := acc[:w]
			clear(a)
			for i := 0; i < n; i++ {
				xr, dyr := x[i*c+j0:i*c+j0+w], dy[i*c+j0:i*c+j0+w]
				mu, rstd := st.mu[i], st.rstd[i]
				for j, v := range xr {
					a[j] += float64(float64(dyr[j]) * (float64(v) - mu) * rstd) // float64(): no FMA
				}
			}
			for j, v := range a {
				y[j0+j] = T(v)
			}
		}
	})
}

// colBlock is the column block of the column sums (LayerNorm's gain
// gradient, a bias gradient): a worker's share of the columns is summed
// colBlock columns at a time.
const colBlock = 128

// lnShape checks x (N,C) and, for the forward and dx, that the gain fits;
// the result is x's shape, or (C) for dg.
func lnShape(in []G.DimSizer, gain bool) (tensor.Shape, error) {
	x := shapeOf(in[0])
	if len(x) != 2 {
		return nil, fmt.Errorf("LayerNorm: want x (N,C), got %v", x)
	}
	if gain {
		return tensor.Shape{x[1]}, nil
	}
	if g := shapeOf(in[1]); g.TotalSize() != x[1] {
		return nil, fmt.Errorf("LayerNorm: gain %v does not fit x %v", g, x)
	}
	return x.Clone(), nil
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
