package graph

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// helperEnv makes TestHelperPrintBLAS print the BLAS a fresh process loads.
const helperEnv = "GITCAP_TEST_BLAS_HELPER"

// TestHelperPrintBLAS is not a test: the tests below run the test binary
// again as a helper process, in a changed environment or mount namespace,
// and read the BLAS it loaded from this line.
func TestHelperPrintBLAS(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for the BLAS loading tests")
	}
	b, err := json.Marshal(BLAS())
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("BLASINFO %s CORETYPE_ENV=%q\n", b, os.Getenv("OPENBLAS_CORETYPE"))
}

// helperBLAS runs the test binary (prefixed by wrap, e.g. unshare) with the
// tests matching run and the extra environment, and returns the BLAS the
// helper loaded and the environment it saw afterwards.
func helperBLAS(t *testing.T, wrap []string, run string, env ...string) (BLASInfo, string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{}, wrap...), exe, "-test.run", run, "-test.v", "-test.count=1")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "BLASINFO ")
		if !ok {
			continue
		}
		js, coreEnv, _ := strings.Cut(line, " CORETYPE_ENV=")
		var b BLASInfo
		if err := json.Unmarshal([]byte(js), &b); err != nil {
			t.Fatalf("helper printed %q: %v", line, err)
		}
		return b, coreEnv, string(out)
	}
	t.Fatalf("helper printed no BLAS:\n%s", out)
	return BLASInfo{}, "", ""
}

// requireOpenBLAS skips when this machine has no OpenBLAS to load ("make
// test" installs it).
func requireOpenBLAS(t *testing.T) {
	t.Helper()
	if b := BLAS(); !b.OpenBLAS {
		t.Skipf("OpenBLAS is not in use (%s): apt-get install libopenblas0, or run make test", b.Reason)
	}
}

// loadedOpenBLASFiles lists the OpenBLAS files the process has mapped, and
// every other file a default candidate resolves to.
func loadedOpenBLASFiles(t *testing.T) []string {
	t.Helper()
	seen := map[string]bool{}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	for _, line := range strings.Split(string(maps), "\n") {
		if f := strings.Fields(line); len(f) >= 6 && strings.Contains(filepath.Base(f[5]), "libopenblas") {
			seen[f[5]] = true
		}
	}
	for _, c := range openBLASCandidates() {
		if filepath.IsAbs(c) {
			if p, err := filepath.EvalSymlinks(c); err == nil {
				seen[p] = true
			}
		}
	}
	files := make([]string, 0, len(seen))
	for f := range seen {
		files = append(files, f)
	}
	sort.Strings(files)
	return files
}

// TestLoaderUsesOpenBLASAndFallsBackWhenItIsHidden loads OpenBLAS in a fresh
// process, then hides the installed library inside a private mount namespace
// (a tmpfs over Debian's openblas-* directory, /dev/null over any other file)
// and checks that a fresh process there falls back to the pure-Go BLAS and
// still passes the kernel tests.
func TestLoaderUsesOpenBLASAndFallsBackWhenItIsHidden(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	requireOpenBLAS(t)
	got, _, _ := helperBLAS(t, nil, "^TestHelperPrintBLAS$")
	if !got.OpenBLAS || got.Version == "" || got.CoreType == "" || got.Threads != 1 {
		t.Fatalf("fresh process with OpenBLAS installed loaded %+v, want OpenBLAS with its version, core type and 1 thread", got)
	}
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("hiding the library needs root on Linux (unshare -m)")
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("hiding the library needs unshare (util-linux)")
	}
	if out, err := exec.Command(unshare, "-m", "--propagation", "private", "mount", "-t", "tmpfs", "gitcap-test", t.TempDir()).CombinedOutput(); err != nil {
		t.Skipf("cannot mount in a private mount namespace here (%v: %s)", err, strings.TrimSpace(string(out)))
	}
	script := ""
	for _, f := range loadedOpenBLASFiles(t) {
		if dir := filepath.Dir(f); strings.HasPrefix(filepath.Base(dir), "openblas") {
			script += fmt.Sprintf("mount -t tmpfs gitcap-test %q && ", dir)
		} else {
			script += fmt.Sprintf("mount --bind /dev/null %q && ", f)
		}
	}
	wrap := []string{unshare, "-m", "--propagation", "private", "sh", "-c", script + `exec "$@"`, "sh"}
	hidden, _, out := helperBLAS(t, wrap, "^(TestHelperPrintBLAS|TestGemm.*|TestBLASCallsMatchGonum)$")
	if hidden.OpenBLAS {
		t.Fatalf("with OpenBLAS hidden (%s) the loader still found %+v", script, hidden)
	}
	if hidden.Name != PureGoName || hidden.Reason == "" {
		t.Fatalf("hidden: got %+v, want the pure-Go BLAS with a reason", hidden)
	}
	for _, name := range []string{"TestGemmParallelMatchesSingleCall", "TestGemmWritesOnlyItsOutput", "TestBLASCallsMatchGonum"} {
		if !strings.Contains(out, "--- PASS: "+name) {
			t.Errorf("%s did not pass on the pure-Go BLAS:\n%s", name, out)
		}
	}
}

