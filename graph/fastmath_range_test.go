package graph

import (
	"math"
	"math/rand"
	"testing"
)

// TestExpFastPathMatchesScalar checks the vector exp32 on whole vectors
// inside the fast path's range (|x| <= 87, no special-case fix-ups) and on
// either side of its bound, for expSub32 and QuickGELU, against the
// scalar code bit for bit.
func TestExpFastPathMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	var x []float32
	for i := 0; i < 4096; i++ {
		x = append(x, float32(rng.NormFloat64()*4))
	}
	for _, c := range []float32{87, -87, 86.99, -86.99, 88, -88, 88.72283, -88.72283} {
		for i := 0; i < 16; i++ { // a whole vector of values near the bound
			x = append(x, c*(1-float32(i)*1e-7))
		}
	}
	got := append([]float32(nil), x...)
	expSub32(got, 0)
	for i, v := range x {
		if want := exp32(v); !sameBits32(got[i], want) {
			t.Fatalf("exp32(%v): vector %v, scalar %v", v, got[i], want)
		}
	}
	y := make([]float32, len(x))
	for i := range x {
		x[i] /= -1.702 // the activation's exp argument is -1.702·x
	}
	n := quickGELUBlock(false, x, nil, y)
	for i, v := range x[:n] {
		if want := v * (1 / (1 + exp32(-1.702*v))); !sameBits32(y[i], want) {
			t.Fatalf("QuickGELU(%v): vector %v, scalar %v", v, y[i], want)
		}
	}
}

// actFastPathInputs are whole 16-lane vectors for the activation kernels'
// exp fast path: vectors well inside it, vectors sweeping across the
// |exp argument| = 87 bound at each of the given x bounds (one lane over
// the bound sends the whole vector down the slow path), and in-range
// vectors with one special lane each (NaN, ±Inf, a subnormal, ±0, the
// largest float32), which must fall back to the slow path or agree.
func actFastPathInputs(rng *rand.Rand, bounds []float32) []float32 {
	var x []float32
	for i := 0; i < 64*16; i++ {
		x = append(x, float32(rng.NormFloat64()*2))
	}
	for _, c := range bounds {
		for _, s := range []float32{1, -1} {
			// 48 vectors, each 16 consecutive steps of 2e-4 relative.
			for i := -384; i < 384; i++ {
				x = append(x, s*c*(1+float32(i)*2e-4))
			}
		}
	}
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(1), -math.Float32frombits(0x7fffff), 0, float32(math.Copysign(0, -1)), math.MaxFloat32, -math.MaxFloat32}
	for j, sp := range specials {
		for i := 0; i < 16; i++ {
			v := float32(rng.NormFloat64())
			if i == j%16 {
				v = sp
			}
			x = append(x, v)
		}
	}
	for i := 0; i < 16; i++ { // a vector of subnormals and zeros only
		x = append(x, math.Float32frombits(uint32(i*0x10001)))
	}
	return x
}

// TestActivationFastPathsMatchScalar checks the four AVX-512 activation
// kernels (QuickGELU and the exact GELU, forward and gradient) bit for bit
// against the scalar float32 code on vectors inside, across and outside
// their exp fast path (every exp argument within |87|): QuickGELU's
// argument -1.702·x reaches 87 at |x| ≈ 51.1; GELU's φ argument -x²/2 at
// |x| ≈ 13.19 and erf32's 1 - e^p argument at |x| ≈ 12.63.
func TestActivationFastPathsMatchScalar(t *testing.T) {
	cases := []struct {
		name   string
		bounds []float32
		block  func(grad bool, x, dy, y []float32) int
		f      func(v float32) float32
		df     func(v float32) float32
	}{
		{"QuickGELU", []float32{87 / 1.702, 88.72283 / 1.702, 103.97208 / 1.702},
			quickGELUBlock,
			func(v float32) float32 { return v * (1 / (1 + exp32(-1.702*v))) },
			func(v float32) float32 {
				s := 1 / (1 + exp32(-1.702*v))
				return s + float32(float32(1.702*v*s)*(1-s))
			}},
		{"GELU", []float32{12.63, 12.9, 13.19, 13.32, 14.42},
			geluBlock,
			func(v float32) float32 { return v * (0.5 * (1 + erf32(v*(1/sqrt2)))) },
			func(v float32) float32 {
				cdf := 0.5 * (1 + erf32(v*(1/sqrt2)))
				return cdf + float32(v*invSqrt2Pi*exp32(-0.5*v*v))
			}},
	}
	for _, cs := range cases {
		t.Run(cs.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(11))
			x := actFastPathInputs(rng, cs.bounds)
			dy := make([]float32, len(x))
			for i := range dy {
				dy[i] = float32(rng.NormFloat64())
			}
			y, g := make([]float32, len(x)), make([]float32, len(x))
			n := cs.block(false, x, nil, y)
			if hasAVX512 && n != len(x) {
				t.Fatalf("the AVX-512 kernel did %d of %d elements", n, len(x))
			}
			cs.block(true, x, dy, g)
			for i, v := range x[:n] {
				if want := cs.f(v); !sameBits32(y[i], want) {
					t.Fatalf("%s(%v): vector %v (%#x), scalar %v (%#x)", cs.name, v, y[i], math.Float32bits(y[i]), want, math.Float32bits(want))
				}
				if want := cs.df(v) * dy[i]; !sameBits32(g[i], want) {
					t.Fatalf("%s'(%v)·%v: vector %v (%#x), scalar %v (%#x)", cs.name, v, dy[i], g[i], math.Float32bits(g[i]), want, math.Float32bits(want))
				}
			}
		})
	}
}
