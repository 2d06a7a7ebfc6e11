package graph

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"gorgonia.org/tensor"
)

// gemmBF16Kernels are the GemmBF16 kernels that run on this CPU (the
// reference always; VDPBF16PS with AVX512_BF16; AMX where the probe grants
// it; the last two also with passes of one row block over the panels,
// which the test's shapes are too small to need otherwise).
func gemmBF16Kernels() map[string]func() (*GemmBF16Scratch, gemmBF16Kernel) {
	ks := map[string]func() (*GemmBF16Scratch, gemmBF16Kernel){
		"ref": func() (*GemmBF16Scratch, gemmBF16Kernel) { return new(GemmBF16Scratch), gemmBF16Ref },
	}
	if hasBF16DP {
		ks["vdpbf16ps"] = func() (*GemmBF16Scratch, gemmBF16Kernel) { return new(GemmBF16Scratch), gemmBF16DP }
		ks["vdpbf16ps-1-block-passes"] = func() (*GemmBF16Scratch, gemmBF16Kernel) {
			s := new(GemmBF16Scratch)
			s.amx.passBytes = 1
			return s, gemmBF16DP
		}
	}
	if amxOn() {
		ks["amx"] = func() (*GemmBF16Scratch, gemmBF16Kernel) { return new(GemmBF16Scratch), gemmBF16AMX }
		ks["amx-1-block-passes"] = func() (*GemmBF16Scratch, gemmBF16Kernel) {
			s := new(GemmBF16Scratch)
			s.amx.passBytes = 1
			return s, gemmBF16AMX
		}
	}
	return ks
}

// TestGemmBF16MatchesFloat64Reference checks every kernel GemmBF16 can run
// here against the product of the bf16-rounded inputs computed in float64.
// Rounding to bf16 is exact to reproduce (both sides use BF16FromF32), and
// products of two bf16 values are exact in float32, so the only difference
// is the float32 sum: k+1 terms (with beta·C) summed in float32 differ from
// the exact sum by at most about (k+1)·2⁻²⁴·Σ|terms| (the bound γₖ), and
// scaling C by beta first adds one more rounding; the test allows
// (k+2)·2⁻²⁴·(Σ|aᵢbᵢ| + |beta·c|). Shapes cover tiny products, m, n, k off
// multiples of 16 and 32 (partial row blocks and panels, zero-padded k), odd
// k, both transposes, leading dimensions wider than the matrices, and beta
// 0 (C, filled with NaN, must not be read), 1 and 0.5.
func TestGemmBF16MatchesFloat64Reference(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	shapes := []struct{ m, n, k int }{
		{1, 1, 1}, {2, 3, 5}, {1, 40, 7}, {16, 16, 16}, {32, 32, 32}, {17, 13, 33},
		{33, 47, 65}, {64, 96, 64}, {100, 12, 97}, {5, 200, 3}, {197, 70, 129}, {40, 64, 768},
	}
	for _, sh := range shapes {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				for _, beta := range []float32{0, 1, 0.5} {
					pad := rng.Intn(3) // leading dimensions a little wider than the matrices
					ar, ac := sh.m, sh.k
					if tA {
						ar, ac = sh.k, sh.m
					}
					br, bc := sh.k, sh.n
					if tB {
						br, bc = sh.n, sh.k
					}
					lda, ldb, ldc := ac+pad, bc+pad, sh.n+pad
					a, b := randF32(rng, (ar-1)*lda+ac), randF32(rng, (br-1)*ldb+bc)
					c0 := randF32(rng, (sh.m-1)*ldc+sh.n)
					if beta == 0 {
						for i := range c0 {
							c0[i] = float32(math.NaN())
						}
					}
					for name, mk := range gemmBF16Kernels() {
						c := append([]float32(nil), c0...)
						s, kern := mk()
						s.gemm(kern, tA, tB, sh.m, sh.n, sh.k, a, lda, b, ldb, beta, c, ldc)
						label := fmt.Sprintf("%s %+v tA=%v tB=%v beta=%v", name, sh, tA, tB, beta)
						checkGemmBF16(t, label, tA, tB, sh.m, sh.n, sh.k, a, lda, b, ldb, beta, c0, c, ldc)
					}
				}
			}
		}
	}
}

