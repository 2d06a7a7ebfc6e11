package graph

import (
	"fmt"
	"math"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Activation names an elementwise activation function by its HuggingFace
// hidden_act name.
type Activation string

// The activations GIT checkpoints use.
const (
	GELU      Activation = "gelu"       // exact: x·Φ(x) with erf (BERT, GIT's text decoder)
	QuickGELU Activation = "quick_gelu" // x·σ(1.702x) (CLIP's vision tower)
	GELUTanh  Activation = "gelu_new"   // tanh approximation
	ReLU      Activation = "relu"
)

// ParseActivation validates a hidden_act name from a config.
func ParseActivation(name string) (Activation, error) {
	switch a := Activation(name); a {
	case GELU, QuickGELU, GELUTanh, ReLU:
		return a, nil
	case "gelu_pytorch_tanh", "gelu_fast":
		return GELUTanh, nil
	}
	return "", fmt.Errorf("unsupported activation %q (want gelu, quick_gelu, gelu_new or relu)", name)
}

// Act applies an activation elementwise.
func Act(x *G.Node, a Activation) *G.Node {
	dt, t := dtypeOf(x), tt(x.Dims(), dtypeOf(x))
	return apply(actOp{newBase(fmt.Sprintf("Act{%v,%s,dims=%d}", dt, a, x.Dims()), t, t), dt, a}, x)
}

// actOp is f(x) from (x).
type actOp struct {
	baseOp
	dt  tensor.Dtype
	act Activation
}

func (op actOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return shapeOf(in[0]).Clone(), nil
}

func (op actOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	y := op.out(op.dt, x.Shape()...)
	switch op.dt {
	case tensor.Float32:
		actDo(op.act, false, vals, y.Data().([]float32))
	default:
		actDo(op.act, false, vals, y.Data().([]float64))
	}
	return y, nil
}

func (op actOp) DiffWRT(n int) []bool { return []bool{true} }
func (op actOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	// An input gradient that nothing else reads may be overwritten.
	mm, ok := grad.Op().(matMulOp)
	inPlace := ok && mm.private
	x := inputs[0]
	t := tt(x.Dims(), op.dt)
	g := actGradOp{newBase(fmt.Sprintf("ActGrad{%v,%s,dims=%d,inPlace=%v}", op.dt, op.act, x.Dims(), inPlace), t, t, t), op.dt, op.act, inPlace}
	return G.Nodes{apply(g, x, grad)}, nil
}

// recomputedAct is what a Linear's weight gradient reads for its input x:
// when x is an activation f(h) (an MLP's hidden layer), f(h) computed again
// in the backward pass, after grad (the Linear's output gradient) exists,
// and otherwise x itself. The forward activation is then read only by the
// forward Linear, so ShareBuffers lets its buffer go after it instead of
// keeping it until the backward pass: one hidden-layer-sized buffer per MLP
// for the cost of one more activation pass (f's gradient reads h, which is
// kept anyway). The values are the same bits as the forward ones.
func recomputedAct(x, grad *G.Node) *G.Node {
	a, ok := x.Op().(actOp)
	if !ok {
		return x
	}
	h := children(x.Graph(), x)
	if len(h) != 1 {
		return x
	}
	t := tt(x.Dims(), a.dt)
	r := actAgainOp{newBase(fmt.Sprintf("ActAgain{%v,%s,dims=%d}", a.dt, a.act, x.Dims()), t, t, tt(grad.Dims(), a.dt)), a.dt, a.act}
	return apply(r, h[0], grad)
}

// actAgainOp is f(h) from (h, after): after is not read, it only orders
// the op after the gradient it names, so that the recomputed activation
// lives from there to the weight gradient that reads it.
type actAgainOp struct {
	baseOp
	dt  tensor.Dtype
	act Activation
}

func (op actAgainOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return shapeOf(in[0]).Clone(), nil
}

func (op actAgainOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	y := op.out(op.dt, x.Shape()...)
	switch op.dt {
	case tensor.Float32:
		actDo(op.act, false, vals[:1], y.Data().([]float32))
	default:
		actDo(op.act, false, vals[:1], y.Data().([]float64))
	}
	return y, nil
}

func (op actAgainOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

// actGradOp is dy·f'(x) from (x, dy).
type actGradOp struct {
	baseOp
	dt  tensor.Dtype
	act Activation
	// inPlace writes dy·f'(x) over dy. It is set only when dy is a Linear's
	// private input gradient (a matMulOp node that cannot be merged with
	// any other), so nothing else reads it; that saves one
	// activation-sized buffer per MLP in training graphs. A gradient that
	// may be shared (e.g. through a residual Add) is never overwritten.
	inPlace bool
}

func (op actGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	return shapeOf(in[0]).Clone(), nil
}

// ReturnsPtr reports the in-place gradient, which returns dy's memory.
func (op actGradOp) ReturnsPtr() bool { return op.inPlace }

func (op actGradOp) Do(vals ...G.Value) (G.Value, error) {
	var y *tensor.Dense
	if op.inPlace {
		y = dense(vals[1]) // over dy: element-wise, so safe
	} else {
		y = op.out(op.dt, dense(vals[0]).Shape()...)
	}
	switch op.dt {
	case tensor.Float32:
		actDo(op.act, true, vals, y.Data().([]float32))
	default:
		actDo(op.act, true, vals, y.Data().([]float64))
	}
	return y, nil
}

func (op actGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

const sqrt2 = math.Sqrt2
const invSqrt2Pi = 0.3989422804014327

// actDo writes f(x) (grad false, vals (x)) or dy·f'(x) (grad true, vals
// (x, dy)) into y.
func actDo[T Float](act Activation, grad bool, vals []G.Value, y []T) {
	if y32, ok := any(y).([]float32); ok && (act == QuickGELU || act == GELU) {
		if act == GELU {
			gelu32(grad, vals, y32)
		} else {
			quickGELU32(grad, vals, y32)
		}
		return
	}
	x := data[T](vals[0])
	var dy []T
	if grad {
		dy = data[T](vals[1])
	}
	parallelFor(len(x), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			v := float64(x[i])
			var f, df float64
			switch act {
			case GELU:
				cdf := 0.5 * (1 + math.Erf(v/sqrt2))
				f = v * cdf
				if grad {
					df = cdf + v*invSqrt2Pi*math.Exp(-0.5*v*v)
				}
			case QuickGELU:
				s := 1 / (1 + math.Exp(-1.702*v))
				f, df = v*s, s+1.702*v*s*(1-s)
			case GELUTanh:
				const c = 0.7978845608028654 // sqrt(2/pi)
				u := c * (v + 0.044715*v*v*v)
				t := math.Tanh(u)
				f = 0.5 * v * (1 + t)
				df = 0.5*(1+t) + 0.5*v*(1-t*t)*c*(1+3*0.044715*v*v)
			case ReLU:
				if v > 0 {
					f, df = v, 1
				}
			}
			if grad {
				y[i] = T(df * float64(dy[i]))
			} else {
				y[i] = T(f)
			}
		}
	})
}

// quickGELU32 is the float32 fast path of x·σ(1.702x) and its derivative.
func quickGELU32(grad bool, vals []G.Value, y []float32) {
	x := data[float32](vals[0])
	var dy []float32
	if grad {
		dy = data[float32](vals[1])
	}
	parallelFor(len(x), 4096, func(lo, hi int) {
		var d []float32
		if grad {
			d = dy[lo:hi]
		}
		lo += quickGELUBlock(grad, x[lo:hi], d, y[lo:hi]) // AVX-512, same bits
		for i := lo; i < hi; i++ {
			v := x[i]
			s := 1 / (1 + exp32(-1.702*v))
			if grad {
				y[i] = (s + float32(float32(1.702*v*s)*(1-s))) * dy[i]
			} else {
				y[i] = v * s
			}
		}
	})
}

// gelu32 is the float32 fast path of the exact GELU x·Φ(x) and its
// derivative Φ(x) + x·φ(x), with erf32 and exp32 instead of float64 maths.
func gelu32(grad bool, vals []G.Value, y []float32) {
	x := data[float32](vals[0])
	var dy []float32
	if grad {
		dy = data[float32](vals[1])
	}
	parallelFor(len(x), 4096, func(lo, hi int) {
		var d []float32
		if grad {
			d = dy[lo:hi]
		}
		lo += geluBlock(grad, x[lo:hi], d, y[lo:hi]) // AVX-512, same bits
		for i := lo; i < hi; i++ {
			v := x[i]
			cdf := 0.5 * (1 + erf32(v*(1/sqrt2)))
			if grad {
				y[i] = (cdf + float32(v*invSqrt2Pi*exp32(-0.5*v*v))) * dy[i]
			} else {
				y[i] = v * cdf
			}
		}
	})
}
