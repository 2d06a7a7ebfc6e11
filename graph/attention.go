package graph

import (
	"fmt"
	"math"
	"sync"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// AttentionShape describes multi-head scaled dot-product attention over
// row-major 2-D activations: queries are B·Tq rows and keys/values B·Tk rows
// of width Heads·HeadDim, head h occupying columns [h·HeadDim, (h+1)·HeadDim).
// A decode step attends its new tokens to a KV cache: its keys and values
// are the cache (see CacheWrite), Tk its slots per example.
type AttentionShape struct {
	B, Tq, Tk      int
	Heads, HeadDim int
}

// Attention computes softmax(Q·Kᵀ/√d + mask)·V for every batch row and
// head in one op, calling BLAS on strided head slices, so heads are never
// transposed or copied. mask (B,Tq,Tk) is additive and may be nil (see
// PrefixCausalMask). dropout > 0 drops attention probabilities with the
// noise source's current seed (training only).
func Attention(q, k, v, mask *G.Node, s AttentionShape, dropout float64, noise *Noise) *G.Node {
	return attention(q, k, v, mask, s, dropout, noise, nil)
}

// attention is Attention whose products (forward and backward) call mm
// (nil: sgemm; see Builder.Attention).
func attention(q, k, v, mask *G.Node, s AttentionShape, dropout float64, noise *Noise, mm products) *G.Node {
	a := attnArgs{dt: dtypeOf(q), s: s, scale: 1 / math.Sqrt(float64(s.HeadDim)), hasMask: mask != nil, mm: mm, scratch: new(attnScratch)}
	a.cached = isCacheWrite(k) && isCacheWrite(v) // a decode step (attention_decode.go)
	if dropout > 0 {
		a.drop, a.noise, a.noiseID = dropout, noise, noise.nextID()
	}
	ins := G.Nodes{q, k, v}
	if mask != nil {
		ins = append(ins, mask)
	}
	return apply(attnOp{a.base("Attention", len(ins), false), a}, ins...)
}

// attnArgs are the parameters shared by the attention ops.
type attnArgs struct {
	dt      tensor.Dtype
	s       AttentionShape
	scale   float64
	hasMask bool
	drop    float64
	noise   *Noise
	noiseID uint64
	mm      products // the graph's product (precision.go); nil: sgemm
	cached  bool     // keys and values are a KV cache: the forward pass may take attnDecode
	// scratch recycles the per-worker probability buffers of the forward
	// and backward kernels from run to run (one per op, shared by its
	// forward and gradient ops), so a training step allocates none.
	scratch *attnScratch
}

// attnScratch holds probability buffers (*[]float32 or *[]float64, each
// Tq·Tk long) between runs, and the fused forward's buffers.
type attnScratch struct {
	pool  sync.Pool
	fused sync.Pool // attnFused's packed keys and score blocks (*[]float32)
}

// get returns a buffer of n elements (recycled or new); put gives it back.
func scratchGet[T Float](sc *attnScratch, n int) *[]T {
	if b, ok := sc.pool.Get().(*[]T); ok && len(*b) == n {
		return b
	}
	b := make([]T, n)
	return &b
}

func scratchPut[T Float](sc *attnScratch, b *[]T) { sc.pool.Put(b) }

// base is the plumbing of the named attention op over n inputs (all 2-D
// but the 3-D mask, which comes last, before dOut for the gradient).
func (a attnArgs) base(name string, n int, grad bool) baseOp {
	ins := repeatT(n, tt(2, a.dt))
	if a.hasMask {
		m := n - 1
		if grad {
			m--
		}
		ins[m] = tt(3, a.dt)
	}
	sig := fmt.Sprintf("%s{%v,%+v,scale=%g,mask=%v,drop=%g/%d%s}", name, a.dt, a.s, a.scale, a.hasMask, a.drop, a.noiseID, precSig(a.mm))
	if a.cached {
		sig += "kv"
	}
	return newBase(sig, tt(2, a.dt), ins...)
}

// check compares input shapes with (q, k, v[, mask][, dOut]).
func (a attnArgs) check(op fmt.Stringer, in []G.DimSizer, grad bool) error {
	s := a.s
	c := s.Heads * s.HeadDim
	want := []tensor.Shape{{s.B * s.Tq, c}, {s.B * s.Tk, c}, {s.B * s.Tk, c}}
	if a.hasMask {
		want = append(want, tensor.Shape{s.B, s.Tq, s.Tk})
	}
	if grad {
		want = append(want, tensor.Shape{s.B * s.Tq, c})
	}
	for i, w := range want {
		if got := shapeOf(in[i]); !got.Eq(w) {
			return fmt.Errorf("%v: input %d has shape %v, want %v", op, i, got, w)
		}
	}
	return nil
}

// attnOp is the attention output from (q, k, v[, mask]).
type attnOp struct {
	baseOp
	attnArgs
}

func (op attnOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := op.check(op, in, false); err != nil {
		return nil, err
	}
	return tensor.Shape{op.s.B * op.s.Tq, op.s.Heads * op.s.HeadDim}, nil
}
func (op attnOp) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	y := op.out(op.dt, s.B*s.Tq, s.Heads*s.HeadDim)
	switch op.dt {
	case tensor.Float32:
		attnForward(op.attnArgs, vals, y.Data().([]float32))
	default:
		attnForward(op.attnArgs, vals, y.Data().([]float64))
	}
	return y, nil
}

