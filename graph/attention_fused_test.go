package graph

import (
	"fmt"
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// fusedCase builds random q, k, v (B·T rows of Heads·64) and, with mask,
// GIT's prefix mask over img image tokens (text→text causal) with the
// last pad text positions of example 0 hidden.
func fusedCase(rng *rand.Rand, s AttentionShape, mask bool, img, pad int) []G.Value {
	c := s.Heads * s.HeadDim
	mk := func(rows int, sd float64) G.Value {
		d := make([]float32, rows*c)
		for i := range d {
			d[i] = float32(rng.NormFloat64() * sd)
		}
		return tensor.New(tensor.WithBacking(d), tensor.WithShape(rows, c))
	}
	vals := []G.Value{mk(s.B*s.Tq, 1.5), mk(s.B*s.Tk, 1.5), mk(s.B*s.Tk, 1)}
	if mask {
		m := make([]float32, s.B*s.Tq*s.Tk)
		negInf := float32(math.Inf(-1))
		for b := 0; b < s.B; b++ {
			for i := 0; i < s.Tq; i++ {
				for j := 0; j < s.Tk; j++ {
					hidden := (i < img && j >= img) || (i >= img && j >= img && j > i)
					if b == 0 && j >= s.Tk-pad {
						hidden = true
					}
					if hidden {
						m[(b*s.Tq+i)*s.Tk+j] = negInf
					}
				}
			}
		}
		vals = append(vals, tensor.New(tensor.WithBacking(m), tensor.WithShape(s.B, s.Tq, s.Tk)))
	}
	return vals
}

// attnRef64 is attention in float64 from the float32 inputs, with, per
// output element, the first-order bound on the fused path's error: the
// scores' error δ_ij ≤ (hd+1)·u·scale·Σ_d|q_id·k_jd| (sequential fused
// sums, the scale's rounding), the mask addition's and the subtraction of
// the maximum's roundings u·|s_ij| each, exp32's 2 ulp, the sequential sum
// of Tk exponentials ((Tk−1)·u), the reciprocal (u), the fused Σ e_j·v_j
// (Tk·u) and the final product (u):
// |y − ref| ≤ (2·max_j(δ_ij + 2u·|s_ij|) + (2Tk + 6)·u) · Σ_j p_ij·|v_jd|.
func attnRef64(vals []G.Value, s AttentionShape, scale float64) (ref, bound []float64) {
	c, hd := s.Heads*s.HeadDim, s.HeadDim
	q, k, v := data[float32](vals[0]), data[float32](vals[1]), data[float32](vals[2])
	var mask []float32
	if len(vals) > 3 {
		mask = data[float32](vals[3])
	}
	const u = 1.0 / (1 << 24)
	ref, bound = make([]float64, s.B*s.Tq*c), make([]float64, s.B*s.Tq*c)
	sc, ab, p := make([]float64, s.Tk), make([]float64, s.Tk), make([]float64, s.Tk)
	for b := 0; b < s.B; b++ {
		for h := 0; h < s.Heads; h++ {
			for i := 0; i < s.Tq; i++ {
				qo := (b*s.Tq+i)*c + h*hd
				mx, dmax := math.Inf(-1), 0.0
				for j := 0; j < s.Tk; j++ {
					ko := (b*s.Tk+j)*c + h*hd
					var dot, abs float64
					for d := 0; d < hd; d++ {
						dot += float64(q[qo+d]) * float64(k[ko+d])
						abs += math.Abs(float64(q[qo+d]) * float64(k[ko+d]))
					}
					sc[j] = dot * scale
					ab[j] = float64(hd+1) * u * scale * abs
					if mask != nil {
						sc[j] += float64(mask[(b*s.Tq+i)*s.Tk+j])
					}
					mx = math.Max(mx, sc[j])
				}
				var sum float64
				for j := range sc {
					p[j] = math.Exp(sc[j] - mx)
					sum += p[j]
					if p[j] > 0 {
						dmax = math.Max(dmax, ab[j]+2*u*math.Abs(sc[j]))
					}
				}
				rel := 2*dmax + float64(2*s.Tk+6)*u
				for d := 0; d < hd; d++ {
					var y, pv float64
					for j := 0; j < s.Tk; j++ {
						vj := float64(v[(b*s.Tk+j)*c+h*hd+d])
						y += p[j] / sum * vj
						pv += p[j] / sum * math.Abs(vj)
					}
					ref[qo+d], bound[qo+d] = y, rel*pv
				}
			}
		}
	}
	return ref, bound
}

// TestFusedAttentionMatchesFloat64 checks the fused forward path against a
// float64 reference within attnRef64's first-order bound (times 1.25 for
// the second-order terms), at the vision tower's shape and at a
// prefix-graph shape with GIT's mask (causal text, hidden padding) and a
// token count that leaves partial key panels and a shifted last row block,
// and at narrow heads and few keys (the test checkpoint's 4 heads of 8
// over 17 tokens; masked columns, zero padding panels).
func TestFusedAttentionMatchesFloat64(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewSource(7))
	for _, tc := range []struct {
		name     string
		s        AttentionShape
		mask     bool
		img, pad int
	}{
		{"vision", AttentionShape{B: 1, Tq: 197, Tk: 197, Heads: 12, HeadDim: 64}, false, 0, 0},
		{"prefix", AttentionShape{B: 2, Tq: 210, Tk: 210, Heads: 3, HeadDim: 64}, true, 197, 5},
		{"small", AttentionShape{B: 2, Tq: 5, Tk: 35, Heads: 2, HeadDim: 64}, false, 0, 0},
		{"tiny", AttentionShape{B: 2, Tq: 17, Tk: 17, Heads: 4, HeadDim: 8}, false, 0, 0},
		{"narrow", AttentionShape{B: 2, Tq: 23, Tk: 23, Heads: 3, HeadDim: 40}, true, 17, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			a := attnArgs{dt: tensor.Float32, s: s, scale: 1 / math.Sqrt(64), hasMask: tc.mask, scratch: new(attnScratch)}
			if !fusedApplies(a) {
				t.Fatal("fused path does not apply")
			}
			vals := fusedCase(rng, s, tc.mask, tc.img, tc.pad)
			y := make([]float32, s.B*s.Tq*s.Heads*s.HeadDim)
			attnFused(a, vals, y)
			ref, bound := attnRef64(vals, s, a.scale)
			worst := 0.0
			for i := range y {
				e := math.Abs(float64(y[i]) - ref[i])
				if !(e <= 1.25*bound[i]) {
					t.Fatalf("y[%d] = %g, float64 reference %g: error %g over the bound %g", i, y[i], ref[i], e, 1.25*bound[i])
				}
				worst = math.Max(worst, e/bound[i])
			}
			yg := make([]float32, len(y))
			attnForwardGeneral(a, vals, yg)
			worstG, maxF, maxG := 0.0, 0.0, 0.0
			for i := range yg {
				eg, ef := math.Abs(float64(yg[i])-ref[i]), math.Abs(float64(y[i])-ref[i])
				worstG, maxF, maxG = math.Max(worstG, eg/bound[i]), math.Max(maxF, ef), math.Max(maxG, eg)
			}
			t.Logf("worst error / bound: fused %.3f, general path %.3f; max |error|: fused %.3g, general %.3g", worst, worstG, maxF, maxG)
		})
	}
}