func checkGemmBF16(t *testing.T, label string, tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c0, c []float32, ldc int) {
	t.Helper()
	bad := 0
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var ref, mag float64
			if beta != 0 {
				ref = float64(beta) * float64(c0[i*ldc+j])
				mag = math.Abs(ref)
			}
			for kk := 0; kk < k; kk++ {
				p := float64(roundBF16(opAt(a, lda, tA, i, kk))) * float64(roundBF16(opAt(b, ldb, tB, kk, j)))
				ref += p
				mag += math.Abs(p)
			}
			tol := float64(k+2) * math.Ldexp(1, -24) * mag
			if got := float64(c[i*ldc+j]); !(math.Abs(got-ref) <= tol) {
				if bad++; bad <= 3 {
					t.Errorf("%s: c[%d,%d] = %v, float64 reference %v (|diff| %.3g > %.3g)", label, i, j, got, ref, math.Abs(got-ref), tol)
				}
			}
		}
	}
	for i := 0; i+1 < m; i++ { // the gaps between rows (ldc > n) are untouched
		for j := n; j < ldc; j++ {
			if got, want := math.Float32bits(c[i*ldc+j]), math.Float32bits(c0[i*ldc+j]); got != want {
				t.Fatalf("%s: c[%d,%d], outside the matrix, changed", label, i, j)
			}
		}
	}
}

// TestGemmBF16DegenerateShapes: k 0 scales C by beta (beta 0 clears it
// without reading it); m or n 0 leaves C alone.
func TestGemmBF16DegenerateShapes(t *testing.T) {
	for _, c := range []struct {
		name    string
		m, n, k int
		beta    float32
		want    float32
	}{
		{"k 0 beta 0 clears", 2, 3, 0, 0, 0},
		{"k 0 beta 2 scales", 2, 3, 0, 2, 6},
		{"m 0 leaves C", 0, 3, 4, 0, 3},
		{"n 0 leaves C", 2, 0, 4, 0, 3},
	} {
		cm := []float32{3, 3, 3, 3, 3, 3}
		if c.beta == 0 && c.k == 0 {
			cm = []float32{float32(math.NaN()), 3, 3, 3, 3, 3}
		}
		GemmBF16(false, false, c.m, c.n, c.k, make([]float32, 8), max(1, c.k), make([]float32, 12), max(1, c.n), c.beta, cm, 3)
		for i, v := range cm {
			if v != c.want {
				t.Errorf("%s: c[%d] = %v, want %v", c.name, i, v, c.want)
			}
		}
	}
}

// TestLinearBF16OpRepacksAfterWeightsChange: the AMX copy of a weight kept
// beside its Param follows the weight: after SetF32 the op's product is the
// new weight's (on a CPU without AMX this checks the VDPBF16PS path).
func TestLinearBF16OpRepacksAfterWeightsChange(t *testing.T) {
	const n, in, out = 40, 64, 48
	rng := rand.New(rand.NewSource(8))
	ps := NewParams(tensor.Float32)
	p := ps.New("w", out, in)
	p.ToBF16()
	x, bias := randF32(rng, n*in), randF32(rng, out)
	for step := 0; step < 2; step++ {
		if err := p.SetF32(randF32(rng, out*in)); err != nil {
			t.Fatal(err)
		}
		got, want := make([]float32, n*out), make([]float32, n*out)
		s := &bf16Scratch{roundX: true}
		linearBF16On(x, p.BF16(), p, bias, got, n, in, out, s, false)
		linearBF16(x, p.BF16(), bias, want, n, in, out, &bf16Scratch{roundX: true})
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("step %d: y[%d] = %v with the Param's packed weight, %v packing per call", step, i, got[i], want[i])
			}
		}
	}
}

// TestBF16KernelsNamesThePath: BF16Kernels names AMX when it runs, and
// says why not otherwise (GITCAP_AMX=off among the reasons).
func TestBF16KernelsNamesThePath(t *testing.T) {
	k := BF16Kernels()
	switch {
	case amxOn():
		if !strings.Contains(k, "AMX") {
			t.Errorf("AMX runs, BF16Kernels() = %q", k)
		}
	case os.Getenv(EnvAMX) == "off":
		if amxProbe().reason != EnvAMX+"=off" || (hasBF16DP && !strings.Contains(k, EnvAMX+"=off")) {
			t.Errorf("with %s=off: reason %q, BF16Kernels() = %q", EnvAMX, amxProbe().reason, k)
		}
	default:
		if amxProbe().reason == "" {
			t.Errorf("AMX off without a reason; BF16Kernels() = %q", k)
		}
	}
	t.Logf("BF16Kernels: %s", k)
}