func (op attnOp) DiffWRT(n int) []bool {
	d := make([]bool, n)
	d[0], d[1], d[2] = true, true, true
	return d
}

func (op attnOp) SymDiff(inputs G.Nodes, output, grad *G.Node) (G.Nodes, error) {
	ins := append(append(G.Nodes{}, inputs...), grad)
	all := apply(attnGradOp{op.attnArgs.base("AttentionGrad", len(ins), true), op.attnArgs}, ins...)
	s := op.s
	nq, nk := s.B*s.Tq, s.B*s.Tk
	out := make(G.Nodes, len(inputs))
	out[0] = RowRange(all, 0, nq)
	out[1] = RowRange(all, nq, nq+nk)
	out[2] = RowRange(all, nq+nk, nq+2*nk)
	return out, nil
}

// attnGradOp is [dq; dk; dv] stacked by rows from (q, k, v[, mask], dOut).
type attnGradOp struct {
	baseOp
	attnArgs
}

func (op attnGradOp) InferShape(in ...G.DimSizer) (tensor.Shape, error) {
	if err := op.check(op, in, true); err != nil {
		return nil, err
	}
	s := op.s
	return tensor.Shape{s.B*s.Tq + 2*s.B*s.Tk, s.Heads * s.HeadDim}, nil
}
func (op attnGradOp) Do(vals ...G.Value) (G.Value, error) {
	s := op.s
	y := op.out(op.dt, s.B*s.Tq+2*s.B*s.Tk, s.Heads*s.HeadDim)
	switch op.dt {
	case tensor.Float32:
		attnBackward(op.attnArgs, vals, y.Data().([]float32))
	default:
		attnBackward(op.attnArgs, vals, y.Data().([]float64))
	}
	return y, nil
}
func (op attnGradOp) SymDiff(G.Nodes, *G.Node, *G.Node) (G.Nodes, error) { return noGrad(op) }

// attnInputs splits an attention op's inputs: q, k, v, the mask (nil
// without) and, for the gradient, dOut.
func attnInputs[T Float](a attnArgs, vals []G.Value, grad bool) (q, k, v, mask, dout []T) {
	q, k, v = data[T](vals[0]), data[T](vals[1]), data[T](vals[2])
	i := 3
	if a.hasMask {
		mask = data[T](vals[i])
		i++
	}
	if grad {
		dout = data[T](vals[i])
	}
	return
}

// attnProbs writes the attention probabilities of one (example b, head h)
// item into p (Tq × Tk): softmax(q·kᵀ·scale + mask).
func attnProbs[T Float](a attnArgs, b, h int, q, k, mask, p []T) {
	s := a.s
	c, hd := s.Heads*s.HeadDim, s.HeadDim
	gemmVia(a.mm, true, false, true, s.Tq, s.Tk, hd, T(a.scale), q[b*s.Tq*c+h*hd:], c, k[b*s.Tk*c+h*hd:], c, 0, p, s.Tk)
	if mask != nil {
		m := mask[b*s.Tq*s.Tk : (b+1)*s.Tq*s.Tk]
		for j := range p {
			p[j] += m[j]
		}
	}
	softmaxRows(p, s.Tq, s.Tk)
}

// dropProbs applies the op's dropout mask to item's probabilities p into
// dst (the one mask helper, applyDropout, so the backward pass sees its
// forward pass's mask); without dropout it copies p (or leaves dst == p).
func dropProbs[T Float](a attnArgs, seed uint64, item int, dst, p []T) {
	if a.drop <= 0 {
		if &dst[0] != &p[0] {
			copy(dst, p)
		}
		return
	}
	keep := T(1 / (1 - a.drop))
	applyDropout(dst, p, seed, a.noiseID, uint64(item)*uint64(len(p)), a.drop, keep)
}

