package graph

import (
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// needOwnSgemm skips a test where linearOwnSgemm is not in use, and fails
// it where it should be: OpenBLAS 0.3.21's SkylakeX kernels on an AVX-512
// CPU are the BLAS it was written against.
func needOwnSgemm(t *testing.T) {
	t.Helper()
	b := BLAS()
	if hasSgemmTile && hasAVX512 && b.OpenBLAS && b.Version == "0.3.21" && b.CoreType == "SkylakeX" && !ownSgemmOK() {
		t.Fatalf("%v on an AVX-512 CPU: linearOwnSgemm does not give its bits (ownSgemmOK false)", b)
	}
	if !hasSgemmTile || !hasAVX512 || !ownSgemmOK() {
		t.Skipf("linearOwnSgemm is not in use with %v", b)
	}
}

// TestOwnSgemmGivesSgemmBits checks that the many-row Linear without the
// weight's packing gives every element the bits sgemm gives it: the vision
// tower's four products, a prefix of two images, the largest row count it
// takes, the smallest, and shapes whose k blocks, row blocks and last tile
// are uneven; with and without a bias.
func TestOwnSgemmGivesSgemmBits(t *testing.T) {
	needOwnSgemm(t)
	for _, c := range []struct{ n, in, out int }{
		{197, 768, 2304}, {197, 768, 768}, {197, 768, 3072}, {197, 3072, 768},
		{394, 768, 2304}, {ownSgemmMaxRows, 768, 768}, {fewRows + 1, 1000, 300},
		{217, 1000, 37}, {33, 1337, 50}, {48, 448, 120}, {100, 449, 100}, {61, 2000, 25},
	} {
		rng := rand.New(rand.NewSource(int64(c.n*c.in + c.out)))
		x, w, b := randF32(rng, c.n*c.in), randF32(rng, c.out*c.in), randF32(rng, c.out)
		if !useOwnSgemm(c.n, c.in, c.out) {
			t.Fatalf("%d×%d→%d: useOwnSgemm false, want the own product", c.n, c.in, c.out)
		}
		for _, bias := range [][]float32{b, nil} {
			want := make([]float32, c.n*c.out)
			if bias != nil {
				linearBiasFwd(x, w, bias, want, c.n, c.in, c.out)
			} else {
				gemm(false, true, c.n, c.out, c.in, 1, x, c.in, w, c.in, 0, want, c.out)
			}
			got := make([]float32, c.n*c.out)
			for i := range got {
				got[i] = float32(math.NaN()) // every element must be written
			}
			linearOwnSgemm(x, w, bias, got, c.n, c.in, c.out, &sgemmScratch{})
			for i := range got {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%d×%d→%d bias %v: y[%d,%d] = %v, sgemm gives %v", c.n, c.in, c.out, bias != nil, i/c.out, i%c.out, got[i], want[i])
				}
			}
		}
	}
}

// TestOwnSgemmReusesItsScratch checks that a second, smaller product in
// the same scratch (a graph's next Linear) is not disturbed by the first's
// values, and that a product in a warm scratch allocates nothing.
func TestOwnSgemmReusesItsScratch(t *testing.T) {
	needOwnSgemm(t)
	rng := rand.New(rand.NewSource(3))
	var s sgemmScratch
	for _, c := range []struct{ n, in, out int }{{197, 3072, 768}, {150, 768, 100}} {
		x, w, b := randF32(rng, c.n*c.in), randF32(rng, c.out*c.in), randF32(rng, c.out)
		want := make([]float32, c.n*c.out)
		linearBiasFwd(x, w, b, want, c.n, c.in, c.out)
		got := make([]float32, c.n*c.out)
		linearOwnSgemm(x, w, b, got, c.n, c.in, c.out, &s)
		if !slices.Equal(got, want) {
			t.Fatalf("%d×%d→%d after a larger product in the scratch: differs from sgemm", c.n, c.in, c.out)
		}
		if a := testing.AllocsPerRun(10, func() { linearOwnSgemm(x, w, b, got, c.n, c.in, c.out, &s) }); a > 0 {
			t.Errorf("%d×%d→%d in a warm scratch: %v allocations a product, want 0", c.n, c.in, c.out, a)
		}
	}
}

