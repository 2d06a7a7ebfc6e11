package graph

import (
	"math"
	"math/rand"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestExp32IsAccurate bounds exp32's relative error against math.Exp over
// the range softmax and activations use.
func TestExp32IsAccurate(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	worst := 0.0
	for i := 0; i < 200000; i++ {
		x := float32(rng.Float64()*180 - 100)
		got, want := float64(exp32(x)), math.Exp(float64(x))
		if want < 1e-37 { // subnormal results: absolute error
			if math.Abs(got-want) > 1e-44 {
				t.Fatalf("exp32(%g) = %g, want %g", x, got, want)
			}
			continue
		}
		if e := math.Abs(got-want) / want; e > worst {
			worst = e
		}
	}
	if worst > 3e-7 {
		t.Errorf("largest relative error %.3g > 3e-7", worst)
	}
	if exp32(float32(math.Inf(-1))) != 0 || !math.IsInf(float64(exp32(100)), 1) {
		t.Error("exp32 limits wrong")
	}
}

// TestErf32IsAccurate bounds erf32's absolute error against math.Erf on a
// fine grid over [-8, 8] (erf is ±1 in float32 beyond), and its relative
// error near zero.
func TestErf32IsAccurate(t *testing.T) {
	worst, worstRel := 0.0, 0.0
	for i := -800000; i <= 800000; i++ {
		x := float32(i) * 1e-5
		got, want := float64(erf32(x)), math.Erf(float64(x))
		worst = math.Max(worst, math.Abs(got-want))
		if x != 0 && math.Abs(float64(x)) < 0.01 {
			worstRel = math.Max(worstRel, math.Abs(got-want)/math.Abs(want))
		}
	}
	if worst > 1.5e-7 || worstRel > 3e-7 {
		t.Errorf("largest error %.3g (> 1.5e-7?), relative near 0 %.3g (> 3e-7?)", worst, worstRel)
	}
}

func BenchmarkExp32(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%200) * -0.05
	}
	b.ResetTimer()
	var s float32
	for i := 0; i < b.N; i++ {
		for _, v := range x {
			s += exp32(v)
		}
	}
	_ = s
}

func BenchmarkMathExp(b *testing.B) {
	x := make([]float32, 4096)
	for i := range x {
		x[i] = float32(i%200) * -0.05
	}
	b.ResetTimer()
	var s float32
	for i := 0; i < b.N; i++ {
		for _, v := range x {
			s += float32(math.Exp(float64(v)))
		}
	}
	_ = s
}

// TestFloat32ActivationsMatchFloat64 checks the float32 fast paths (exact
// GELU, QuickGELU) and their derivatives against the float64 kernel.
func TestFloat32ActivationsMatchFloat64(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	const n = 20000
	x32, dy32 := make([]float32, n), make([]float32, n)
	x64, dy64 := make([]float64, n), make([]float64, n)
	for i := range x32 {
		x32[i], dy32[i] = float32(rng.NormFloat64()*3), float32(rng.NormFloat64())
		x64[i], dy64[i] = float64(x32[i]), float64(dy32[i])
	}
	for _, act := range []Activation{GELU, QuickGELU} {
		for _, grad := range []bool{false, true} {
			v32 := []G.Value{tensor.New(tensor.WithBacking(x32)), tensor.New(tensor.WithBacking(dy32))}
			v64 := []G.Value{tensor.New(tensor.WithBacking(x64)), tensor.New(tensor.WithBacking(dy64))}
			got, want := make([]float32, n), make([]float64, n)
			actDo(act, grad, v32, got)
			actDo(act, grad, v64, want)
			worst := 0.0
			for i := range got {
				worst = math.Max(worst, math.Abs(float64(got[i])-want[i])/math.Max(1, math.Abs(want[i])))
			}
			if worst > 1e-6 {
				t.Errorf("%s grad=%v: largest error %.3g > 1e-6", act, grad, worst)
			}
		}
	}
}