// TestLoaderHonoursTheEnvironment checks GITCAP_OPENBLAS (off, a missing
// path) and that OPENBLAS_CORETYPE is set for OpenBLAS while it loads (the
// CPU rule) but the user's own value wins and the environment is left as
// it was.
func TestLoaderHonoursTheEnvironment(t *testing.T) {
	if testing.Short() {
		t.Skip("starts helper processes")
	}
	off, _, _ := helperBLAS(t, nil, "^TestHelperPrintBLAS$", EnvOpenBLAS+"=off")
	if off.OpenBLAS || !strings.Contains(off.Reason, "off") {
		t.Errorf("%s=off: got %+v, want the pure-Go BLAS", EnvOpenBLAS, off)
	}
	missing, _, _ := helperBLAS(t, nil, "^TestHelperPrintBLAS$", EnvOpenBLAS+"=/nonexistent/libopenblas.so.0")
	if missing.OpenBLAS || !strings.Contains(missing.Reason, "/nonexistent/libopenblas.so.0") {
		t.Errorf("%s=/nonexistent/...: got %+v, want the pure-Go BLAS naming the path", EnvOpenBLAS, missing)
	}
	requireOpenBLAS(t)
	user, envAfter, _ := helperBLAS(t, nil, "^TestHelperPrintBLAS$", "OPENBLAS_CORETYPE=Prescott")
	if user.CoreType != "Prescott" || envAfter != `"Prescott"` {
		t.Errorf("OPENBLAS_CORETYPE=Prescott: OpenBLAS uses %q kernels and the environment says %s, want the user's Prescott", user.CoreType, envAfter)
	}
	own, envAfter, _ := helperBLAS(t, nil, "^TestHelperPrintBLAS$", "OPENBLAS_CORETYPE=")
	if want := coreType(); want != "" && own.CoreType != want {
		t.Errorf("OPENBLAS_CORETYPE unset: OpenBLAS uses %q kernels, want %q for this CPU", own.CoreType, want)
	}
	if envAfter != `""` {
		t.Errorf("OPENBLAS_CORETYPE unset before loading is %s afterwards, want it unset again", envAfter)
	}
}

