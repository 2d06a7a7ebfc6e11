package graph

import (
	"math"
	"math/rand"
	"testing"

	"gorgonia.org/tensor"
)

func TestBF16FromF32RoundsToNearestEven(t *testing.T) {
	for _, c := range []struct {
		name string
		in   float32
		want uint16
	}{
		{"one", 1, 0x3f80},
		{"exact bf16", -2.5, 0xc020},
		{"below half ulp rounds down", math.Float32frombits(0x3f807fff), 0x3f80},
		{"tie rounds to even (down)", math.Float32frombits(0x3f808000), 0x3f80},
		{"tie rounds to even (up)", math.Float32frombits(0x3f818000), 0x3f82},
		{"above half ulp rounds up", math.Float32frombits(0x3f808001), 0x3f81},
		{"largest float32 overflows to inf", math.MaxFloat32, 0x7f80},
		{"inf", float32(math.Inf(-1)), 0xff80},
		{"smallest subnormal rounds to zero", math.Float32frombits(1), 0x0000},
	} {
		if got := BF16FromF32(c.in); got != c.want {
			t.Errorf("%s: BF16FromF32(%v) = %#04x, want %#04x", c.name, c.in, got, c.want)
		}
	}
	if nan := BF16FromF32(float32(math.NaN())); !math.IsNaN(float64(F32FromBF16(nan))) {
		t.Errorf("NaN narrowed to %#04x, not a NaN", nan)
	}
	for _, h := range []uint16{0x0000, 0x3f80, 0xc020, 0x0001, 0x7f7f} { // widening then narrowing is the identity
		if got := BF16FromF32(F32FromBF16(h)); got != h {
			t.Errorf("round trip of %#04x gave %#04x", h, got)
		}
	}
}

func randBF16(rng *rand.Rand, n int) []uint16 {
	w := make([]uint16, n)
	for i := range w {
		w[i] = BF16FromF32(float32(rng.NormFloat64()))
	}
	return w
}

func randF32(rng *rand.Rand, n int) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	return x
}

// TestLinearBF16MatchesFloat64Reference checks every path of linearBF16
// (the GEMV kernel, AVX-512 or pure Go, one or several workers; the
// VDPBF16PS tiles, with partial row blocks and overlapping last tiles;
// widening and sgemm) against the same product computed in float64 from the
// widened weights (and, on the VDPBF16PS path, the activations rounded to
// bf16, as that path multiplies them; with AMX every row count takes the
// tiles). A float32 sum of k products differs from the exact one by at most
// about k·2⁻²⁴·Σ|wᵢxᵢ| (the standard bound γₖ); the test allows k·2⁻²³.
func TestLinearBF16MatchesFloat64Reference(t *testing.T) {
	rng := rand.New(rand.NewSource(3))
	for _, c := range []struct{ n, in, out int }{
		{1, 5, 3}, {1, 16, 4}, {1, 37, 30522}, {1, 768, 768}, {3, 768, 3072}, {4, 3072, 769},
		{8, 37, 32}, {16, 64, 21}, {17, 37, 32}, {40, 768, 100},
		{17, 2, 12}, {33, 64, 13}, {64, 32, 25}, {197, 768, 3072}, {20, 37, 40}, {18, 64, 11},
	} {
		w := randBF16(rng, c.out*c.in)
		x := randF32(rng, c.n*c.in)
		for _, mode := range []string{"float32 x", "roundX", "packed"} {
			if mode == "packed" && !amxOn() && !hasBF16DP {
				continue
			}
			roundX := mode == "roundX"
			xr := x // what the kernel multiplies: x, or x rounded to bf16 on the VDPBF16PS path
			rounds := roundX && (amxOn() || useBF16DP(c.n, c.in, c.out))
			if mode == "packed" { // the tiles and dpPanel round x; the packed decode-step GEMV does not
				rounds = amxOn() || !packedGEMVFits(c.n, c.in)
			}
			if rounds {
				xr = make([]float32, len(x))
				for i, v := range x {
					xr[i] = F32FromBF16(BF16FromF32(v))
				}
			}
			b := randF32(rng, c.out)
			y := make([]float32, c.n*c.out)
			if mode == "packed" {
				ps := NewParams(tensor.Float32)
				p := ps.New("w", c.out, c.in)
				p.ToBF16()
				if err := p.SetBF16Bits(w); err != nil {
					t.Fatal(err)
				}
				p.PackAMX()
				linearBF16On(x, nil, p, b, y, c.n, c.in, c.out, &bf16Scratch{}, false)
			} else {
				linearBF16(x, w, b, y, c.n, c.in, c.out, &bf16Scratch{roundX: roundX})
			}
			bad := 0
			for i := 0; i < c.n; i++ {
				for j := 0; j < c.out; j++ {
					ref, mag := float64(b[j]), math.Abs(float64(b[j]))
					for k := 0; k < c.in; k++ {
						p := float64(F32FromBF16(w[j*c.in+k])) * float64(xr[i*c.in+k])
						ref += p
						mag += math.Abs(p)
					}
					tol := float64(c.in+1) * math.Ldexp(1, -23) * mag
					if d := math.Abs(float64(y[i*c.out+j]) - ref); d > tol {
						if bad++; bad <= 3 {
							t.Errorf("%+v %s: y[%d,%d] = %v, float64 reference %v (|diff| %.3g > %.3g)", c, mode, i, j, y[i*c.out+j], ref, d, tol)
						}
					}
				}
			}
		}
	}
}