// cpuSeconds is this process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// BenchmarkGemmBF16 times GemmBF16's kernels against float32 sgemm on the
// vision tower's fc1 product (197 tokens, 768→3072: y = x·Wᵀ) and a square
// one, reporting GFLOP/s by wall clock and per CPU second (the latter is
// what a loaded machine still measures).
func BenchmarkGemmBF16(b *testing.B) {
	rng := rand.New(rand.NewSource(9))
	for _, sh := range []struct{ m, n, k int }{{197, 3072, 768}, {1024, 1024, 1024}, {1576, 3072, 768}, {1576, 768, 3072}} {
		x, w := randF32(rng, sh.m*sh.k), randF32(rng, sh.n*sh.k)
		c := make([]float32, sh.m*sh.n)
		cases := map[string]func(){"sgemm": func() { gemm(false, true, sh.m, sh.n, sh.k, 1, x, sh.k, w, sh.k, 0, c, sh.n) }}
		for name, mk := range gemmBF16Kernels() {
			s, kern := mk()
			cases[name] = func() { s.gemm(kern, false, true, sh.m, sh.n, sh.k, x, sh.k, w, sh.k, 0, c, sh.n) }
		}
		for _, name := range []string{"sgemm", "vdpbf16ps", "amx"} {
			fn, ok := cases[name]
			if !ok {
				continue
			}
			b.Run(fmt.Sprintf("%s/%dx%dx%d", name, sh.m, sh.n, sh.k), func(b *testing.B) {
				fn()
				cpu0 := cpuSeconds()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					fn()
				}
				flops := 2 * float64(sh.m*sh.n*sh.k) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(flops/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
			})
		}
	}
}

// BenchmarkPanelKernels times the panel micro-kernels alone on one core,
// AMX tiles (amxPanel) and VDPBF16PS (dpPanel) where they run: mb blocks
// of 32×32 C over kb steps of 32 k (A: mb·32 rows of kb·32 bf16, B: one
// panel of kb steps), operands in cache.
func BenchmarkPanelKernels(b *testing.B) {
	kerns := map[string]panelKernel{}
	if amxOn() {
		kerns["amx"] = amxPanel
	}
	if hasBF16DP {
		kerns["vdpbf16ps"] = dpPanel
	}
	if len(kerns) == 0 {
		b.Skip("no AVX512_BF16")
	}
	for name, kern := range kerns {
		for _, sh := range []struct{ mb, kb int }{{1, 8}, {7, 8}, {7, 24}} {
			b.Run(fmt.Sprintf("%s/mb%d-kb%d", name, sh.mb, sh.kb), func(b *testing.B) {
				a := make([]uint16, sh.mb*32*sh.kb*32)
				w := make([]uint16, sh.kb*amxStep)
				for i := range a {
					a[i] = 0x3f80
				}
				for i := range w {
					w[i] = 0x3f80
				}
				c := make([]float32, sh.mb*32*32)
				cpu0 := cpuSeconds()
				for i := 0; i < b.N; i++ {
					kern(&a[0], sh.kb*amxStep, sh.mb, &w[0], sh.kb, &c[0], 32, nil, 0)
				}
				flops := 2 * float64(sh.mb*32*32*sh.kb*32) * float64(b.N)
				b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				b.ReportMetric(flops/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
			})
		}
	}
}

// BenchmarkLinearBF16Kernels times the vision tower's fc1 (768→3072) and
// fc2 (3072→768, the long k) for one image (197 tokens) and eight (1576)
// in float32 (sgemm) and with bf16 weights and activations on VDPBF16PS
// and on AMX (the weight packed once, as beside a Param), per wall and CPU
// second; -cpu 1 gives the per-core rate.
func BenchmarkLinearBF16Kernels(b *testing.B) {
	for _, sh := range []struct{ in, out int }{{768, 768}, {768, 3072}, {3072, 768}} {
		for _, n := range []int{198, 1576} {
			b.Run(fmt.Sprintf("%d-%d/n%d", sh.in, sh.out, n), func(b *testing.B) { benchLinearBF16Kernels(b, n, sh.in, sh.out) })
		}
	}
}

func benchLinearBF16Kernels(b *testing.B, n, in, out int) {
	rng := rand.New(rand.NewSource(10))
	x, wf, bias := randF32(rng, n*in), randF32(rng, out*in), randF32(rng, out)
	w := make([]uint16, len(wf))
	for i, v := range wf {
		w[i] = BF16FromF32(v)
	}
	y := make([]float32, n*out)
	s := &bf16Scratch{roundX: true}
	type benchCase struct {
		name string
		fn   func()
	}
	cases := []benchCase{{"fp32-sgemm", func() { linearFwd(x, wf, bias, y, n, in, out) }}}
	if hasBF16DP {
		cases = append(cases, benchCase{"vdpbf16ps", func() { linearBF16VDP(x, w, bias, y, n, in, out, s) }})
	}
	if amxOn() || hasBF16DP {
		// The packed products from a weight packed once, and with the
		// weight packed per call (scalar and gather packing), as a prefix
		// over a checkpoint-layout weight would have to.
		wp := make([]uint16, amxWeightsLen(in, out))
		packWeightsVNNI(wp, w, in, out, 0, ceil32(out)/32)
		name := "amx"
		if !amxOn() {
			name = "dppanel"
		}
		product := func() { linearBF16AMX(x, wp, bias, y, n, in, out, &s.amx) }
		scalar := func() { packWeightsVNNI(wp, w, in, out, 0, ceil32(out)/32) }
		gather := func() { packWeightsVNNIFast(wp, w, in, out, 0, ceil32(out)/32) }
		cases = append(cases,
			benchCase{name, product},
			benchCase{"pack+" + name, func() { scalar(); product() }},
			benchCase{"fastpack+" + name, func() { gather(); product() }},
			benchCase{"fastpack", gather})
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			c.fn()
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				c.fn()
			}
			flops := 2 * float64(n*in*out) * float64(b.N)
			b.ReportMetric(flops/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			b.ReportMetric(flops/(cpuSeconds()-cpu0)/1e9, "GFLOP/cpu-s")
		})
	}
}