// TestBLASCallsMatchGonum compares every product the ops call (gemm for each
// transpose pair, gemv on rows and on strided columns, float32 and float64)
// through the loaded BLAS with gonum's, including outputs that must stay
// untouched past the matrix.
func TestBLASCallsMatchGonum(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	fill32 := func(n int) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		return v
	}
	to64 := func(v []float32) []float64 {
		w := make([]float64, len(v))
		for i, x := range v {
			w[i] = float64(x)
		}
		return w
	}
	var ref gonum.Implementation
	ts := []blas.Transpose{blas.NoTrans, blas.Trans}
	for _, d := range [][3]int{{7, 5, 3}, {1, 9, 4}, {16, 1, 8}, {33, 17, 65}} {
		m, n, k := d[0], d[1], d[2]
		for _, tA := range ts {
			for _, tB := range ts {
				name := fmt.Sprintf("gemm m=%d n=%d k=%d tA=%c tB=%c", m, n, k, tA, tB)
				lda, ldb, ldc := k+2, n+1, n+3 // padded rows
				if tA != blas.NoTrans {
					lda = m + 2
				}
				if tB != blas.NoTrans {
					ldb = k + 1
				}
				ar, br := m, k
				if tA != blas.NoTrans {
					ar = k
				}
				if tB != blas.NoTrans {
					br = n
				}
				a, b, c := fill32(ar*lda), fill32(br*ldb), fill32(m*ldc+5)
				want := append([]float32(nil), c...)
				ref.Sgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, want, ldc)
				got := append([]float32(nil), c...)
				s3.Sgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, got, ldc)
				close32(t, name, got, want, 1e-4)
				want64 := to64(c)
				ref.Dgemm(tA, tB, m, n, k, 0.5, to64(a), lda, to64(b), ldb, 0.25, want64, ldc)
				got64 := to64(c)
				d3.Dgemm(tA, tB, m, n, k, 0.5, to64(a), lda, to64(b), ldb, 0.25, got64, ldc)
				close64(t, name+" (float64)", got64, want64, 1e-12)
			}
		}
		for _, tA := range ts {
			for _, inc := range []int{1, 3} {
				name := fmt.Sprintf("gemv m=%d n=%d tA=%c inc=%d", m, n, tA, inc)
				lda := n + 2
				lx, ly := n, m
				if tA != blas.NoTrans {
					lx, ly = m, n
				}
				a, x, y := fill32(m*lda), fill32((lx-1)*inc+1), fill32((ly-1)*inc+1+4)
				for _, beta := range []float32{0, 0.25} {
					want := append([]float32(nil), y...)
					ref.Sgemv(tA, m, n, 1.5, a, lda, x, inc, beta, want, inc)
					got := append([]float32(nil), y...)
					s3.Sgemv(tA, m, n, 1.5, a, lda, x, inc, beta, got, inc)
					// Only the vector's elements: past it (and between strided
					// elements) gonum's gemv with beta 0 clears, OpenBLAS does not.
					got, want = strided(got, inc, ly), strided(want, inc, ly)
					close32(t, fmt.Sprintf("%s beta=%g", name, beta), got, want, 1e-4)
					want64 := to64(y)
					ref.Dgemv(tA, m, n, 1.5, to64(a), lda, to64(x), inc, float64(beta), want64, inc)
					got64 := to64(y)
					d3.Dgemv(tA, m, n, 1.5, to64(a), lda, to64(x), inc, float64(beta), got64, inc)
					got64, want64 = strided(got64, inc, ly), strided(want64, inc, ly)
					close64(t, fmt.Sprintf("%s beta=%g (float64)", name, beta), got64, want64, 1e-12)
				}
			}
		}
	}
}

// strided returns the n elements v[0], v[inc], … .
func strided[T any](v []T, inc, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v[i*inc]
	}
	return out
}

func close32(t *testing.T, name string, got, want []float32, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(float64(got[i]-want[i])) > tol*(1+math.Abs(float64(want[i]))) {
			t.Fatalf("%s (%s): element %d is %g, gonum gives %g", name, BLAS().Name, i, got[i], want[i])
		}
	}
}

func close64(t *testing.T, name string, got, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if math.Abs(got[i]-want[i]) > tol*(1+math.Abs(want[i])) {
			t.Fatalf("%s (%s): element %d is %g, gonum gives %g", name, BLAS().Name, i, got[i], want[i])
		}
	}
}

// TestOpenBLASCallsDoNotAllocate: a decode step makes dozens of BLAS calls,
// and per-token loops must not allocate.
func TestOpenBLASCallsDoNotAllocate(t *testing.T) {
	requireOpenBLAS(t)
	a, b, c := make([]float32, 64*64), make([]float32, 64*64), make([]float32, 64*64)
	if n := testing.AllocsPerRun(100, func() {
		s3.Sgemm(blas.NoTrans, blas.Trans, 64, 64, 64, 1, a, 64, b, 64, 0, c, 64)
		s3.Sgemv(blas.Trans, 64, 64, 1, a, 64, b, 1, 0, c, 1)
	}); n != 0 {
		t.Errorf("an OpenBLAS gemm + gemv allocates %.1f times", n)
	}
}

// TestBadBLASArgumentsPanicBeforeCallingC: a slice too short for the matrix
// it is said to hold must never reach C code.
func TestBadBLASArgumentsPanicBeforeCallingC(t *testing.T) {
	a, b, c := make([]float32, 12), make([]float32, 12), make([]float32, 11)
	for _, tc := range []struct {
		name string
		call func()
	}{
		{"short c", func() { s3.Sgemm(blas.NoTrans, blas.NoTrans, 3, 4, 3, 1, a, 3, b, 4, 0, c, 4) }},
		{"short a", func() { s3.Sgemm(blas.NoTrans, blas.NoTrans, 5, 2, 3, 1, a, 3, b, 2, 0, c, 2) }},
		{"small lda", func() { s3.Sgemm(blas.NoTrans, blas.NoTrans, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2) }},
		{"short y", func() { s3.Sgemv(blas.NoTrans, 12, 1, 1, a, 1, b, 1, 0, c, 1) }},
		{"zero inc", func() { s3.Sgemv(blas.NoTrans, 2, 2, 1, a, 2, b, 0, 0, c, 1) }},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s (%s): no panic", tc.name, BLAS().Name)
				}
			}()
			tc.call()
		}()
	}
}

