package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// IgnoreIndex marks a target that takes no part in the loss, as in PyTorch.
const IgnoreIndex = -100

// CrossEntropy is the mean softmax cross-entropy of logits (N,V) against
// targets (N, tensor.Int), skipping IgnoreIndex targets, with optional label
// smoothing as torch.nn.CrossEntropyLoss(label_smoothing=ε) defines it. It
// is one fused op: no one-hot matrix and no (N,V) temporaries beyond the
// gradient itself. If every target is ignored the loss is NaN, as in PyTorch.
func CrossEntropy(logits, targets *G.Node, smoothing float64) *G.Node {
	dt := dtypeOf(logits)
	sig := fmt.Sprintf("CrossEntropy{%v,smoothing=%g}", dt, smoothing)
	return apply(ceOp{newBase(sig, dt, tt(2, dt), tt(1, tensor.Int)), dt, smoothing, &lossRows{}}, logits, targets)
}

// ceOp is the mean loss from (logits, targets).
type ceOp struct {
	baseOp
	dt        tensor.Dtype
	smoothing float64
	rows      *lossRows
}

// lossRows holds a loss op's per-row losses between runs, so a run does not
// allocate them (they are summed in row order: the loss does not depend on
// how the rows were split across goroutines), and, for CrossEntropy, each
// row's max + log Σ exp(x − max) of the last forward run, which its
// gradient op reads instead of computing it again (in a training graph the
// forward runs before its backward in every run).
type lossRows struct{ per, off []float64 }

func (r *lossRows) get(n int) []float64 {
	if cap(r.per) < n {
		r.per, r.off = make([]float64, n), make([]float64, n)
	}
	r.per, r.off = r.per[:n], r.off[:n]
	return r.per
}

func (op ceOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := ceShape(in); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

func (op ceOp) Do(vals ...G.Value) (G.Value, error) {
	l := dense(vals[0])
	n, v := l.Shape()[0], l.Shape()[1]
	tg := ints(vals[1])
	if err := checkTargets(tg, v); err != nil {
		return nil, err
	}
	switch op.dt {
	case tensor.Float32:
		per := op.rows.get(n)
		return G.NewF32(float32(ceLoss(op.smoothing, data[float32](l), tg, nil, per, op.rows.off, n, v))), nil
	default:
		per := op.rows.get(n)
		return G.NewF64(ceLoss(op.smoothing, data[float64](l), tg, nil, per, op.rows.off, n, v)), nil
	}
}

func (op ceOp) DiffWRT(n int) []bool { return []bool{true, false} }
func (op ceOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	sig := fmt.Sprintf("CrossEntropyGrad{%v,smoothing=%g}", op.dt, op.smoothing)
	g := ceGradOp{newBase(sig, tt(2, op.dt), tt(2, op.dt), tt(1, tensor.Int), op.dt), op.dt, op.smoothing, op.rows}
	return G.Nodes{apply(g, inputs[0], inputs[1], grad), nil}, nil
}

// ceGradOp is dlogits from (logits, targets, dloss).
type ceGradOp struct {
	baseOp
	dt        tensor.Dtype
	smoothing float64
	rows      *lossRows // the forward op's: its rows' log-sum-exp
}

func (op ceGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := ceShape(in); err != nil {
		return nil, err
	}
	return shapeOf(in[0]).Clone(), nil
}

func (op ceGradOp) Do(vals ...G.Value) (G.Value, error) {
	l := dense(vals[0])
	n, v := l.Shape()[0], l.Shape()[1]
	tg := ints(vals[1])
	if err := checkTargets(tg, v); err != nil {
		return nil, err
	}
	seed := scalarOf(vals[2])
	y := op.out(op.dt, n, v)
	if len(op.rows.off) != n {
		return nil, fmt.Errorf("%v: the forward pass has not run on %d rows", op, n)
	}
	switch op.dt {
	case tensor.Float32:
		ceGrad(op.smoothing, data[float32](l), tg, nil, op.rows.off, seed, y.Float32s(), n, v)
	default:
		ceGrad(op.smoothing, data[float64](l), tg, nil, op.rows.off, seed, y.Float64s(), n, v)
	}
	return y, nil
}

func (op ceGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

func ceShape(in []G.DimSizer) error {
	l, t := shapeOf(in[0]), shapeOf(in[1])
	if len(l) != 2 || t.TotalSize() != l[0] {
		return fmt.Errorf("CrossEntropy: logits %v and targets %v do not fit", l, t)
	}
	return nil
}

func checkTargets(tg []int, v int) error {
	for _, t := range tg {
		if t != IgnoreIndex && (t < 0 || t >= v) {
			return fmt.Errorf("CrossEntropy: target %d out of range [0,%d)", t, v)
		}
	}
	return nil
}

// rowLogSumExp returns max and log Σ exp(x - max) of a row.
func rowLogSumExp[T Float](row []T) (mx, lse float64) {
	m := row[0]
	for _, x := range row[1:] {
		if x > m {
			m = x
		}
	}
	var s float64
	for _, x := range row {
		s += math.Exp(float64(x - m))
	}
	return float64(m), math.Log(s)
}

// ceLoss and ceGrad serve CrossEntropy (w nil) and WeightedCrossEntropy
// (w: one weight per row, eps 0). A nil w is a weight of exactly 1, so the
// unweighted loss and gradient are bit for bit what they were without w.
// per (n long) receives the rows' losses and off, when not nil, each
// row's max + log Σ exp(x − max), which ceGrad reads when given it.
func ceLoss[T Float](eps float64, l []T, tg []int, w []T, per, off []float64, n, v int) float64 {
	parallelFor(n, 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if tg[i] == IgnoreIndex {
				continue
			}
			row := l[i*v : (i+1)*v]
			mx, lse := rowLogSumExp(row)
			if off != nil {
				off[i] = mx + lse
			}
			nll := mx + lse - float64(row[tg[i]])
			if eps > 0 {
				var sum float64
				for _, x := range row {
					sum += float64(x)
				}
				// mean over classes of -log p_k
				smooth := mx + lse - sum/float64(v)
				nll = (1-eps)*nll + eps*smooth
			}
			if w != nil {
				nll *= float64(w[i])
			}
			per[i] = nll
		}
	})
	var total float64
	count := 0
	for i, t := range tg {
		if t != IgnoreIndex {
			total += per[i]
			count++
		}
	}
	return total / float64(count)
}

func ceGrad[T Float](eps float64, l []T, tg []int, w []T, offs []float64, seed float64, y []T, n, v int) {
	count := 0
	for _, t := range tg {
		if t != IgnoreIndex {
			count++
		}
	}
	scale := seed / float64(count)
	parallelFor(n, 4, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			yr := y[i*v : (i+1)*v]
			if tg[i] == IgnoreIndex {
				clear(yr)
				continue
			}
			row := l[i*v : (i+1)*v]
			var off float64
			if offs != nil {
				off = offs[i] // the forward's: the same bits
			} else {
				mx, lse := rowLogSumExp(row)
				off = mx + lse
			}
			u, s := eps/float64(v), scale
			if w != nil {
				s *= float64(w[i])
			}
			for k, x := range row {
				yr[k] = T((math.Exp(float64(x)-off) - u) * s)
			}
			yr[tg[i]] -= T((1 - eps) * s)
		}
	})
}
