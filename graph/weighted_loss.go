package graph

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// WeightedCrossEntropy is the cross-entropy of logits (N,V) against targets
// (N, tensor.Int) with a weight per row (N, the logits' float type):
//
//	Σ_i w_i · (−log softmax(logits_i)[target_i]) / #{i : target_i ≠ IgnoreIndex}
//
// With every weight 1 it equals CrossEntropy (no smoothing) exactly. Rows
// whose target is IgnoreIndex take no part; the weights are constants (no
// gradient flows to them). It is the policy-gradient surrogate of
// self-critical sequence training: weights are the sampled sequences'
// advantages and the targets their sampled tokens. If every target is
// ignored the loss is NaN, as CrossEntropy's.
func WeightedCrossEntropy(logits, targets, weights *G.Node) *G.Node {
	dt := dtypeOf(logits)
	sig := fmt.Sprintf("WeightedCrossEntropy{%v}", dt)
	return apply(wceOp{newBase(sig, dt, tt(2, dt), tt(1, tensor.Int), tt(1, dt)), dt, &lossRows{}}, logits, targets, weights)
}

// wceOp is the weighted mean loss from (logits, targets, weights).
type wceOp struct {
	baseOp
	dt   tensor.Dtype
	rows *lossRows
}

func (op wceOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := wceShape(in); err != nil {
		return nil, err
	}
	return tensor.ScalarShape(), nil
}

func (op wceOp) Do(vals ...G.Value) (G.Value, error) {
	l := dense(vals[0])
	n, v := l.Shape()[0], l.Shape()[1]
	tg := ints(vals[1])
	if err := checkWeightedTargets(tg, v); err != nil {
		return nil, err
	}
	switch op.dt {
	case tensor.Float32:
		return G.NewF32(float32(ceLoss(0, data[float32](l), tg, data[float32](vals[2]), op.rows.get(n), nil, n, v))), nil
	default:
		return G.NewF64(ceLoss(0, data[float64](l), tg, data[float64](vals[2]), op.rows.get(n), nil, n, v)), nil
	}
}

func (op wceOp) DiffWRT(n int) []bool { return []bool{true, false, false} }
func (op wceOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	sig := fmt.Sprintf("WeightedCrossEntropyGrad{%v}", op.dt)
	g := wceGradOp{newBase(sig, tt(2, op.dt), tt(2, op.dt), tt(1, tensor.Int), tt(1, op.dt), op.dt), op.dt}
	return G.Nodes{apply(g, inputs[0], inputs[1], inputs[2], grad), nil, nil}, nil
}

// wceGradOp is dlogits from (logits, targets, weights, dloss).
type wceGradOp struct {
	baseOp
	dt tensor.Dtype
}

func (op wceGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := wceShape(in); err != nil {
		return nil, err
	}
	return shapeOf(in[0]).Clone(), nil
}

func (op wceGradOp) Do(vals ...G.Value) (G.Value, error) {
	l := dense(vals[0])
	n, v := l.Shape()[0], l.Shape()[1]
	tg := ints(vals[1])
	if err := checkWeightedTargets(tg, v); err != nil {
		return nil, err
	}
	seed := scalarOf(vals[3])
	y := op.out(op.dt, n, v)
	switch op.dt {
	case tensor.Float32:
		ceGrad(0, data[float32](l), tg, data[float32](vals[2]), nil, seed, data[float32](y), n, v)
	default:
		ceGrad(0, data[float64](l), tg, data[float64](vals[2]), nil, seed, data[float64](y), n, v)
	}
	return y, nil
}

func wceShape(in []G.DimSizer) error {
	l, t, w := shapeOf(in[0]), shapeOf(in[1]), shapeOf(in[2])
	if len(l) != 2 || t.TotalSize() != l[0] || w.TotalSize() != l[0] {
		return fmt.Errorf("WeightedCrossEntropy: logits %v, targets %v and weights %v do not fit", l, t, w)
	}
	return nil
}

func checkWeightedTargets(tg []int, v int) error {
	for _, t := range tg {
		if t != IgnoreIndex && (t < 0 || t >= v) {
			return fmt.Errorf("WeightedCrossEntropy: target %d out of range [0,%d)", t, v)
		}
	}
	return nil
}