// TestFusedAttentionRowIndependentOfBatch checks that an example's fused
// attention output is bit-identical alone and at each position of a
// 3-example batch (the other examples different), with and without mask.
func TestFusedAttentionRowIndependentOfBatch(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewSource(8))
	for _, masked := range []bool{false, true} {
		one := AttentionShape{B: 1, Tq: 203, Tk: 203, Heads: 2, HeadDim: 64}
		three := one
		three.B = 3
		c := one.Heads * one.HeadDim
		alone := fusedCase(rng, one, masked, 197, 3)
		run := func(s AttentionShape, vals []G.Value) []float32 {
			a := attnArgs{dt: tensor.Float32, s: s, scale: 0.125, hasMask: masked, scratch: new(attnScratch)}
			y := make([]float32, s.B*s.Tq*c)
			attnForward(a, vals, y)
			return y
		}
		want := run(one, alone)
		for pos := 0; pos < 3; pos++ {
			batch := fusedCase(rng, three, masked, 197, 0)
			for i, x := range alone {
				n := len(data[float32](x))
				copy(data[float32](batch[i])[pos*n:], data[float32](x))
			}
			got := run(three, batch)[pos*len(want):][:len(want)]
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("mask %v, position %d: y[%d] = %g in the batch, %g alone", masked, pos, i, got[i], want[i])
				}
			}
		}
	}
}

