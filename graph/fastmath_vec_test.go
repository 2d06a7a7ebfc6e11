package graph

import (
	"math"
	"math/rand"
	"testing"
)

func sameBits32(a, b float32) bool {
	if a != a && b != b {
		return true // NaN payloads may differ
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// expInputs covers exp32's whole domain: a sweep of bit patterns over
// [-110, 90] (the subnormal results below -87.3 included), the cut-offs and
// their neighbours, zeros, infinities and NaN.
func expInputs() []float32 {
	var x []float32
	for _, lim := range []float32{-110, 90} {
		top := math.Float32bits(lim) &^ (1 << 31)
		for b := uint32(0); b < top; b += 997 {
			v := math.Float32frombits(b)
			if lim < 0 {
				v = -v
			}
			x = append(x, v)
		}
	}
	for _, c := range []float32{88.72283, -103.97208, -87.33654, -126 * 0.6931472, 0, float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())} {
		x = append(x, c, math.Nextafter32(c, 200), math.Nextafter32(c, -200), -c)
	}
	for len(x)%16 != 5 { // a tail for the scalar loop
		x = append(x, 1.5)
	}
	return x
}

func TestExpSub32MatchesExp32(t *testing.T) {
	x := expInputs()
	for _, sub := range []float32{0, 1.25, -3} {
		got := append([]float32(nil), x...)
		expSub32(got, sub)
		for i, v := range x {
			if want := exp32(v - sub); !sameBits32(got[i], want) {
				t.Fatalf("exp32(%v - %v): vector %v (%#x), scalar %v (%#x)", v, sub, got[i], math.Float32bits(got[i]), want, math.Float32bits(want))
			}
		}
	}
}

// TestExpSub32TailsMatchExp32 runs expSub32 over every length up to three
// vectors, so that the special inputs fall into masked tails too.
func TestExpSub32TailsMatchExp32(t *testing.T) {
	x := expInputs()
	for n := 1; n <= 48 && n <= len(x); n++ {
		for off := 0; off+n <= len(x); off += 3 * n {
			got := append([]float32(nil), x[off:off+n]...)
			expSub32(got, 0.75)
			for i, v := range x[off : off+n] {
				if want := exp32(v - 0.75); !sameBits32(got[i], want) {
					t.Fatalf("n %d, exp32(%v - 0.75): vector %v, scalar %v", n, v, got[i], want)
				}
			}
		}
	}
}

func TestQuickGELUBlocksMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	x := expInputs()
	for i := range x {
		x[i] /= 1.702 // the activation's exp argument covers the same range
	}
	dy := make([]float32, len(x))
	for i := range dy {
		dy[i] = float32(rng.NormFloat64())
	}
	y := make([]float32, len(x))
	g := make([]float32, len(x))
	n := quickGELUBlock(false, x, nil, y)
	quickGELUBlock(true, x, dy, g)
	if hasAVX512 && n == 0 {
		t.Fatal("the AVX-512 kernel did not run")
	}
	for i := 0; i < n; i++ {
		v := x[i]
		s := 1 / (1 + exp32(-1.702*v))
		if want := v * s; !sameBits32(y[i], want) {
			t.Fatalf("QuickGELU(%v): vector %v, scalar %v", v, y[i], want)
		}
		if want := (s + float32(float32(1.702*v*s)*(1-s))) * dy[i]; !sameBits32(g[i], want) {
			t.Fatalf("QuickGELU'(%v)·%v: vector %v, scalar %v", v, dy[i], g[i], want)
		}
	}
	// In place over dy, as actGradOp does.
	in := append([]float32(nil), dy...)
	quickGELUBlock(true, x, in, in)
	for i := 0; i < n; i++ {
		if !sameBits32(in[i], g[i]) {
			t.Fatalf("in-place gradient %d: %v, want %v", i, in[i], g[i])
		}
	}
}

func TestGELUBlocksMatchScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	x := expInputs()
	for i := range x {
		x[i] *= 0.1 // erf32's both branches and exp32's whole range
	}
	x = append(x, 0.927734375*sqrt2, -0.927734375*sqrt2, 1.3119, -1.3121, 0, float32(math.Copysign(0, -1)))
	for len(x)%16 != 3 {
		x = append(x, -0.75)
	}
	dy := make([]float32, len(x))
	for i := range dy {
		dy[i] = float32(rng.NormFloat64())
	}
	y := make([]float32, len(x))
	g := make([]float32, len(x))
	n := geluBlock(false, x, nil, y)
	geluBlock(true, x, dy, g)
	if hasAVX512 && n == 0 {
		t.Fatal("the AVX-512 kernel did not run")
	}
	for i := 0; i < n; i++ {
		v := x[i]
		cdf := 0.5 * (1 + erf32(v*(1/sqrt2)))
		if want := v * cdf; !sameBits32(y[i], want) {
			t.Fatalf("GELU(%v): vector %v, scalar %v", v, y[i], want)
		}
		if want := (cdf + float32(v*invSqrt2Pi*exp32(-0.5*v*v))) * dy[i]; !sameBits32(g[i], want) {
			t.Fatalf("GELU'(%v)·%v: vector %v, scalar %v", v, dy[i], g[i], want)
		}
	}
	in := append([]float32(nil), dy...)
	geluBlock(true, x, in, in)
	for i := 0; i < n; i++ {
		if !sameBits32(in[i], g[i]) {
			t.Fatalf("in-place gradient %d: %v, want %v", i, in[i], g[i])
		}
	}
}

func TestMax32MatchesScalarMax(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, n := range []int{1, 15, 16, 17, 33, 197} {
		for trial := 0; trial < 50; trial++ {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.NormFloat64() * 100)
			}
			want := x[0]
			for _, v := range x[1:] {
				if v > want {
					want = v
				}
			}
			if got := max32(x); got != want {
				t.Fatalf("n %d: %v, want %v", n, got, want)
			}
		}
	}
}

func TestSoftmaxRows32MatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, sh := range []struct{ rows, cols int }{
		{5, 1}, {5, 7}, {5, 16}, {5, 17}, {5, 20}, {5, 32}, {5, 197}, {5, 217},
		{8, 3}, {8, 197}, {17, 33}, {197, 197}, // whole groups of interleaved row sums, and a group's remainder
	} {
		rows, cols := sh.rows, sh.cols
		p := make([]float32, rows*cols)
		for i := range p {
			p[i] = float32(rng.NormFloat64() * 8)
			switch rng.Intn(10) {
			case 0:
				p[i] = -1e9 // a masked position
			case 1:
				p[i] = float32(math.Copysign(0, float64(rng.NormFloat64()))) // zeros of both signs
			}
		}
		want := append([]float32(nil), p...)
		softmaxRowsExp(want, rows, cols, exp32)
		softmaxRows32(p, rows, cols)
		for i := range p {
			if !sameBits32(p[i], want[i]) {
				t.Fatalf("%dx%d, element %d: %v, want %v", rows, cols, i, p[i], want[i])
			}
		}
	}
}

// BenchmarkExpSub32 compares the scalar and the vector exp32 in one process.
func BenchmarkExpSub32(b *testing.B) {
	x := make([]float32, 197*197)
	for i := range x {
		x[i] = float32(i%389)*0.05 - 12
	}
	y := make([]float32, len(x))
	b.Run("scalar", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for j, v := range x {
				y[j] = exp32(v - 0.5)
			}
		}
	})
	b.Run("vector", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			copy(y, x)
			expSub32(y, 0.5)
		}
	})
}