func noiseSeed(a attnArgs) uint64 {
	if a.drop > 0 {
		return a.noise.Seed()
	}
	return 0
}

func attnForward[T Float](a attnArgs, vals []G.Value, y []T) {
	if y32, ok := any(y).([]float32); ok && decodeApplies(a) {
		attnDecode(a, vals, y32)
		return
	}
	if y32, ok := any(y).([]float32); ok && fusedApplies(a) {
		attnFused(a, vals, y32)
		return
	}
	attnForwardGeneral(a, vals, y)
}

// attnForwardGeneral is attnForward on the general path: per (example,
// head), an sgemm for the scores, the softmax, dropout and an sgemm for the
// output.
func attnForwardGeneral[T Float](a attnArgs, vals []G.Value, y []T) {
	s := a.s
	c, hd, tall := s.Heads*s.HeadDim, s.HeadDim, s.Tk
	q, k, v, mask, _ := attnInputs[T](a, vals, false)
	seed := noiseSeed(a)
	parallelFor(s.B*s.Heads, 1, func(lo, hi int) {
		pb := scratchGet[T](a.scratch, s.Tq*tall)
		defer scratchPut(a.scratch, pb)
		p := *pb
		for item := lo; item < hi; item++ {
			b, h := item/s.Heads, item%s.Heads
			qo, ko := b*s.Tq*c+h*hd, b*s.Tk*c+h*hd
			attnProbs(a, b, h, q, k, mask, p)
			dropProbs(a, seed, item, p, p)
			gemmVia(a.mm, true, false, false, s.Tq, hd, s.Tk, 1, p, tall, v[ko:], c, 0, y[qo:], c)
		}
	})
}

// attnBackward writes [dq; dk; dv] into y.
func attnBackward[T Float](a attnArgs, vals []G.Value, y []T) {
	s := a.s
	c, hd, tall := s.Heads*s.HeadDim, s.HeadDim, s.Tk
	q, k, v, mask, dout := attnInputs[T](a, vals, true)
	seed := noiseSeed(a)
	scale := T(a.scale)
	dq, dk, dv := y, y[s.B*s.Tq*c:], y[s.B*s.Tq*c+s.B*s.Tk*c:]
	parallelFor(s.B*s.Heads, 1, func(lo, hi int) {
		pb, dpb := scratchGet[T](a.scratch, s.Tq*tall), scratchGet[T](a.scratch, s.Tq*tall)
		defer scratchPut(a.scratch, pb)
		defer scratchPut(a.scratch, dpb)
		p, dp := *pb, *dpb
		for item := lo; item < hi; item++ {
			b, h := item/s.Heads, item%s.Heads
			qo, ko := b*s.Tq*c+h*hd, b*s.Tk*c+h*hd
			attnProbs(a, b, h, q, k, mask, p)
			pd := p // dropped probabilities: in dp's buffer first, when there is dropout
			if a.drop > 0 {
				pd = dp
				dropProbs(a, seed, item, pd, p)
			}
			gemmVia(a.mm, true, true, false, s.Tk, hd, s.Tq, 1, pd, tall, dout[qo:], c, 0, dv[ko:], c)
			gemmVia(a.mm, true, false, true, s.Tq, s.Tk, hd, 1, dout[qo:], c, v[ko:], c, 0, dp, tall)
			if a.drop > 0 {
				dropProbs(a, seed, item, dp, dp)
			}
			softmaxGrad(p, dp, s.Tq, tall)
			gemmVia(a.mm, true, false, false, s.Tq, hd, s.Tk, scale, dp, tall, k[ko:], c, 0, dq[qo:], c)
			gemmVia(a.mm, true, true, false, s.Tk, hd, s.Tq, scale, dp, tall, q[qo:], c, 0, dk[ko:], c)
		}
	})
}

// softmaxGrad replaces each row of d (rows×cols, the gradient of the
// softmax output p) by the gradient of its input, p·(d − Σ p·d).
func softmaxGrad[T Float](p, d []T, rows, cols int) {
	if p32, ok := any(p).([]float32); ok && softmaxGradRows32(p32, any(d).([]float32), rows, cols) {
		return // AVX-512, same bits
	}
	for r := 0; r < rows; r++ {
		softmaxGradRow(p[r*cols:(r+1)*cols], d[r*cols:(r+1)*cols])
	}
}