// BenchmarkAttentionForward runs the attention forward at the vision
// tower's shape (batch 1 and 8, 197 tokens, 12 heads of 64) on the fused
// path and on the general path (per-head sgemm).
func BenchmarkAttentionForward(b *testing.B) {
	for _, batch := range []int{1, 8} {
		s := AttentionShape{B: batch, Tq: 197, Tk: 197, Heads: 12, HeadDim: 64}
		vals := fusedCase(rand.New(rand.NewSource(1)), s, false, 0, 0)
		a := attnArgs{dt: tensor.Float32, s: s, scale: 0.125, scratch: new(attnScratch)}
		y := make([]float32, s.B*s.Tq*s.Heads*s.HeadDim)
		flops := float64(4 * s.B * s.Heads * s.Tq * s.Tk * s.HeadDim)
		for _, path := range []string{"fused", "general"} {
			b.Run(fmt.Sprintf("b%d/%s", batch, path), func(b *testing.B) {
				if path == "fused" && !fusedApplies(a) {
					b.Skip("no AVX-512")
				}
				for i := 0; i < b.N; i++ {
					if path == "fused" {
						attnFused(a, vals, y)
					} else {
						attnForwardGeneral(a, vals, y)
					}
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// TestSoftmaxNum32 checks the fused path's softmax numerators against
// exp32 element by element (same bits: the same exp32 of the same
// difference from the row's maximum) and their sum against a float64 sum
// within the float32 lane sums' bound ((⌈n/16⌉+4)·u relative, the terms
// positive), for lengths with and without a partial vector and rows with
// -Inf (masked) entries.
func TestSoftmaxNum32(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	rng := rand.New(rand.NewSource(9))
	for _, n := range []int{1, 5, 15, 16, 17, 33, 197, 210} {
		for _, masked := range []bool{false, true} {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 4)
				if masked && i > 0 && rng.Intn(3) == 0 {
					x[i] = float32(math.Inf(-1))
				}
			}
			mx := x[0]
			for _, v := range x {
				mx = max(mx, v)
			}
			got := append([]float32(nil), x...)
			sum := softmaxNum32(got)
			var want float64
			for i, v := range x {
				e := exp32(v - mx)
				if math.Float32bits(got[i]) != math.Float32bits(e) {
					t.Fatalf("n %d: x[%d] = %g: numerator %g, want exp32 %g", n, i, v, got[i], e)
				}
				want += float64(e)
			}
			bound := float64((n+15)/16+4) / (1 << 24) * want
			if d := math.Abs(float64(sum) - want); d > bound {
				t.Errorf("n %d: sum %g, float64 %g: error %g over %g", n, sum, want, d, bound)
			}
		}
	}
}

// TestPackKeyPanels checks the key gather against its definition, the
// padding lanes and padding panels zero (the buffer dirty on entry).
func TestPackKeyPanels(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512")
	}
	for _, tc := range []struct{ tk, hd, ld int }{{197, 64, 768}, {17, 8, 32}, {35, 40, 120}, {16, 64, 64}} {
		k := make([]float32, tc.tk*tc.ld)
		for i := range k {
			k[i] = float32(i) + 0.5
		}
		np := fusedPanels(tc.tk)
		kt := make([]float32, np*16*tc.hd)
		for i := range kt {
			kt[i] = float32(math.NaN())
		}
		packKeyPanels(k, tc.ld, tc.tk, tc.hd, kt)
		for p := 0; p < np; p++ {
			for d := 0; d < tc.hd; d++ {
				for l := 0; l < 16; l++ {
					var want float32
					if j := p*16 + l; j < tc.tk {
						want = k[j*tc.ld+d]
					}
					if got := kt[(p*tc.hd+d)*16+l]; math.Float32bits(got) != math.Float32bits(want) {
						t.Fatalf("%+v: panel %d, d %d, lane %d: %g, want %g", tc, p, d, l, got, want)
					}
				}
			}
		}
	}
}
