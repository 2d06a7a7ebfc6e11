package train

import (
	"errors"
	"math"
	"math/rand"
	"testing"
)

func params(gs ...[]float32) []*Param {
	var ps []*Param
	for i, g := range gs {
		ps = append(ps, &Param{Name: string(rune('a' + i)), W: make([]float32, len(g)), G: g})
	}
	return ps
}

func TestClipGradNorm(t *testing.T) {
	cases := []struct {
		name     string
		grads    [][]float32
		maxNorm  float64
		wantNorm float64
		wantG    [][]float32
	}{
		{"below the limit is untouched", [][]float32{{0.375}, {0.5}}, 1, 0.625, [][]float32{{0.375}, {0.5}}},
		{"above the limit is scaled to it", [][]float32{{3}, {4}}, 1, 5,
			[][]float32{{float32(3 * float32(1/(5+1e-6)))}, {float32(4 * float32(1/(5+1e-6)))}}},
		{"norm over all tensors", [][]float32{{1, 2, 2}, {4}}, 2.5, 5,
			[][]float32{{float32(2.5 / (5 + 1e-6)), 2 * float32(2.5/(5+1e-6)), 2 * float32(2.5/(5+1e-6))}, {4 * float32(2.5/(5+1e-6))}}},
		{"at the limit is scaled by max/(norm+1e-6) as torch does", [][]float32{{3}, {4}}, 5, 5,
			[][]float32{{3 * float32(5/(5+1e-6))}, {4 * float32(5/(5+1e-6))}}},
		{"zero max disables clipping", [][]float32{{30}, {40}}, 0, 50, [][]float32{{30}, {40}}},
		{"NaN leaves gradients alone", [][]float32{{float32(math.NaN())}, {4}}, 1, math.NaN(), nil},
		{"Inf leaves gradients alone", [][]float32{{float32(math.Inf(1))}, {4}}, 1, math.Inf(1), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := params(tc.grads...)
			before := make([][]float32, len(ps))
			for i, p := range ps {
				before[i] = append([]float32(nil), p.G...)
			}
			got := ClipGradNorm(ps, tc.maxNorm)
			if math.IsNaN(tc.wantNorm) != math.IsNaN(got) || (!math.IsNaN(got) && math.Abs(got-tc.wantNorm) > 1e-12*math.Max(1, tc.wantNorm) && !math.IsInf(got, 1)) {
				t.Fatalf("norm %v, want %v", got, tc.wantNorm)
			}
			want := tc.wantG
			if want == nil {
				want = before
			}
			for i, p := range ps {
				for j := range p.G {
					if math.Float32bits(p.G[j]) != math.Float32bits(want[i][j]) {
						t.Errorf("g[%d][%d] = %v, want %v", i, j, p.G[j], want[i][j])
					}
				}
			}
		})
	}
}

func TestClipGradNormSumsInFloat64(t *testing.T) {
	// 2^24+1 ones: a float32 running sum stops growing at 2^24.
	n := 1<<24 + 1
	g := make([]float32, n)
	for i := range g {
		g[i] = 1
	}
	if got, want := GradNorm(params(g)), math.Sqrt(float64(n)); got != want {
		t.Errorf("GradNorm = %v, want %v", got, want)
	}
}

