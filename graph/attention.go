package graph

import (
	"fmt"
	"hash"
	"math"

	"github.com/chewxy/hm"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AttentionShape describes multi-head scaled dot-product attention over
// row-major 2-D activations: queries are B·Tq rows and keys/values B·Tk rows
// of width Heads·HeadDim, head h occupying columns [h·HeadDim, (h+1)·HeadDim).
// Cached > 0 adds, in front of the new keys, B·Cached rows of keys and values
// supplied as separate inputs (the KV cache of a decode step).
type AttentionShape struct {
	B, Tq, Tk, Cached int
	Heads, HeadDim    int
}

func (s AttentionShape) keys() int { return s.Cached + s.Tk }

// Attention computes softmax(Q·Kᵀ/√d + mask)·V for every batch row and
// head in one op, calling BLAS on strided head slices, so heads are never
// transposed or copied. mask (B,Tq,Cached+Tk) is additive and may be nil.
// kc and vc are the cached keys and values (nil when Cached is 0); they take
// no gradient. dropout > 0 drops attention probabilities with the noise
// source's current seed (training only).
func Attention(q, k, v, kc, vc, mask *G.Node, s AttentionShape, dropout float64, noise *Noise) *G.Node {
	op := attnOp{baseOp: cached(), dt: dtypeOf(q), s: s, scale: 1 / math.Sqrt(float64(s.HeadDim)), hasMask: mask != nil}
	if dropout > 0 {
		op.drop, op.noise, op.noiseID = dropout, noise, noise.nextID()
	}
	ins := G.Nodes{q, k, v}
	if s.Cached > 0 {
		ins = append(ins, kc, vc)
	}
	if mask != nil {
		ins = append(ins, mask)
	}
	return apply(op, ins...)
}

type attnOp struct {
	baseOp
	dt      tensor.Dtype
	s       AttentionShape
	scale   float64
	hasMask bool
	drop    float64
	noise   *Noise
	noiseID uint64
	grad    bool // inputs + dOut -> [dq; dk; dv] stacked by rows
}

func (op attnOp) String() string {
	return fmt.Sprintf("Attention{%v,%+v,scale=%g,mask=%v,drop=%g/%d,grad=%v}", op.dt, op.s, op.scale, op.hasMask, op.drop, op.noiseID, op.grad)
}
func (op attnOp) WriteHash(h hash.Hash) { writeHash(h, op) }
func (op attnOp) Hashcode() uint32      { return hashcode(op) }
func (op attnOp) Arity() int {
	n := 3
	if op.s.Cached > 0 {
		n += 2
	}
	if op.hasMask {
		n++
	}
	if op.grad {
		n++
	}
	return n
}
func (op attnOp) Type() hm.Type {
	ts := make([]hm.Type, 0, op.Arity()+1)
	for i := 0; i < op.Arity(); i++ {
		ts = append(ts, tt(2, op.dt))
	}
	if op.hasMask {
		ts[3+2*b2i(op.s.Cached > 0)] = tt(3, op.dt)
	}
	return fnType(append(ts, tt(2, op.dt))...)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (op attnOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := op.s
	c := s.Heads * s.HeadDim
	want := []tensor.Shape{{s.B * s.Tq, c}, {s.B * s.Tk, c}, {s.B * s.Tk, c}}
	if s.Cached > 0 {
		want = append(want, tensor.Shape{s.B * s.Cached, c}, tensor.Shape{s.B * s.Cached, c})
	}
	if op.hasMask {
		want = append(want, tensor.Shape{s.B, s.Tq, s.keys()})
	}
	if op.grad {
		want = append(want, tensor.Shape{s.B * s.Tq, c})
	}
	for i, w := range want {
		if got := shapeOf(in[i]); !got.Eq(w) {
			return nil, fmt.Errorf("%v: input %d has shape %v, want %v", op, i, got, w)
		}
	}
	if op.grad {
		return tensor.Shape{s.B*s.Tq + 2*s.B*s.Tk, c}, nil
	}
	return tensor.Shape{s.B * s.Tq, c}, nil
}

func (op attnOp) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	c := s.Heads * s.HeadDim
	rows := s.B * s.Tq
	if op.grad {
		rows += 2 * s.B * s.Tk
	}
	y := op.out(op.dt, rows, c)
	switch op.dt {
	case tensor.Float32:
		attnDo(op, vals, y.Data().([]float32))
	default:
		attnDo(op, vals, y.Data().([]float64))
	}
	return y, nil
}

func attnDo[T Float](op attnOp, vals []G.Value, y []T) {
	s := op.s
	c, hd, tall := s.Heads*s.HeadDim, s.HeadDim, s.keys()
	q, k, v := data[T](vals[0]), data[T](vals[1]), data[T](vals[2])
	i := 3
	var kc, vc, mask, dout []T
	if s.Cached > 0 {
		kc, vc = data[T](vals[3]), data[T](vals[4])
		i = 5
	}
	if op.hasMask {
		mask = data[T](vals[i])
		i++
	}
	if op.grad {
		dout = data[T](vals[i])
	}
	var seed uint64
	if op.drop > 0 {
		seed = op.noise.Seed()
	}
	keep := T(1 / (1 - op.drop))
	scale := T(op.scale)
	parallelFor(s.B*s.Heads, 1, func(lo, hi int) {
		p := make([]T, s.Tq*tall)
		var dp []T
		if op.grad {
			dp = make([]T, s.Tq*tall)
		}
		for item := lo; item < hi; item++ {
			b, h := item/s.Heads, item%s.Heads
			qo := b*s.Tq*c + h*hd
			ko := b*s.Tk*c + h*hd
			// Scores.
			if s.Cached > 0 {
				gemm1(false, true, s.Tq, s.Cached, hd, scale, q[qo:], c, kc[b*s.Cached*c+h*hd:], c, 0, p, tall)
			}
			gemm1(false, true, s.Tq, s.Tk, hd, scale, q[qo:], c, k[ko:], c, 0, p[s.Cached:], tall)
			if mask != nil {
				m := mask[b*s.Tq*tall : (b+1)*s.Tq*tall]
				for j := range p {
					p[j] += m[j]
				}
			}
			softmaxRows(p, s.Tq, tall)
			base := uint64(item) * uint64(s.Tq*tall)
			if !op.grad {
				if op.drop > 0 {
					applyDropout(p, p, seed, op.noiseID, base, op.drop, keep)
				}
				if s.Cached > 0 {
					gemm1(false, false, s.Tq, hd, s.Cached, 1, p, tall, vc[b*s.Cached*c+h*hd:], c, 0, y[qo:], c)
					gemm1(false, false, s.Tq, hd, s.Tk, 1, p[s.Cached:], tall, v[ko:], c, 1, y[qo:], c)
				} else {
					gemm1(false, false, s.Tq, hd, s.Tk, 1, p, tall, v[ko:], c, 0, y[qo:], c)
				}
				continue
			}
			// Backward (no cache): y holds [dq; dk; dv].
			dq, dk, dv := y, y[s.B*s.Tq*c:], y[s.B*s.Tq*c+s.B*s.Tk*c:]
			pd := dp // dropped probabilities, reusing dp's buffer first
			copy(pd, p)
			if op.drop > 0 {
				applyDropout(pd, pd, seed, op.noiseID, base, op.drop, keep)
			}
			gemm1(true, false, s.Tk, hd, s.Tq, 1, pd, tall, dout[qo:], c, 0, dv[ko:], c)
			gemm1(false, true, s.Tq, s.Tk, hd, 1, dout[qo:], c, v[ko:], c, 0, dp, tall)
			if op.drop > 0 {
				applyDropout(dp, dp, seed, op.noiseID, base, op.drop, keep)
			}
			for r := 0; r < s.Tq; r++ {
				pr, dr := p[r*tall:(r+1)*tall], dp[r*tall:(r+1)*tall]
				var dot float64
				for j := range pr {
					dot += float64(pr[j]) * float64(dr[j])
				}
				for j := range pr {
					dr[j] = pr[j] * (dr[j] - T(dot))
				}
			}
			gemm1(false, false, s.Tq, hd, s.Tk, scale, dp, tall, k[ko:], c, 0, dq[qo:], c)
			gemm1(true, false, s.Tk, hd, s.Tq, scale, dp, tall, q[qo:], c, 0, dk[ko:], c)
		}
	})
}

// softmaxRows replaces each row of p (rows×cols) by its softmax, with the
// float32 exp for float32 data.
func softmaxRows[T Float](p []T, rows, cols int) {
	if p32, ok := any(p).([]float32); ok {
		softmaxRowsExp(p32, rows, cols, exp32)
		return
	}
	softmaxRowsExp(p, rows, cols, func(x T) T { return T(math.Exp(float64(x))) })
}

func softmaxRowsExp[T Float](p []T, rows, cols int, exp func(T) T) {
	for r := 0; r < rows; r++ {
		row := p[r*cols : (r+1)*cols]
		mx := row[0]
		for _, v := range row[1:] {
			if v > mx {
				mx = v
			}
		}
		var sum T
		for j, v := range row {
			e := exp(v - mx)
			row[j] = e
			sum += e
		}
		inv := 1 / sum
		for j := range row {
			row[j] *= inv
		}
	}
}

func (op attnOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	d[0], d[1], d[2] = true, true, true
	return d
}

func (op attnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	if op.grad || op.s.Cached > 0 {
		return nil, fmt.Errorf("%v: no gradient through a KV cache or of a gradient", op)
	}
	g := op
	g.baseOp = cached()
	g.grad = true
	all := apply(g, append(append(G.Nodes{}, inputs...), grad)...)
	s := op.s
	nq, nk := s.B*s.Tq, s.B*s.Tk
	out := make(G.Nodes, len(inputs))
	out[0] = RowRange(all, 0, nq)
	out[1] = RowRange(all, nq, nq+nk)
	out[2] = RowRange(all, nq+nk, nq+2*nk)
	return out, nil
}

// RowRange returns rows [lo,hi) of a 2-D tensor as a view of its memory
// (no copy): the three gradients of the attention op are row blocks of one
// output.
func RowRange(x *G.Node, lo, hi int) *G.Node {
	return apply(rowRangeOp{dt: dtypeOf(x), lo: lo, hi: hi}, x)
}

type rowRangeOp struct {
	baseOp
	dt     tensor.Dtype
	lo, hi int
}

func (op rowRangeOp) String() string        { return fmt.Sprintf("RowRange{%v,%d:%d}", op.dt, op.lo, op.hi) }
func (op rowRangeOp) WriteHash(h hash.Hash) { writeHash(h, op) }
func (op rowRangeOp) Hashcode() uint32      { return hashcode(op) }
func (op rowRangeOp) Arity() int            { return 1 }
func (op rowRangeOp) ReturnsPtr() bool      { return true }
func (op rowRangeOp) Type() hm.Type         { return fnType(tt(2, op.dt), tt(2, op.dt)) }
func (op rowRangeOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	s := shapeOf(in[0])
	if len(s) != 2 || op.hi > s[0] || op.lo < 0 || op.lo > op.hi {
		return nil, fmt.Errorf("%v: bad range for %v", op, s)
	}
	return tensor.Shape{op.hi - op.lo, s[1]}, nil
}
func (op rowRangeOp) Do(vals ...G.Value) (G.Value, error) {
	x := dense(vals[0])
	c := x.Shape()[1]
	switch op.dt {
	case tensor.Float32:
		return tensor.New(tensor.WithBacking(data[float32](x)[op.lo*c:op.hi*c]), tensor.WithShape(op.hi-op.lo, c)), nil
	default:
		return tensor.New(tensor.WithBacking(data[float64](x)[op.lo*c:op.hi*c]), tensor.WithShape(op.hi-op.lo, c)), nil
	}
}