// BenchmarkSgemmSmall times one small product through the loaded BLAS (the
// purego call): compare with BenchmarkSgemmSmallCgo (-tags openblascgo) and
// with GITCAP_OPENBLAS=off.
func BenchmarkSgemmSmall(b *testing.B) {
	for _, n := range []int{8, 64} {
		x, y, z := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
		b.Run(fmt.Sprintf("n=%d/%s", n, strings.Fields(BLAS().Name)[0]), func(b *testing.B) {
			for b.Loop() {
				s3.Sgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, x, n, y, n, 0, z, n)
			}
		})
	}
}

// TestFewRowProductsEqualOneRowProducts: a Linear-shaped product of a few
// rows (gemmFewRows, taken for m ≤ fewRows) gives every row bit for bit
// what the one-row product (gemv) gives it, split across cores or not,
// and matches a float64 reference to float32 rounding of k-term sums;
// beta keeps its BLAS meaning (the bias is written into c first).
func TestFewRowProductsEqualOneRowProducts(t *testing.T) {
	rng := rand.New(rand.NewSource(4))
	for _, sh := range []struct{ m, n, k int }{{2, 3000, 64}, {5, 700, 300}, {fewRows, 1031, 96}, {4, 8192, 128}, {fewRows, 1031, 600}, {3, 30522, 768}} {
		a := make([]float32, sh.m*sh.k)
		b := make([]float32, sh.n*sh.k)
		for i := range a {
			a[i] = float32(rng.NormFloat64())
		}
		for i := range b {
			b[i] = float32(rng.NormFloat64())
		}
		for _, beta := range []float32{0, 1} {
			c := make([]float32, sh.m*sh.n)
			for i := range c {
				c[i] = float32(i%7) - 3
			}
			c0 := append([]float32(nil), c...)
			gemm(false, true, sh.m, sh.n, sh.k, 1, a, sh.k, b, sh.k, beta, c, sh.n)
			for i := range sh.m {
				one := append([]float32(nil), c0[i*sh.n:(i+1)*sh.n]...)
				gemm(false, true, 1, sh.n, sh.k, 1, a[i*sh.k:], sh.k, b, sh.k, beta, one, sh.n)
				for j := range one {
					if got := c[i*sh.n+j]; got != one[j] {
						t.Fatalf("%+v beta %g: row %d col %d is %g, the one-row product %g", sh, beta, i, j, got, one[j])
					}
					ref := float64(beta) * float64(c0[i*sh.n+j])
					var abs float64
					for q := range sh.k {
						p := float64(a[i*sh.k+q]) * float64(b[j*sh.k+q])
						ref += p
						abs += math.Abs(p)
					}
					// float32 sums of k terms: within k·2⁻²⁴ of the sum of
					// their magnitudes.
					if d := math.Abs(float64(one[j]) - ref); d > float64(sh.k)*0x1p-24*(abs+math.Abs(ref)) {
						t.Fatalf("%+v beta %g: (%d,%d) = %g, reference %g", sh, beta, i, j, one[j], ref)
					}
				}
			}
		}
	}
}

// TestFewRowSplitProductsEqualUnsplit: a product of at most fewRows rows
// that gemm splits across cores (gemmWorkers) gives every element the
// bits of the same product in one BLAS call, for widths that do not
// divide evenly (git-base's vocabulary, odd n) as well as ones that do, so
// a decode step's logits do not depend on the number of cores.
func TestFewRowSplitProductsEqualUnsplit(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("one core: gemm splits nothing")
	}
	rng := rand.New(rand.NewSource(5))
	for _, sh := range []struct{ m, n, k int }{{1, 768, 768}, {1, 777, 701}, {1, 30522, 768}, {3, 1031, 600}, {fewRows, 30522, 64}} {
		if gemmWorkers(sh.m, sh.n, sh.k) < 2 {
			t.Fatalf("%+v: gemm does not split it", sh)
		}
		a, b := randF32(rng, sh.m*sh.k), randF32(rng, sh.n*sh.k)
		split, one := make([]float32, sh.m*sh.n), make([]float32, sh.m*sh.n)
		gemm(false, true, sh.m, sh.n, sh.k, 1, a, sh.k, b, sh.k, 0, split, sh.n)
		gemm1(false, true, sh.m, sh.n, sh.k, 1, a, sh.k, b, sh.k, 0, one, sh.n)
		if i := firstDiff(split, one); i >= 0 {
			t.Fatalf("%+v: c[%d,%d] = %v split across cores, %v in one call", sh, i/sh.n, i%sh.n, split[i], one[i])
		}
	}
}
