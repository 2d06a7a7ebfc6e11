//go:build (linux || darwin || freebsd) && (amd64 || arm64)

package graph

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"unsafe"

	"github.com/ebitengine/purego"
	"golang.org/x/sys/cpu"
	"gonum.org/v1/gonum/blas"
)

// openBLASCandidates are the OpenBLAS libraries tried, in order: the soname
// the dynamic loader finds on its search path, the unversioned name (a
// developer install), then Debian's and other distributions' usual files by
// full path (Debian's alternatives link and the three threading variants),
// in case the loader's cache is stale.
func openBLASCandidates() []string {
	if runtime.GOOS == "darwin" {
		return []string{"libopenblas.dylib", "libopenblas.0.dylib",
			"/opt/homebrew/opt/openblas/lib/libopenblas.dylib", "/usr/local/opt/openblas/lib/libopenblas.dylib"}
	}
	c := []string{"libopenblas.so.0", "libopenblas.so"}
	for _, dir := range []string{"/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"} {
		c = append(c, dir+"/libopenblas.so.0")
		for _, v := range []string{"pthread", "openmp", "serial"} {
			c = append(c, dir+"/openblas-"+v+"/libopenblas.so.0")
		}
	}
	return append(c, "/usr/lib64/libopenblas.so.0", "/usr/lib/libopenblas.so.0", "/usr/local/lib/libopenblas.so.0")
}

// openBLAS loads OpenBLAS (the library at path, or the first candidate that
// loads when path is empty) and falls back to gonum's BLAS.
func openBLAS(path string) *blasLib {
	if path == "off" {
		return pureGo(EnvOpenBLAS + "=off")
	}
	candidates := openBLASCandidates()
	if path != "" {
		candidates = []string{path}
	}
	restore := setCoreType()
	defer restore()
	var errs []error
	for _, c := range candidates {
		l, err := dlopenOpenBLAS(c)
		if err == nil {
			return l
		}
		errs = append(errs, err)
	}
	if path != "" {
		return pureGo(fmt.Sprintf("%s=%s: %v", EnvOpenBLAS, path, errors.Join(errs...)))
	}
	return pureGo("libopenblas.so.0 not found")
}

// setCoreType sets OPENBLAS_CORETYPE, when the user has not, for the CPUs
// OpenBLAS's run-time detection gets wrong: on some virtual machines it
// takes an AVX-512 CPU for a generic one and runs about 5x slower. OpenBLAS
// reads the variable once, while it loads; the returned function restores
// the environment afterwards.
func setCoreType() (restore func()) {
	if os.Getenv("OPENBLAS_CORETYPE") != "" {
		return func() {}
	}
	core := coreType()
	if core == "" {
		return func() {}
	}
	if os.Setenv("OPENBLAS_CORETYPE", core) != nil {
		return func() {}
	}
	return func() { os.Unsetenv("OPENBLAS_CORETYPE") }
}

// coreType is the OpenBLAS kernel set for this CPU: SkylakeX with AVX-512,
// Haswell with AVX2 and FMA, otherwise OpenBLAS's own choice ("").
func coreType() string {
	switch {
	case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL:
		return "SkylakeX"
	case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
		return "Haswell"
	}
	return ""
}

