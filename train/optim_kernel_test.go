package train

import (
	"math"
	"math/rand"
	"testing"
)

// kernelValues returns n float32 values spread over the whole exponent
// range (normal, subnormal, zeros of both signs, huge), so that the
// kernels' roundings, underflows and fused multiply-adds are all exercised.
func kernelValues(rng *rand.Rand, n int, positive bool) []float32 {
	x := make([]float32, n)
	for i := range x {
		var v float32
		switch rng.Intn(8) {
		case 0:
			v = 0
		case 1:
			v = math.Float32frombits(rng.Uint32() & 0x007fffff) // subnormal
		case 2:
			v = float32(rng.NormFloat64() * 1e-20)
		case 3:
			v = float32(rng.NormFloat64() * 1e20)
		default:
			v = float32(rng.NormFloat64() * math.Pow(10, float64(rng.Intn(12)-8)))
		}
		if rng.Intn(2) == 0 {
			v = -v
		}
		if positive {
			v = float32(math.Abs(float64(v)))
		}
		x[i] = v
	}
	return x
}

func sameBits(a, b float32) bool {
	if a != a && b != b {
		return true // NaN payloads may differ with operand order
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

func TestAdamKernelAVX512MatchesGo(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512: adamKernel is adamKernelGo")
	}
	rng := rand.New(rand.NewSource(7))
	coefs := []coef{
		{decay: true, decayMul: float32(1 - 1e-5*0.01), b1: 0.9, omb1: float32(1 - 0.9), b2: 0.999, omb2: float32(1 - 0.999), bc2sqrt: float32(math.Sqrt(1 - 0.999)), eps: 1e-8, stepSize: float32(-1e-5 / (1 - 0.9))},
		{decay: false, decayMul: 1, b1: 0.9, omb1: float32(1 - 0.9), b2: 0.999, omb2: float32(1 - 0.999), bc2sqrt: float32(math.Sqrt(1 - math.Pow(0.999, 37))), eps: 1e-8, stepSize: float32(-3e-4 / (1 - math.Pow(0.9, 37)))},
		{decay: true, decayMul: 0.75, b1: 0.5, omb1: 0.5, b2: 0.25, omb2: 0.75, bc2sqrt: 0.5, eps: 1e-3, stepSize: -2},
		{decay: true, decayMul: float32(1 - 1e-5*0.01), b1: 0.9, omb1: float32(1 - 0.9), b2: 0.999, omb2: float32(1 - 0.999), bc2sqrt: float32(math.Sqrt(1 - 0.999)), eps: 1e-8, stepSize: float32(-1e-5 / (1 - 0.9)), clipped: true, clip: 0.0371},
	}
	for ci, k := range coefs {
		for _, n := range []int{1, 15, 16, 17, 31, 32, 33, 100, 4096 + 7} {
			w := kernelValues(rng, n, false)
			g := kernelValues(rng, n, false)
			m := kernelValues(rng, n, false)
			v := kernelValues(rng, n, true)
			w2, g2, m2, v2 := append([]float32(nil), w...), append([]float32(nil), g...), append([]float32(nil), m...), append([]float32(nil), v...)
			adamKernel(w, g, m, v, &k)
			adamKernelGo(w2, g2, m2, v2, &k)
			for i := range w {
				if !sameBits(w[i], w2[i]) || !sameBits(m[i], m2[i]) || !sameBits(v[i], v2[i]) {
					t.Fatalf("coef %d, n %d, element %d: AVX-512 (w %g, m %g, v %g), Go (w %g, m %g, v %g)", ci, n, i, w[i], m[i], v[i], w2[i], m2[i], v2[i])
				}
			}
		}
	}
}

func TestSumSquaresAVX2MatchesGo(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2: sumSquares is sumSquaresGo")
	}
	rng := rand.New(rand.NewSource(8))
	for _, n := range []int{0, 1, 3, 4, 5, 7, 8, 9, 1000, 1 << 16} {
		g := kernelValues(rng, n, false)
		if got, want := sumSquares(g), sumSquaresGo(g); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("n %d: AVX2 %v, Go %v", n, got, want)
		}
	}
}

