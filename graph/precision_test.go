package graph

import (
	"fmt"
	"math"
	"math/rand"
	"regexp"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// u is float32's unit roundoff.
const u = 0x1p-24

// rbf rounds v to bf16 and widens it back (float64).
func rbf(v float64) float64 { return float64(F32FromBF16(BF16FromF32(float32(v)))) }

// bf16Flip reports whether a value computed as x with an error up to eps
// may round to a different bf16 value than x itself (x lies within eps of a
// rounding midpoint), and the size of that difference (one bf16 ulp).
func bf16Flip(x, eps float64) (bool, float64) {
	a := math.Abs(x)
	if a == 0 && eps == 0 {
		return false, 0
	}
	lo := float64(math.Float32frombits(math.Float32bits(float32(a)) &^ 0xffff)) // truncated to bf16
	if lo > a {
		lo = float64(math.Float32frombits(math.Float32bits(float32(lo)) - 0x10000))
	}
	hi := float64(math.Float32frombits(math.Float32bits(float32(lo)) + 0x10000))
	mid := (lo + hi) / 2
	eps += u * a // the conversion of x to float32 before the rounding
	return math.Abs(a-mid) <= eps, hi - lo
}

// precGraph is a float32 graph under test: its inputs, its output y and
// the loss Σ y⊙R whose gradients it computes.
type precGraph struct {
	b      *Builder
	in     []*G.Node
	y      *G.Node
	r      []float32
	grads  G.Nodes
	vm     G.VM
	inputs [][]float32
}

// newPrecGraph builds build(inputs) at precision p with gradients of Σ y⊙R
// for the first wrt inputs, R drawn from rng.
func newPrecGraph(t *testing.T, p Precision, wrt int, shapes [][]int, inputs [][]float32, rng *rand.Rand, build func(b *Builder, in []*G.Node) *G.Node) *precGraph {
	t.Helper()
	g := &precGraph{b: NewBuilder(tensor.Float32, WithPrecision(p)), inputs: inputs}
	err := Build(func() {
		for i, sh := range shapes {
			v := tensor.New(tensor.WithShape(sh...), tensor.WithBacking(inputs[i]))
			g.in = append(g.in, G.NewTensor(g.b.G, tensor.Float32, len(sh), G.WithShape(sh...), G.WithValue(v), G.WithName(fmt.Sprintf("in%d", i))))
		}
		g.y = build(g.b, g.in)
		g.r = make([]float32, g.y.Shape().TotalSize())
		for i := range g.r {
			g.r[i] = float32(rng.NormFloat64())
		}
		rn := G.NewTensor(g.b.G, tensor.Float32, g.y.Dims(), G.WithShape(g.y.Shape()...), G.WithValue(tensor.New(tensor.WithShape(g.y.Shape()...), tensor.WithBacking(g.r))), G.WithName("R"))
		loss := G.Must(G.Sum(G.Must(G.HadamardProd(g.y, rn))))
		var e error
		if g.grads, e = G.Grad(loss, g.in[:wrt]...); e != nil {
			Fail(e)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	g.vm = G.NewTapeMachine(g.b.G)
	t.Cleanup(func() { g.vm.Close() })
	return g
}

func (g *precGraph) run(t *testing.T) {
	t.Helper()
	g.vm.Reset()
	if err := g.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
}

func (g *precGraph) out() []float32 { return g.y.Value().Data().([]float32) }
func (g *precGraph) grad(i int) []float32 {
	return g.grads[i].Value().Data().([]float32)
}

// refProduct is op(a)·op(b) in float64 on the bf16-rounded operands (round
// false: on the operands as they are), with the element-wise bound on the
// float32 sum of those exact products: (k+2)·u·Σ|a||b| (k additions,
// the final store and, where c is added, its addition).
func refProduct(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, round bool) (c, bound []float64) {
	c, bound = make([]float64, m*n), make([]float64, m*n)
	at := func(i, l int) float64 {
		idx := i*lda + l
		if tA {
			idx = l*lda + i
		}
		v := a[idx]
		if round {
			return rbf(float64(v))
		}
		return float64(v)
	}
	bt := func(l, j int) float64 {
		idx := l*ldb + j
		if tB {
			idx = j*ldb + l
		}
		v := b[idx]
		if round {
			return rbf(float64(v))
		}
		return float64(v)
	}
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s, abs float64
			for l := 0; l < k; l++ {
				p := at(i, l) * bt(l, j)
				s += p
				abs += math.Abs(p)
			}
			c[i*n+j], bound[i*n+j] = s, float64(k+2)*u*abs
		}
	}
	return c, bound
}

// checkWithin compares got with want element-wise under bound; it also
// requires that got differs from unrounded (the product on unrounded
// operands) somewhere by more than the bound, which shows that the bf16
// rounding happened.
func checkWithin(t *testing.T, what string, got []float32, want, bound, unrounded []float64) {
	t.Helper()
	rounded := false
	for i, g := range got {
		if d := math.Abs(float64(g) - want[i]); !(d <= bound[i]) {
			t.Fatalf("%s[%d] = %v, want %v ± %.3g (off by %.3g)", what, i, g, want[i], bound[i], d)
		}
		if unrounded != nil && math.Abs(float64(g)-unrounded[i]) > bound[i] {
			rounded = true
		}
	}
	if unrounded != nil && !rounded {
		t.Fatalf("%s matches the product of unrounded operands: the bf16 rounding did not happen", what)
	}
}

// TestBF16LinearAndMatMulMatchFloat64OnRoundedOperands checks the forward
// pass and both gradients of Linear (with and without bias) and of MatMul
// in each transpose combination at precision BF16 against float64 products
// of the bf16-rounded operands. The bound is the float32 summation error of
// exact products, (k+2)·u·Σ|a·b| per element: bf16 operands multiply
// exactly in float32, so nothing else separates the two. The upstream
// gradient of y is R itself (loss Σ y⊙R).
func TestBF16LinearAndMatMulMatchFloat64OnRoundedOperands(t *testing.T) {
	const n, in, out = 7, 19, 5
	for _, bias := range []bool{true, false} {
		t.Run(fmt.Sprintf("Linear/bias=%v", bias), func(t *testing.T) {
			rng := rand.New(rand.NewSource(3))
			x, w, bv := randF32(rng, n*in), randF32(rng, out*in), randF32(rng, out)
			shapes, inputs := [][]int{{n, in}, {out, in}}, [][]float32{x, w}
			if bias {
				shapes, inputs = append(shapes, []int{out}), append(inputs, bv)
			}
			g := newPrecGraph(t, BF16, len(shapes), shapes, inputs, rng, func(b *Builder, ins []*G.Node) *G.Node {
				var bn *G.Node
				if bias {
					bn = ins[2]
				}
				return b.Linear(ins[0], ins[1], bn)
			})
			g.run(t)
			y, yb := refProduct(false, true, n, out, in, x, in, w, in, true)
			y0, _ := refProduct(false, true, n, out, in, x, in, w, in, false)
			if bias {
				for i := range y {
					y[i] += float64(bv[i%out])
					y0[i] += float64(bv[i%out])
					yb[i] += float64(in+2) * u * math.Abs(float64(bv[i%out]))
				}
			}
			checkWithin(t, "y", g.out(), y, yb, y0)
			dx, dxb := refProduct(false, false, n, in, out, g.r, out, w, in, true)
			dx0, _ := refProduct(false, false, n, in, out, g.r, out, w, in, false)
			checkWithin(t, "dx", g.grad(0), dx, dxb, dx0)
			dw, dwb := refProduct(true, false, out, in, n, g.r, out, x, in, true)
			dw0, _ := refProduct(true, false, out, in, n, g.r, out, x, in, false)
			checkWithin(t, "dW", g.grad(1), dw, dwb, dw0)
			if bias { // a float32 column sum: no bf16 rounding
				db, dbb := make([]float64, out), make([]float64, out)
				for i, r := range g.r {
					db[i%out] += float64(r)
					dbb[i%out] += float64(n+1) * u * math.Abs(float64(r))
				}
				checkWithin(t, "db", g.grad(2), db, dbb, nil)
			}
		})
	}
	for _, tr := range [][2]bool{{false, false}, {false, true}, {true, false}, {true, true}} {
		tA, tB := tr[0], tr[1]
		t.Run(fmt.Sprintf("MatMul/tA=%v,tB=%v", tA, tB), func(t *testing.T) {
			const m, k, nn = 6, 17, 4
			rng := rand.New(rand.NewSource(4))
			as, bs := []int{m, k}, []int{k, nn}
			if tA {
				as = []int{k, m}
			}
			if tB {
				bs = []int{nn, k}
			}
			a, b := randF32(rng, m*k), randF32(rng, k*nn)
			g := newPrecGraph(t, BF16, 2, [][]int{as, bs}, [][]float32{a, b}, rng, func(bl *Builder, ins []*G.Node) *G.Node {
				return matMul(ins[0], ins[1], tA, tB, bl.products())
			})
			g.run(t)
			c, cb := refProduct(tA, tB, m, nn, k, a, as[1], b, bs[1], true)
			c0, _ := refProduct(tA, tB, m, nn, k, a, as[1], b, bs[1], false)
			checkWithin(t, "c", g.out(), c, cb, c0)
			// dA = R·op(B)ᵀ, stored in A's layout; dB = op(A)ᵀ·R in B's.
			var da, dab, da0, db, dbb, db0 []float64
			if !tA {
				da, dab = refProduct(false, !tB, m, k, nn, g.r, nn, b, bs[1], true)
				da0, _ = refProduct(false, !tB, m, k, nn, g.r, nn, b, bs[1], false)
			} else {
				da, dab = refProduct(tB, true, k, m, nn, b, bs[1], g.r, nn, true)
				da0, _ = refProduct(tB, true, k, m, nn, b, bs[1], g.r, nn, false)
			}
			if !tB {
				db, dbb = refProduct(!tA, false, k, nn, m, a, as[1], g.r, nn, true)
				db0, _ = refProduct(!tA, false, k, nn, m, a, as[1], g.r, nn, false)
			} else {
				db, dbb = refProduct(true, tA, nn, k, m, g.r, nn, a, as[1], true)
				db0, _ = refProduct(true, tA, nn, k, m, g.r, nn, a, as[1], false)
			}
			checkWithin(t, "dA", g.grad(0), da, dab, da0)
			checkWithin(t, "dB", g.grad(1), db, dbb, db0)
		})
	}
}

// TestBF16AttentionMatchesFloat64OnRoundedOperands checks the attention op
// at precision BF16, forward (y) and backward (dq, dk, dv), against a
// float64 reference that rounds to bf16 exactly where the op's products
// do: q, k, v and dOut, the probabilities P before P·V and Pᵀ·dOut, and
// the score gradients dS before dS·K and dSᵀ·Q. Between the products it is
// exact (float64 softmax and softmax backward).
//
// Bound per element: the float32 summation error of the exact bf16
// products, (n+2)·u·Σ|a·b| for a sum of n, plus one bf16 ulp times the
// other operand for each rounded intermediate (P or dS) that the op,
// computing it in float32, may round to the other side of a bf16 midpoint
// than the reference does. That happens only where the reference value lies
// within the op's float32 error of a midpoint (bf16Flip); the float32
// errors of the scores, probabilities and score gradients are bounded to
// first order from the sums that make them, doubled for safety. The scale
// 1/√4 is a power of two, so scaling adds no rounding.
func TestBF16AttentionMatchesFloat64OnRoundedOperands(t *testing.T) {
	s := AttentionShape{B: 2, Tq: 5, Tk: 5, Heads: 2, HeadDim: 4}
	c := s.Heads * s.HeadDim
	rng := rand.New(rand.NewSource(5))
	q, k, v := randF32(rng, s.B*s.Tq*c), randF32(rng, s.B*s.Tk*c), randF32(rng, s.B*s.Tk*c)
	md := maskDense(s.B, s.Tq, s.Tk).Data().([]float64)
	mask := make([]float32, len(md))
	for i, x := range md {
		mask[i] = float32(x)
	}
	shapes := [][]int{{s.B * s.Tq, c}, {s.B * s.Tk, c}, {s.B * s.Tk, c}, {s.B, s.Tq, s.Tk}}
	g := newPrecGraph(t, BF16, 3, shapes, [][]float32{q, k, v, mask}, rng, func(b *Builder, in []*G.Node) *G.Node {
		return b.Attention(in[0], in[1], in[2], in[3], s, 0)
	})
	g.run(t)
	scale := 1 / math.Sqrt(float64(s.HeadDim))
	hd, tq, tk := s.HeadDim, s.Tq, s.Tk
	n := func(i int) float64 { return float64(i+2) * u }
	y, yb := make([]float64, len(q)), make([]float64, len(q))
	dq, dqb := make([]float64, len(q)), make([]float64, len(q))
	dk, dkb := make([]float64, len(k)), make([]float64, len(k))
	dv, dvb := make([]float64, len(v)), make([]float64, len(v))
	flips := 0
	for b := 0; b < s.B; b++ {
		for h := 0; h < s.Heads; h++ {
			Q := func(i, d int) float64 { return rbf(float64(q[(b*tq+i)*c+h*hd+d])) }
			K := func(j, d int) float64 { return rbf(float64(k[(b*tk+j)*c+h*hd+d])) }
			V := func(j, d int) float64 { return rbf(float64(v[(b*tk+j)*c+h*hd+d])) }
			DO := func(i, d int) float64 { return rbf(float64(g.r[(b*tq+i)*c+h*hd+d])) }
			for i := 0; i < tq; i++ {
				// Scores, probabilities and their float32 error bounds.
				sc, eS := make([]float64, tk), make([]float64, tk)
				mx, maxES := math.Inf(-1), 0.0
				for j := 0; j < tk; j++ {
					var dot, abs float64
					for d := 0; d < hd; d++ {
						dot += Q(i, d) * K(j, d)
						abs += math.Abs(Q(i, d) * K(j, d))
					}
					sc[j] = scale*dot + md[(b*tq+i)*tk+j]
					eS[j] = scale * n(hd) * abs
					mx, maxES = math.Max(mx, sc[j]), math.Max(maxES, eS[j])
				}
				p, eP := make([]float64, tk), make([]float64, tk)
				var sum float64
				for j := range p {
					p[j] = math.Exp(sc[j] - mx)
					sum += p[j]
				}
				for j := range p {
					p[j] /= sum
					eP[j] = 2 * p[j] * (2*maxES + float64(tk+10)*u)
				}
				// Forward: y = P̂·V̂.
				for d := 0; d < hd; d++ {
					var acc, abs, flip float64
					for j := 0; j < tk; j++ {
						ph := rbf(p[j])
						acc += ph * V(j, d)
						abs += math.Abs(ph * V(j, d))
						if f, ulp := bf16Flip(p[j], eP[j]); f {
							flip += ulp * math.Abs(V(j, d))
							flips++
						}
					}
					o := (b*tq+i)*c + h*hd + d
					y[o], yb[o] = acc, n(tk)*abs+flip
				}
				// Backward: dp = dÔ·V̂ᵀ, dS = P∘(dp − P·dp).
				dp, eDP := make([]float64, tk), make([]float64, tk)
				for j := 0; j < tk; j++ {
					var acc, abs float64
					for d := 0; d < hd; d++ {
						acc += DO(i, d) * V(j, d)
						abs += math.Abs(DO(i, d) * V(j, d))
					}
					dp[j], eDP[j] = acc, n(hd)*abs
				}
				var rowDot, eDot float64
				for j := range p {
					rowDot += p[j] * dp[j]
					eDot += eP[j]*math.Abs(dp[j]) + p[j]*eDP[j] + 2*u*math.Abs(p[j]*dp[j])
				}
				for j := 0; j < tk; j++ {
					ds := p[j] * (dp[j] - rowDot)
					eDS := 2 * (eP[j]*math.Abs(dp[j]-rowDot) + p[j]*(eDP[j]+eDot+u*(math.Abs(dp[j])+math.Abs(rowDot))) + 2*u*math.Abs(ds))
					dsh := rbf(ds)
					f, ulp := bf16Flip(ds, eDS)
					if f {
						flips++
					}
					for d := 0; d < hd; d++ {
						oq, ok := (b*tq+i)*c+h*hd+d, (b*tk+j)*c+h*hd+d
						dq[oq] += scale * dsh * K(j, d)
						dqb[oq] += scale * math.Abs(dsh*K(j, d)) * n(tk)
						dk[ok] += scale * dsh * Q(i, d)
						dkb[ok] += scale * math.Abs(dsh*Q(i, d)) * n(tq)
						if f {
							dqb[oq] += scale * ulp * math.Abs(K(j, d))
							dkb[ok] += scale * ulp * math.Abs(Q(i, d))
						}
						ph := rbf(p[j])
						dv[ok] += ph * DO(i, d)
						dvb[ok] += math.Abs(ph*DO(i, d)) * n(tq)
						if f, ulp := bf16Flip(p[j], eP[j]); f {
							dvb[ok] += ulp * math.Abs(DO(i, d))
						}
					}
				}
			}
		}
	}
	t.Logf("%d of %d rounded intermediates lie within the float32 error of a bf16 midpoint", flips, 2*s.B*s.Heads*tq*tk)
	checkWithin(t, "y", g.out(), y, yb, nil)
	checkWithin(t, "dq", g.grad(0), dq, dqb, nil)
	checkWithin(t, "dk", g.grad(1), dk, dkb, nil)
	checkWithin(t, "dv", g.grad(2), dv, dvb, nil)
	// The fp32 op on the same inputs is outside these bounds: the test
	// sees the bf16 rounding.
	f := newPrecGraph(t, FP32, 3, shapes, [][]float32{q, k, v, mask}, rand.New(rand.NewSource(5)), func(b *Builder, in []*G.Node) *G.Node {
		return b.Attention(in[0], in[1], in[2], in[3], s, 0)
	})
	f.run(t)
	for _, w := range []struct {
		name        string
		got         []float32
		want, bound []float64
	}{{"y", f.out(), y, yb}, {"dq", f.grad(0), dq, dqb}, {"dk", f.grad(1), dk, dkb}, {"dv", f.grad(2), dv, dvb}} {
		outside := false
		for i, x := range w.got {
			outside = outside || math.Abs(float64(x)-w.want[i]) > w.bound[i]
		}
		if !outside {
			t.Errorf("fp32 attention's %s is within the bf16 bounds: they cannot tell the precisions apart", w.name)
		}
	}
}

// attnBlock is a Linear, attention and a second Linear over x, the shape of
// one transformer block's products.
func attnBlock(s AttentionShape) func(b *Builder, in []*G.Node) *G.Node {
	return func(b *Builder, in []*G.Node) *G.Node {
		h := b.Linear(in[0], in[1], in[2])
		return b.Linear(b.Attention(h, h, h, nil, s, 0), in[1], in[2])
	}
}

// TestFP32PrecisionBuildsTheDefaultGraph checks that WithPrecision(FP32)
// changes nothing: the same ops (by signature) and bit-identical outputs
// and gradients as a graph built without the option, while BF16 builds
// other ops (",bf16" signatures) with other results.
func TestFP32PrecisionBuildsTheDefaultGraph(t *testing.T) {
	s := AttentionShape{B: 2, Tq: 6, Tk: 6, Heads: 2, HeadDim: 8}
	c := s.Heads * s.HeadDim
	rng := rand.New(rand.NewSource(6))
	x, w, bias := randF32(rng, s.B*s.Tq*c), randF32(rng, c*c), randF32(rng, c)
	shapes := [][]int{{s.B * s.Tq, c}, {c, c}, {c}}
	run := func(opts ...BuilderOption) (sigs []string, vals [][]float32) {
		b := NewBuilder(tensor.Float32, opts...)
		var y *G.Node
		var grads G.Nodes
		err := Build(func() {
			var in G.Nodes
			for i, sh := range shapes {
				v := tensor.New(tensor.WithShape(sh...), tensor.WithBacking([][]float32{x, w, bias}[i]))
				in = append(in, G.NewTensor(b.G, tensor.Float32, len(sh), G.WithShape(sh...), G.WithValue(v), G.WithName(fmt.Sprintf("in%d", i))))
			}
			y = attnBlock(s)(b, in)
			var e error
			if grads, e = G.Grad(G.Must(G.Sum(y)), in...); e != nil {
				Fail(e)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(b.G)
		defer vm.Close()
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		for _, n := range b.G.AllNodes() {
			if n.Op() != nil {
				sigs = append(sigs, privateAddr.ReplaceAllString(n.Op().String(), "private"))
			}
		}
		vals = append(vals, clone32(y.Value().Data().([]float32)))
		for _, g := range grads {
			vals = append(vals, clone32(g.Value().Data().([]float32)))
		}
		return sigs, vals
	}
	s0, v0 := run()
	s1, v1 := run(WithPrecision(FP32))
	s2, v2 := run(WithPrecision(BF16))
	if fmt.Sprint(s0) != fmt.Sprint(s1) {
		t.Fatalf("WithPrecision(FP32) built other ops:\n%v\n%v", s0, s1)
	}
	for i := range v0 {
		for j := range v0[i] {
			if math.Float32bits(v0[i][j]) != math.Float32bits(v1[i][j]) {
				t.Fatalf("value %d[%d]: %v without the option, %v with FP32", i, j, v0[i][j], v1[i][j])
			}
		}
	}
	if !strings.Contains(fmt.Sprint(s2), ",bf16") || fmt.Sprint(v2) == fmt.Sprint(v0) {
		t.Fatal("WithPrecision(BF16) built the float32 graph")
	}
}

// privateAddr is the buffer address in a private MatMul's signature,
// which differs between graphs.
var privateAddr = regexp.MustCompile(`private=0x[0-9a-f]+`)

func clone32(v []float32) []float32 { return append([]float32(nil), v...) }

// TestBF16GraphRunAllocatesNoMoreThanFP32 checks that bf16 products add no
// per-run allocation: a run of a block's forward and backward graph at BF16
// allocates no more than the same graph at FP32 (GemmBF16's rounded copies
// are recycled). The graph's own per-run allocations (gorgonia's tape,
// the attention op's probability buffers) are the same in both.
func TestBF16GraphRunAllocatesNoMoreThanFP32(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts under the race detector, whose sync.Pool drops items at random, mean nothing")
	}
	s := AttentionShape{B: 2, Tq: 24, Tk: 24, Heads: 4, HeadDim: 16}
	c := s.Heads * s.HeadDim
	rng := rand.New(rand.NewSource(7))
	in := [][]float32{randF32(rng, s.B*s.Tq*c), randF32(rng, c*c), randF32(rng, c)}
	shapes := [][]int{{s.B * s.Tq, c}, {c, c}, {c}}
	allocs := map[Precision]float64{}
	for _, p := range []Precision{FP32, BF16} {
		g := newPrecGraph(t, p, 3, shapes, in, rand.New(rand.NewSource(8)), attnBlock(s))
		// The least of three measurements: a garbage collection during one
		// empties the sync.Pool that recycles the rounded copies.
		allocs[p] = math.Inf(1)
		for range 3 {
			allocs[p] = math.Min(allocs[p], testing.AllocsPerRun(20, func() { g.run(t) }))
		}
	}
	t.Logf("allocations per run: fp32 %v, bf16 %v", allocs[FP32], allocs[BF16])
	if allocs[BF16] > allocs[FP32] {
		t.Fatalf("a bf16 run allocates %v times, the fp32 run %v", allocs[BF16], allocs[FP32])
	}
}

// TestBF16PrecisionNeedsAVX512BF16 checks the capability check and the
// precision names.
func TestBF16PrecisionNeedsAVX512BF16(t *testing.T) {
	if err := checkPrecision(BF16, false); err == nil || !strings.Contains(err.Error(), "AVX512_BF16") {
		t.Fatalf("bf16 without AVX512_BF16: %v, want a refusal naming AVX512_BF16", err)
	}
	for _, has := range []bool{false, true} {
		if err := checkPrecision(FP32, has); err != nil {
			t.Fatalf("fp32 refused: %v", err)
		}
	}
	if err := checkPrecision(BF16, true); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Precision{FP32, BF16} {
		if q, err := ParsePrecision(p.String()); err != nil || q != p {
			t.Fatalf("ParsePrecision(%q) = %v, %v", p, q, err)
		}
	}
	if _, err := ParsePrecision("fp16"); err == nil {
		t.Fatal("fp16 accepted")
	}
}

// TestGemmBF16MatchesFloat64OnRoundedOperands checks GemmBF16's contract
// (whichever kernel implements it): for every transpose combination, with
// leading dimensions wider than the matrices (the attention op's head
// slices) and beta 0 and 1, c equals the float64 product of the
// bf16-rounded operands plus beta·c within the float32 summation bound
// (k+2)·u·(Σ|a·b| + |beta·c|), and it writes nothing outside the m×n
// matrix.
func TestGemmBF16MatchesFloat64OnRoundedOperands(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, tc := range []struct{ m, n, k int }{{1, 7, 33}, {5, 1, 9}, {13, 11, 70}, {33, 40, 129}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, beta := range []float32{0, 1} {
					ar, ac, br, bc := tc.m, tc.k, tc.k, tc.n
					if tA {
						ar, ac = ac, ar
					}
					if tB {
						br, bc = bc, br
					}
					lda, ldb, ldc := ac+3, bc+1, tc.n+2
					a, b := randF32(rng, ar*lda), randF32(rng, br*ldb)
					c := randF32(rng, tc.m*ldc)
					c0 := clone32(c)
					GemmBF16(tA, tB, tc.m, tc.n, tc.k, a, lda, b, ldb, beta, c, ldc)
					want, bound := refProduct(tA, tB, tc.m, tc.n, tc.k, a, lda, b, ldb, true)
					name := fmt.Sprintf("%dx%dx%d tA=%v tB=%v beta=%v", tc.m, tc.n, tc.k, tA, tB, beta)
					for i := 0; i < tc.m; i++ {
						for j := 0; j < ldc; j++ {
							got := c[i*ldc+j]
							if j >= tc.n {
								if got != c0[i*ldc+j] {
									t.Fatalf("%s: wrote c[%d,%d] outside the matrix", name, i, j)
								}
								continue
							}
							w := want[i*tc.n+j] + float64(beta)*float64(c0[i*ldc+j])
							bd := bound[i*tc.n+j] + float64(tc.k+2)*u*math.Abs(float64(beta*c0[i*ldc+j]))
							if d := math.Abs(float64(got) - w); !(d <= bd) {
								t.Fatalf("%s: c[%d,%d] = %v, want %v ± %.3g", name, i, j, got, w, bd)
							}
						}
					}
				}
			}
		}
	}
}