func TestBF16AsmKernelsMatchPureGo(t *testing.T) {
	if !hasAVX512 {
		t.Skip("no AVX-512 on this CPU: only the pure-Go kernels run")
	}
	rng := rand.New(rand.NewSource(4))
	for _, k := range []int{16, 32, 48, 64, 80, 768, 784, 3072} {
		w := randBF16(rng, k)
		x := randF32(rng, k)
		got := dot1BF16AVX512(&w[0], &x[0], k)
		want := dotBF16Go(w, x)
		var mag float64
		for i, v := range x {
			mag += math.Abs(float64(F32FromBF16(w[i])) * float64(v))
		}
		// Both sum the same exact products in float32, in different orders.
		if d := math.Abs(float64(got - want)); d > float64(k)*math.Ldexp(1, -22)*mag {
			t.Errorf("k=%d: asm %v, Go %v", k, got, want)
		}
		// Four x rows against one weight row: each bit-identical to dot1,
		// which is what keeps a batched decode step equal to a lone one.
		const ldx = 800
		x4 := randF32(rng, 3*ldx+k)
		var y4 [4]float32
		dot1x4BF16AVX512(&w[0], &x4[0], ldx, k, &y4[0])
		for r, v := range y4 {
			if one := dot1BF16AVX512(&w[0], &x4[r*ldx], k); v != one {
				t.Errorf("k=%d row %d: dot1x4 %v, dot1 %v (want bit-identical)", k, r, v, one)
			}
		}
		w4 := randBF16(rng, 3*ldx+k)
		dot4x1BF16AVX512(&w4[0], ldx, &x[0], k, &y4[0])
		for r, v := range y4 {
			if one := dot1BF16AVX512(&w4[r*ldx], &x[0], k); v != one {
				t.Errorf("k=%d row %d: dot4x1 %v, dot1 %v (want bit-identical)", k, r, v, one)
			}
		}
	}
	src := randBF16(rng, 1000)
	dst := make([]float32, len(src))
	widenBF16(dst, src)
	for i, h := range src {
		if dst[i] != F32FromBF16(h) {
			t.Fatalf("widen[%d] = %v, want %v (exact)", i, dst[i], F32FromBF16(h))
		}
	}
	x := make([]float32, 64*100+7)
	for i := range x {
		x[i] = float32(i % 3) // small integers: every order sums them exactly
	}
	var want float64
	for _, v := range x {
		want += float64(v)
	}
	if got := sumF32(x); float64(got) != want {
		t.Errorf("sumF32 = %v, want %v", got, want)
	}
}