// dlopenOpenBLAS loads one library and checks that it is OpenBLAS.
func dlopenOpenBLAS(path string) (*blasLib, error) {
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, err
	}
	l := &blasLib{}
	l.args.New = func() any { return new(f77Args) }
	syms := []struct {
		name string
		p    *uintptr
	}{{"sgemm_", &l.sgemm}, {"sgemv_", &l.sgemv}, {"dgemm_", &l.dgemm}, {"dgemv_", &l.dgemv}}
	for _, s := range syms {
		if *s.p, err = purego.Dlsym(h, s.name); err != nil {
			purego.Dlclose(h)
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	var (
		setThreads func(int32)
		getThreads func() int32
		config     func() string
		corename   func() string
	)
	for _, f := range []struct {
		name string
		fn   any
	}{{"openblas_set_num_threads", &setThreads}, {"openblas_get_num_threads", &getThreads},
		{"openblas_get_config", &config}, {"openblas_get_corename", &corename}} {
		sym, err := purego.Dlsym(h, f.name)
		if err != nil {
			purego.Dlclose(h)
			return nil, fmt.Errorf("%s is not OpenBLAS: %w", path, err)
		}
		purego.RegisterFunc(f.fn, sym)
	}
	// OpenBLAS runs single-threaded: the ops split large products across
	// the cores themselves (see gemm) and run attention heads in parallel.
	// Letting OpenBLAS spawn its own threads as well makes them busy-wait
	// against ours.
	setThreads(1)
	cfg := strings.TrimSpace(config())
	version := ""
	if f := strings.Fields(cfg); len(f) > 1 && f[0] == "OpenBLAS" {
		version = f[1]
	}
	l.info = BLASInfo{OpenBLAS: true, Name: "OpenBLAS", Library: path, Version: version, Config: cfg,
		CoreType: strings.TrimSpace(corename()), Threads: int(getThreads())}
	return l, nil
}

// f77Args holds one Fortran BLAS call. The Fortran interface takes every
// argument by reference, so no float travels in a register and
// purego.SyscallN can make the call without reflection. The blocks are
// pooled and hold the argument vector themselves, so a call allocates
// nothing: a variadic argument list built at the call would escape to the
// heap on every call.
type f77Args struct {
	tA, tB          byte
	m, n, k         int32
	lda, ldb, ldc   int32
	incX, incY      int32
	alpha32, beta32 float32
	alpha64, beta64 float64
	// keep holds the matrices while C reads them: storing them in this heap
	// object makes the compiler keep them on the heap (a goroutine stack
	// can move; the heap does not) and the collector keep them alive.
	keep [3]unsafe.Pointer
	argv [15]uintptr
}

// call makes the call with the first n arguments and recycles p.
func (l *blasLib) call(fn uintptr, p *f77Args, n int) {
	purego.SyscallN(fn, p.argv[:n]...)
	runtime.KeepAlive(p)
	p.keep = [3]unsafe.Pointer{}
	l.args.Put(p)
}

func f77Trans(t blas.Transpose) byte {
	if t == blas.NoTrans {
		return 'N'
	}
	return 'T'
}

// ptr is the address of v as a call argument.
func ptr[T any](v *T) uintptr { return uintptr(unsafe.Pointer(v)) }

// f77Data stores s's array in p.keep[i] and returns its address (nil for a nil
// slice).
func f77Data[T any](p *f77Args, i int, s []T) uintptr {
	d := unsafe.Pointer(unsafe.SliceData(s))
	p.keep[i] = d
	return uintptr(d)
}

// The ops' matrices are row-major and Fortran's are column-major: a
// row-major C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so the
// operands and dimensions swap (as cblas does for CblasRowMajor). Each call
// passes the hidden lengths of its character arguments last, as gfortran's
// convention has it.

func gemmArgs(p *f77Args, tA, tB blas.Transpose, m, n, k, lda, ldb, ldc int, alpha, beta uintptr) {
	p.tA, p.tB = f77Trans(tB), f77Trans(tA)
	p.m, p.n, p.k = int32(n), int32(m), int32(k)
	p.lda, p.ldb, p.ldc = int32(ldb), int32(lda), int32(ldc)
	p.argv = [15]uintptr{ptr(&p.tA), ptr(&p.tB), ptr(&p.m), ptr(&p.n), ptr(&p.k), alpha,
		p.argv[6], ptr(&p.lda), p.argv[8], ptr(&p.ldb), beta, p.argv[11], ptr(&p.ldc), 1, 1}
}

func (l *blasLib) callSgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	p := l.args.Get().(*f77Args)
	p.alpha32, p.beta32 = alpha, beta
	p.argv[6], p.argv[8], p.argv[11] = f77Data(p, 0, b), f77Data(p, 1, a), f77Data(p, 2, c)
	gemmArgs(p, tA, tB, m, n, k, lda, ldb, ldc, ptr(&p.alpha32), ptr(&p.beta32))
	l.call(l.sgemm, p, 15)
}

func (l *blasLib) callDgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	p := l.args.Get().(*f77Args)
	p.alpha64, p.beta64 = alpha, beta
	p.argv[6], p.argv[8], p.argv[11] = f77Data(p, 0, b), f77Data(p, 1, a), f77Data(p, 2, c)
	gemmArgs(p, tA, tB, m, n, k, lda, ldb, ldc, ptr(&p.alpha64), ptr(&p.beta64))
	l.call(l.dgemm, p, 15)
}

// A row-major m×n A is the column-major n×m Aᵀ: y = A·x is y = (Aᵀ)ᵀ·x.
func gemvArgs(p *f77Args, tA blas.Transpose, m, n, lda, incX, incY int, alpha, beta uintptr) {
	p.tA = 'T'
	if tA != blas.NoTrans {
		p.tA = 'N'
	}
	p.m, p.n, p.lda, p.incX, p.incY = int32(n), int32(m), int32(lda), int32(incX), int32(incY)
	p.argv = [15]uintptr{ptr(&p.tA), ptr(&p.m), ptr(&p.n), alpha, p.argv[4], ptr(&p.lda),
		p.argv[6], ptr(&p.incX), beta, p.argv[9], ptr(&p.incY), 1}
}

func (l *blasLib) callSgemv(tA blas.Transpose, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	p := l.args.Get().(*f77Args)
	p.alpha32, p.beta32 = alpha, beta
	p.argv[4], p.argv[6], p.argv[9] = f77Data(p, 0, a), f77Data(p, 1, x), f77Data(p, 2, y)
	gemvArgs(p, tA, m, n, lda, incX, incY, ptr(&p.alpha32), ptr(&p.beta32))
	l.call(l.sgemv, p, 12)
}

func (l *blasLib) callDgemv(tA blas.Transpose, m, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
	p := l.args.Get().(*f77Args)
	p.alpha64, p.beta64 = alpha, beta
	p.argv[4], p.argv[6], p.argv[9] = f77Data(p, 0, a), f77Data(p, 1, x), f77Data(p, 2, y)
	gemvArgs(p, tA, m, n, lda, incX, incY, ptr(&p.alpha64), ptr(&p.beta64))
	l.call(l.dgemv, p, 12)
}