// TestGemmBF16ReusesItsScratch: once warm, a call packs into its
// GemmBF16Scratch: what it allocates (the goroutines' closures) does not grow with
// the matrices, far below the packed operands' size.
func TestGemmBF16ReusesItsScratch(t *testing.T) {
	const m, n, k = 96, 160, 200 // packed operands: about 100 KB
	rng := rand.New(rand.NewSource(11))
	a, b, c := randF32(rng, m*k), randF32(rng, k*n), make([]float32, m*n)
	for name, mk := range gemmBF16Kernels() {
		s, kern := mk()
		call := func() { s.gemm(kern, false, false, m, n, k, a, k, b, n, 0, c, n) }
		call()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		const calls = 20
		for range calls {
			call()
		}
		runtime.ReadMemStats(&after)
		if per := (after.TotalAlloc - before.TotalAlloc) / calls; per > 4096 {
			t.Errorf("%s: %d bytes allocated per call once warm", name, per)
		}
	}
}

// TestGemmBF16WideAndParallelProductsMatchFloat64Reference covers what the
// shapes above do not reach: more than one group of eight 32-column panels
// in the vectorised B packing (n > 256, with a partial last panel and odd
// k), and products large enough (m·n·k ≥ parallelGemmWork) to be split
// across workers, each with its own packing row, for every transpose;
// tolerance as in TestGemmBF16MatchesFloat64Reference.
func TestGemmBF16WideAndParallelProductsMatchFloat64Reference(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	for _, sh := range []struct{ m, n, k int }{{9, 520, 33}, {70, 300, 101}, {130, 290, 64}} {
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				ar, ac := sh.m, sh.k
				if tA {
					ar, ac = sh.k, sh.m
				}
				br, bc := sh.k, sh.n
				if tB {
					br, bc = sh.n, sh.k
				}
				lda, ldb, ldc := ac+1, bc+2, sh.n
				a, b := randF32(rng, ar*lda), randF32(rng, br*ldb)
				c0 := randF32(rng, sh.m*ldc)
				for name, mk := range gemmBF16Kernels() {
					c := append([]float32(nil), c0...)
					s, kern := mk()
					s.gemm(kern, tA, tB, sh.m, sh.n, sh.k, a, lda, b, ldb, 1, c, ldc)
					checkGemmBF16(t, fmt.Sprintf("%s %+v tA=%v tB=%v", name, sh, tA, tB), tA, tB, sh.m, sh.n, sh.k, a, lda, b, ldb, 1, c0, c, ldc)
				}
			}
		}
	}
}

// TestGemmBF16ResultsDoNotDependOnTheCoreCount: the VDPBF16PS and AMX
// kernels give the same bits on one worker as on several (a panel is one
// worker's, summed in the same order either way). The reference is sgemm,
// whose split is the float32 products' own.
func TestGemmBF16ResultsDoNotDependOnTheCoreCount(t *testing.T) {
	const m, n, k = 130, 290, 200 // above parallelGemmWork, edges in rows and columns
	rng := rand.New(rand.NewSource(12))
	a, b := randF32(rng, m*k), randF32(rng, k*n)
	for name, mk := range gemmBF16Kernels() {
		if name == "ref" {
			continue
		}
		var got [2][]float32
		for i, procs := range []int{1, 3} {
			prev := runtime.GOMAXPROCS(procs)
			c := make([]float32, m*n)
			s, kern := mk()
			s.gemm(kern, false, false, m, n, k, a, k, b, n, 0, c, n)
			runtime.GOMAXPROCS(prev)
			got[i] = c
		}
		for i := range got[0] {
			if math.Float32bits(got[0][i]) != math.Float32bits(got[1][i]) {
				t.Fatalf("%s: c[%d] = %v on 1 worker, %v on 3", name, i, got[0][i], got[1][i])
			}
		}
	}
}