func TestScaleMatchesGo(t *testing.T) {
	rng := rand.New(rand.NewSource(9))
	for _, n := range []int{0, 1, 15, 16, 17, 1000} {
		g := kernelValues(rng, n, false)
		want := append([]float32(nil), g...)
		const s = float32(0.3712)
		for i := range want {
			want[i] *= s
		}
		scale(g, s)
		for i := range g {
			if !sameBits(g[i], want[i]) {
				t.Fatalf("n %d, element %d: %v, want %v", n, i, g[i], want[i])
			}
		}
	}
}

// BenchmarkAdamKernel compares the AVX-512 kernel with the pure-Go one over
// a git-base-sized weight matrix, in one process (under load, compare the
// two against each other, not with other runs).
func BenchmarkAdamKernel(b *testing.B) {
	const n = 768 * 3072
	rng := rand.New(rand.NewSource(1))
	normal := func(s float64) []float32 {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(math.Abs(rng.NormFloat64()) * s)
		}
		return x
	}
	w, g, m, v := normal(0.02), normal(1e-3), normal(1e-4), normal(1e-7)
	k := coef{decay: true, decayMul: 0.9999, b1: 0.9, omb1: 0.1, b2: 0.999, omb2: 0.001, bc2sqrt: 0.03, eps: 1e-8, stepSize: -1e-4}
	for _, c := range []struct {
		name string
		fn   func(w, g, m, v []float32, k *coef)
	}{{"go", adamKernelGo}, {"dispatch", adamKernel}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(7 * 4 * n)
			for i := 0; i < b.N; i++ {
				c.fn(w, g, m, v, &k)
			}
		})
	}
}

// TestStepClippedMatchesScaleThenStep checks that AdamW.StepClipped gives
// the bits of ScaleGrads followed by Step (the clipping the training step
// did before it was folded into the update), over parameters with and
// without a tail past the last whole 16-element block, on both kernels,
// and leaves the gradients unscaled.
func TestStepClippedMatchesScaleThenStep(t *testing.T) {
	rng := rand.New(rand.NewSource(21))
	mk := func() []*Param {
		var ps []*Param
		for i, n := range []int{3, 16, 1000, 1 << 17} {
			ps = append(ps, &Param{Name: string(rune('a' + i)), W: kernelValues(rng, n, false), G: kernelValues(rng, n, false)})
		}
		return ps
	}
	clone := func(ps []*Param) []*Param {
		var out []*Param
		for _, p := range ps {
			out = append(out, &Param{Name: p.Name, W: append([]float32(nil), p.W...), G: append([]float32(nil), p.G...)})
		}
		return out
	}
	a := mk()
	b := clone(a)
	oa, err := NewAdamW(a, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	ob, err := NewAdamW(b, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	const clip = float32(0.0123)
	g0 := clone(a) // the gradients StepClipped must leave as they are
	for step := 0; step < 3; step++ {
		if err := oa.StepClipped(1e-3, clip); err != nil {
			t.Fatal(err)
		}
		ScaleGrads(b, clip)
		if err := ob.Step(1e-3); err != nil {
			t.Fatal(err)
		}
		for i := range a {
			for j := range a[i].W {
				if !sameBits(a[i].W[j], b[i].W[j]) {
					t.Fatalf("step %d, param %d, element %d: clipped in the update %g, scaled first %g", step, i, j, a[i].W[j], b[i].W[j])
				}
			}
			for j := range a[i].G {
				if !sameBits(a[i].G[j], g0[i].G[j]) {
					t.Fatalf("step %d, param %d, element %d: StepClipped changed the gradient %g to %g", step, i, j, g0[i].G[j], a[i].G[j])
				}
			}
			copy(b[i].G, g0[i].G) // unscale b's gradients for the next step
		}
	}
}