func TestSgemmKBlocksFollowOpenBLAS(t *testing.T) {
	for _, c := range []struct {
		k    int
		want []int // block ends
	}{
		{300, []int{300}},
		{448, []int{448}},
		{768, []int{384, 768}},        // one to two blocks: halves
		{896, []int{448, 896}},        // two whole blocks
		{1000, []int{448, 736, 1000}}, // 552 left: 288 (rounded up to 16) + 264
		{3072, []int{448, 896, 1344, 1792, 2240, 2656, 3072}}, // 832 left: 416 + 416
	} {
		var got []int
		next := 0
		sgemmKBlocks(c.k, func(k0, k1 int) {
			if k0 != next {
				t.Errorf("k %d: block starts at %d, want %d", c.k, k0, next)
			}
			next = k1
			got = append(got, k1)
		})
		if !slices.Equal(got, c.want) {
			t.Errorf("k %d: blocks end at %v, want %v", c.k, got, c.want)
		}
	}
}

func TestTranspose16WritesRowsAndColumnsAsked(t *testing.T) {
	if !hasSgemmTile || !hasAVX512 {
		t.Skip("no AVX-512")
	}
	src := make([]float32, 16*20)
	for i := range src {
		src[i] = float32(i)
	}
	for _, c := range []struct {
		rows int
		mask uint16
	}{{16, 0xFFFF}, {5, 0x0FFF}, {1, 0x0FF0}, {0, 0xFFFF}} {
		dst := make([]float32, 16*18)
		for i := range dst {
			dst[i] = -1
		}
		transpose16(&src[0], 20, &dst[0], 18, c.rows, c.mask)
		for i := 0; i < 16; i++ {
			for j := 0; j < 18; j++ {
				want := float32(-1)
				if i < c.rows && j < 16 && c.mask&(1<<j) != 0 {
					want = src[j*20+i]
				}
				if dst[i*18+j] != want {
					t.Fatalf("rows %d mask %#x: dst[%d][%d] = %v, want %v", c.rows, c.mask, i, j, dst[i*18+j], want)
				}
			}
		}
	}
}

// BenchmarkLinearOwnSgemm times the vision tower's products (197 rows),
// fewer rows and more through sgemm (which packs the weight on every call)
// and through linearOwnSgemm; ownSgemmMaxRows is where the two meet.
func BenchmarkLinearOwnSgemm(b *testing.B) {
	if !ownSgemmOK() {
		b.Skip("linearOwnSgemm is not in use here")
	}
	for _, c := range []struct{ n, in, out int }{
		{197, 768, 2304}, {197, 768, 768}, {197, 768, 3072}, {197, 3072, 768},
		{16, 768, 3072}, {40, 768, 768}, {788, 768, 2304}, {1736, 768, 3072},
	} {
		rng := rand.New(rand.NewSource(1))
		x, w, bias := randF32(rng, c.n*c.in), randF32(rng, c.out*c.in), randF32(rng, c.out)
		y := make([]float32, c.n*c.out)
		var s sgemmScratch
		flops := 2 * float64(c.n*c.in*c.out)
		name := fmt.Sprintf("%dx%dx%d", c.n, c.in, c.out)
		b.Run("sgemm/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				linearBiasFwd(x, w, bias, y, c.n, c.in, c.out)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
		b.Run("own/"+name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				linearOwnSgemm(x, w, bias, y, c.n, c.in, c.out, &s)
			}
			b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// TestOwnSgemmRunsWithTheDefaultKernels runs the bit test in a process
// whose OpenBLAS picks its kernels by this package's CPU rule, when the
// environment chose others (OPENBLAS_CORETYPE) and the test above skipped:
// where that rule gives OpenBLAS 0.3.21's SkylakeX kernels, the test must
// run and pass.
func TestOwnSgemmRunsWithTheDefaultKernels(t *testing.T) {
	b := BLAS()
	if !b.OpenBLAS || b.Version != "0.3.21" || coreType() != "SkylakeX" || !hasAVX512 || !hasSgemmTile {
		t.Skipf("%v: not the BLAS and CPU linearOwnSgemm was written against", b)
	}
	if b.CoreType == "SkylakeX" {
		t.Skip("TestOwnSgemmGivesSgemmBits runs in this process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run", "^TestOwnSgemmGivesSgemmBits$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "OPENBLAS_CORETYPE=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestOwnSgemmGivesSgemmBits") {
		t.Fatalf("with OpenBLAS's default kernels: %v\n%s", err, out)
	}
}