func TestCheckGradsFindsFirstNonFinite(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(-1))
	big := make([]float32, 1000)
	big[777] = inf
	cases := []struct {
		name      string
		grads     [][]float32
		wantParam string
		wantIndex int
	}{
		{"all finite", [][]float32{{1, 2}, {math.MaxFloat32, -math.MaxFloat32}}, "", 0},
		{"NaN", [][]float32{{1, 2}, {3, nan}}, "b", 1},
		{"-Inf deep in a long tensor", [][]float32{{1}, big}, "b", 777},
		{"first of several", [][]float32{{nan, inf}, {nan}}, "a", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckGrads(params(tc.grads...))
			if tc.wantParam == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var nf *NonFiniteError
			if !errors.As(err, &nf) {
				t.Fatalf("error %v, want a *NonFiniteError", err)
			}
			if nf.Param != tc.wantParam || nf.Index != tc.wantIndex || !nf.Grad {
				t.Errorf("got %+v, want param %q index %d", nf, tc.wantParam, tc.wantIndex)
			}
		})
	}
	if err := CheckWeights([]*Param{{Name: "w", W: []float32{0, nan}}}); err == nil {
		t.Error("CheckWeights missed a NaN weight")
	}
	if IsFinite(math.NaN()) || IsFinite(math.Inf(1)) || !IsFinite(1e308) {
		t.Error("IsFinite wrong")
	}
}

func TestAccumulatorAveragesMicroBatches(t *testing.T) {
	ps := params(make([]float32, 3), make([]float32, 1))
	acc := NewAccumulator(ps)
	micro := [][2][]float32{
		{{1, 2, 3}, {10}},
		{{3, 2, 1}, {20}},
		{{2, 2, 2}, {0}},
	}
	for round := 0; round < 2; round++ { // the second round checks the reset
		for _, mb := range micro {
			copy(ps[0].G, mb[0])
			copy(ps[1].G, mb[1])
			if err := acc.Add(); err != nil {
				t.Fatal(err)
			}
		}
		if acc.Count() != 3 {
			t.Fatalf("Count = %d, want 3", acc.Count())
		}
		if err := acc.Average(); err != nil {
			t.Fatal(err)
		}
		want := [][]float32{{2, 2, 2}, {10}}
		for i, p := range ps {
			for j := range p.G {
				if p.G[j] != want[i][j] {
					t.Fatalf("round %d: g[%d][%d] = %v, want %v", round, i, j, p.G[j], want[i][j])
				}
			}
		}
	}
	if err := acc.Average(); err == nil {
		t.Error("Average with nothing added: no error")
	}
	ps[0].G = ps[0].G[:2]
	if err := acc.Add(); err == nil {
		t.Error("Add after a gradient changed size: no error")
	}
}

func TestAccumulatorDoesNotAllocate(t *testing.T) {
	ps := params(make([]float32, 1000), make([]float32, 10))
	acc := NewAccumulator(ps)
	n := testing.AllocsPerRun(10, func() {
		acc.Add()
		acc.Add()
		acc.Average()
		ClipGradNorm(ps, 1)
	})
	if n != 0 {
		t.Errorf("%v allocations per accumulate-average-clip", n)
	}
}

// TestParallelGradNormAndScaleMatchSequentialBits checks that the norm and
// the scaling split across goroutines (forEachParam) give the bits of the
// sequential loops, for gradients small enough to stay on one goroutine
// and large enough to be split.
func TestParallelGradNormAndScaleMatchSequentialBits(t *testing.T) {
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"small model, one goroutine", []int{3, 100, 17}},
		{"large model, split", []int{1 << 15, 5, 1<<17 + 3, 768, 1 << 16, 1, 40000}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewSource(3))
			var gs, ref [][]float32
			for _, n := range tc.sizes {
				g := make([]float32, n)
				for i := range g {
					g[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.Intn(9)-4)))
				}
				gs, ref = append(gs, g), append(ref, append([]float32(nil), g...))
			}
			var s float64
			for _, g := range ref {
				s += sumSquaresGo(g)
			}
			want := math.Sqrt(s)
			if got := GradNorm(params(gs...)); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("GradNorm = %v, want %v (sequential)", got, want)
			}
			const f = float32(0.37)
			ScaleGrads(params(gs...), f)
			for k, g := range ref {
				for i := range g {
					if want := g[i] * f; math.Float32bits(gs[k][i]) != math.Float32bits(want) {
						t.Fatalf("gradient %d[%d] = %v, want %v", k, i, gs[k][i], want)
					}
				}
			}
		})
	}
}