// softmaxGradRow is one row of softmaxGrad. The dot product is summed in
// float64 in eight lanes (element j in lane j mod 8 below the last multiple
// of 8), added as ((l0+l4)+(l2+l6)) + ((l1+l5)+(l3+l7)), then the remaining
// elements in order: the order of the AVX-512 kernel, which gives the same
// bits.
func softmaxGradRow[T Float](pr, dr []T) {
	var l [8]float64
	b := len(pr) &^ 7
	for j0 := 0; j0 < b; j0 += 8 {
		for k := 0; k < 8; k++ {
			l[k] += float64(float64(pr[j0+k]) * float64(dr[j0+k])) // float64(): no FMA
		}
	}
	dot := ((l[0] + l[4]) + (l[2] + l[6])) + ((l[1] + l[5]) + (l[3] + l[7]))
	for j := b; j < len(pr); j++ {
		dot += float64(float64(pr[j]) * float64(dr[j]))
	}
	for j := range pr {
		dr[j] = pr[j] * (dr[j] - T(dot))
	}
}

// softmaxRows replaces each row of p (rows×cols) by its softmax, with the
// float32 exp for float32 data.
func softmaxRows[T Float](p []T, rows, cols int) {
	if p32, ok := any(p).([]float32); ok {
		softmaxRows32(p32, rows, cols)
		return
	}
	softmaxRowsExp(p, rows, cols, func(x T) T { return T(math.Exp(float64(x))) })
}

// softmaxRows32 is softmaxRowsExp with exp32 for float32, its maximum,
// exponentials and scaling 16 lanes at a time (max32, expSub32, scale32)
// and each row's sum the same sequential float32 sum, so the same bits. The
// rows go softmaxGroup at a time so that their sums, each a chain of
// dependent additions, run side by side (rowSums32).
func softmaxRows32(p []float32, rows, cols int) {
	var sums [softmaxGroup]float32
	for r0 := 0; r0 < rows; r0 += softmaxGroup {
		g := min(softmaxGroup, rows-r0)
		blk := p[r0*cols : (r0+g)*cols]
		for r := 0; r < g; r++ {
			row := blk[r*cols : (r+1)*cols]
			expSub32(row, max32(row))
		}
		rowSums32(blk, g, cols, &sums)
		for r := 0; r < g; r++ {
			scale32(blk[r*cols:(r+1)*cols], 1/sums[r])
		}
	}
}

// softmaxGroup is how many rows' sums rowSums32 interleaves.
const softmaxGroup = 8

// rowSums32 sets sums[r] to the sum of row r of p (rows×cols, rows ≤
// softmaxGroup), each added in element order as a plain loop does; a full
// group's eight sums are interleaved, which changes no bits but lets the
// additions of different rows overlap instead of waiting on each other.
func rowSums32(p []float32, rows, cols int, sums *[softmaxGroup]float32) {
	if rows < softmaxGroup {
		for r := 0; r < rows; r++ {
			var s float32
			for _, v := range p[r*cols : (r+1)*cols] {
				s += v
			}
			sums[r] = s
		}
		return
	}
	r0, r1, r2, r3 := p[:cols], p[cols:2*cols], p[2*cols:3*cols], p[3*cols:4*cols]
	r4, r5, r6, r7 := p[4*cols:5*cols], p[5*cols:6*cols], p[6*cols:7*cols], p[7*cols:8*cols]
	var s0, s1, s2, s3, s4, s5, s6, s7 float32
	for j := range r0 {
		s0 += r0[j]
		s1 += r1[j]
		s2 += r2[j]
		s3 += r3[j]
		s4 += r4[j]
		s5 += r5[j]
		s6 += r6[j]
		s7 += r7[j]
	}
	*sums = [softmaxGroup]float32{s0, s1, s2, s3, s4, s5, s6, s7}
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

// RowRange returns rows [lo,hi) of a 2-D tensor as a view of its memory
// (no copy): the three gradients of the attention op are row blocks of one
// output.
func RowRange(x *G.Node, lo, hi int) *G.Node {
	dt := dtypeOf(x)
	return apply(rowRangeOp{newBase(fmt.Sprintf("RowRange{%v,%d:%d}", dt, lo, hi), tt(2, dt), tt(2, dt)), dt, lo, hi}, x)
}

// rowRangeOp is the view x[lo:hi] from (x).
type rowRangeOp struct {
	baseOp
	dt     tensor.Dtype
	lo, hi int
}

func (op rowRangeOp) ReturnsPtr() bool { return true }
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