func TestParamToBF16HalvesResidentBytes(t *testing.T) {
	ps := NewParams(tensor.Float32)
	w := ps.New("w", 64, 32)
	b := ps.NewRole("b", RoleBias, 64)
	for i := range w.W {
		w.W[i] = float32(i) * 0.37
	}
	before := ps.ResidentBytes()
	w.ToBF16()
	if !w.IsBF16() || w.W != nil || b.IsBF16() {
		t.Fatalf("after ToBF16: w bf16 %v (W nil %v), b bf16 %v", w.IsBF16(), w.W == nil, b.IsBF16())
	}
	if got, want := ps.ResidentBytes(), before-64*32*2; got != want {
		t.Errorf("resident bytes %d after narrowing, want %d", got, want)
	}
	for i, h := range w.BF16() {
		if h != BF16FromF32(float32(i)*0.37) {
			t.Fatalf("element %d = %#04x, want %#04x", i, h, BF16FromF32(float32(i)*0.37))
		}
	}
	if err := Build(func() { NewBuilder(tensor.Float32).Param(w) }); err == nil {
		t.Error("Builder.Param accepted a bf16 parameter")
	}
}

// BenchmarkLinearVisionMLP times the vision tower's fc1 shape (197 tokens,
// 768→3072) in float32 (sgemm) and with bf16 weights (the path linearBF16
// takes on this CPU, and widening + sgemm).
func BenchmarkLinearVisionMLP(b *testing.B) {
	const n, in, out = 197, 768, 3072
	rng := rand.New(rand.NewSource(5))
	x, wf, bias := randF32(rng, n*in), randF32(rng, out*in), randF32(rng, out)
	w := make([]uint16, len(wf))
	for i, v := range wf {
		w[i] = BF16FromF32(v)
	}
	y := make([]float32, n*out)
	s := &bf16Scratch{roundX: true}
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"fp32", func() { linearFwd(x, wf, bias, y, n, in, out) }},
		{"bf16", func() { linearBF16(x, w, bias, y, n, in, out, s) }},
		{"bf16-widen", func() { widenBF16(s.get(out*in), w); linearFwd(x, s.get(out*in), bias, y, n, in, out) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.fn()
			}
			b.ReportMetric(2*n*in*out*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestGEMVRowDoesNotDependOnRowCount: the bf16 GEMV (the decode step's
// product for few rows) gives each x row bit for bit the same result whether
// it runs alone, among up to nine rows (the four-row kernel and the one-row
// remainder) or in any column split, with or without bias and for widths
// with and without a 16-element tail. A batched caption stays ids-exact.
func TestGEMVRowDoesNotDependOnRowCount(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, c := range []struct{ in, out int }{{37, 9}, {768, 13}, {784, 7}, {3072, 5}} {
		const rows = 9
		w := randBF16(rng, c.out*c.in)
		x := randF32(rng, rows*c.in)
		for _, bias := range [][]float32{nil, randF32(rng, c.out)} {
			alone := make([]float32, rows*c.out)
			for i := 0; i < rows; i++ {
				gemvBF16(x[i*c.in:(i+1)*c.in], w, bias, alone[i*c.out:(i+1)*c.out], 1, c.in, c.out, 0, c.out)
			}
			for n := 1; n <= rows; n++ {
				y := make([]float32, n*c.out)
				mid := c.out / 2
				gemvBF16(x[:n*c.in], w, bias, y, n, c.in, c.out, 0, mid)
				gemvBF16(x[:n*c.in], w, bias, y, n, c.in, c.out, mid, c.out)
				if i := firstDiff(y, alone[:n*c.out]); i >= 0 {
					t.Errorf("%+v n=%d bias=%v: y[%d,%d] = %v, %v alone", c, n, bias != nil, i/c.out, i%c.out, y[i], alone[i])
				}
			}
		}
	}
}
