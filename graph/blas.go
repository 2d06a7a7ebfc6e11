package graph

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// The matrix-product ops call OpenBLAS when its shared library can be loaded
// at run time (libopenblas.so.0, Debian's libopenblas0 package), and gonum's
// pure-Go BLAS otherwise. Nothing links against OpenBLAS, so `go build`,
// `go install` and CGO_ENABLED=0 static builds work without its development
// files, and one binary runs fast where OpenBLAS is installed and correctly
// (about 20x slower) where it is not.

// EnvOpenBLAS names the environment variable that chooses the BLAS: unset or
// empty searches the usual places for libopenblas.so.0, "off" uses the pure-Go
// BLAS, anything else is the path of the OpenBLAS library to load (falling
// back to the pure-Go BLAS, with the reason in BLAS().Reason, if it does not
// load).
const EnvOpenBLAS = "GITCAP_OPENBLAS"

// BLASInfo describes the BLAS the matrix-product ops call.
type BLASInfo struct {
	OpenBLAS bool   `json:"openblas"`            // false: gonum's pure-Go BLAS
	Name     string `json:"name"`                // "OpenBLAS" or "gonum (pure Go)"
	Library  string `json:"library,omitempty"`   // the library file loaded (OpenBLAS only)
	Version  string `json:"version,omitempty"`   // OpenBLAS's version, e.g. "0.3.21"
	Config   string `json:"config,omitempty"`    // openblas_get_config(): version and build options
	CoreType string `json:"core_type,omitempty"` // openblas_get_corename(): the CPU kernels in use, e.g. "Haswell"
	Threads  int    `json:"threads,omitempty"`   // OpenBLAS's own threads: 1, the ops split large products across cores themselves
	Reason   string `json:"reason,omitempty"`    // why OpenBLAS is not in use (pure Go only)
}

// String is a one-line description, e.g. "OpenBLAS 0.3.21 (SkylakeX kernels,
// 1 thread)" or "gonum (pure Go)".
func (b BLASInfo) String() string {
	if !b.OpenBLAS {
		return b.Name
	}
	return fmt.Sprintf("%s %s (%s kernels, %d thread(s), %s)", b.Name, b.Version, b.CoreType, b.Threads, b.Library)
}

// PureGoName is BLASInfo.Name for gonum's BLAS.
const PureGoName = "gonum (pure Go)"

// InstallHint says how to get the fast BLAS.
const InstallHint = "install OpenBLAS for ~20x faster matrix products: apt-get install libopenblas0 (Debian/Ubuntu), dnf install openblas, brew install openblas"

// BLAS loads the BLAS (once per process) and describes it.
func BLAS() BLASInfo { return loadBLAS().info }

// blasLib is the loaded BLAS: OpenBLAS's entry points, or zero pointers for
// gonum's BLAS.
type blasLib struct {
	info                       BLASInfo
	sgemm, sgemv, dgemm, dgemv uintptr
	// args recycles the scalar argument blocks of the Fortran calls, whose
	// scalars are passed by reference and so must live on the heap; pooling
	// them keeps a BLAS call allocation-free.
	args sync.Pool
	// xcopy recycles the aligned copies of x that gonum's Sgemv gets
	// (alignedX).
	xcopy sync.Pool
}

// loadBLAS is the process's only BLAS state: the library is loaded at most
// once (dlopen cannot be meaningfully undone, and OpenBLAS reads its
// environment once, when it loads), on the first matrix product or BLAS()
// call, and never changes afterwards, so every op in the process uses the
// same BLAS and results are reproducible within a run.
var loadBLAS = sync.OnceValue(func() *blasLib { return openBLAS(os.Getenv(EnvOpenBLAS)) })

func pureGo(reason string) *blasLib {
	return &blasLib{info: BLASInfo{Name: PureGoName, Reason: reason}}
}

// blas32 and blas64 send the products the ops use (gemm, gemv) to OpenBLAS
// when it is loaded and everything else, and everything when it is not, to
// gonum.
type blas32 struct{ gonum.Implementation }
type blas64 struct{ gonum.Implementation }

func sgemmImpl() blas.Float32 { return blas32{} }
func dgemmImpl() blas.Float64 { return blas64{} }

func (b blas32) Sgemm(tA, tB blas.Transpose, m, n, k int, alpha float32, a []float32, lda int, bm []float32, ldb int, beta float32, c []float32, ldc int) {
	if l := loadBLAS(); l.sgemm != 0 && fitsInt32(m, n, k, lda, ldb, ldc) {
		checkGemm(tA, tB, m, n, k, len(a), lda, len(bm), ldb, len(c), ldc)
		l.callSgemm(tA, tB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
		return
	}
	b.Implementation.Sgemm(tA, tB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

func (b blas32) Sgemv(tA blas.Transpose, m, n int, alpha float32, a []float32, lda int, x []float32, incX int, beta float32, y []float32, incY int) {
	if l := loadBLAS(); l.sgemv != 0 && fitsInt32(m, n, lda, incX, incY) {
		checkGemv(tA, m, n, len(a), lda, len(x), incX, len(y), incY)
		l.callSgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
		return
	}
	if tA == blas.NoTrans && incX == 1 && n > 0 && uintptr(unsafe.Pointer(&x[0]))%16 != 0 {
		l := loadBLAS()
		buf, xa := l.alignedX(x[:n])
		b.Implementation.Sgemv(tA, m, n, alpha, a, lda, xa, incX, beta, y, incY)
		l.xcopy.Put(buf)
		return
	}
	b.Implementation.Sgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
}

// alignedX copies x into a pooled buffer (buf, to put back) at a 16-byte
// boundary (xa). gonum's Sgemv takes each row's dot product with x
// (f32.DotUnitary), which sums x's elements up to the first 16-byte
// boundary one at a time before its SSE loop, so its bits depend on where x
// lies: a row of a batch (at an offset of r·k values) would get other bits
// than the same row in a buffer of its own (Go allocates those on 16-byte
// boundaries). With x copied to one, a gemv's result depends on x's values
// only (TestRowProductsDoNotDependOnTheRowCount under GITCAP_OPENBLAS=off).
// OpenBLAS's gemv does not depend on x's alignment and gets x as it is.
func (l *blasLib) alignedX(x []float32) (buf *[]float32, xa []float32) {
	buf, _ = l.xcopy.Get().(*[]float32)
	if buf == nil || len(*buf) < len(x)+3 {
		b := make([]float32, len(x)+3)
		buf = &b
	}
	off := 0
	for uintptr(unsafe.Pointer(&(*buf)[off]))%16 != 0 {
		off++
	}
	xa = (*buf)[off : off+len(x)]
	copy(xa, x)
	return buf, xa
}

func (b blas64) Dgemm(tA, tB blas.Transpose, m, n, k int, alpha float64, a []float64, lda int, bm []float64, ldb int, beta float64, c []float64, ldc int) {
	if l := loadBLAS(); l.dgemm != 0 && fitsInt32(m, n, k, lda, ldb, ldc) {
		checkGemm(tA, tB, m, n, k, len(a), lda, len(bm), ldb, len(c), ldc)
		l.callDgemm(tA, tB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
		return
	}
	b.Implementation.Dgemm(tA, tB, m, n, k, alpha, a, lda, bm, ldb, beta, c, ldc)
}

func (b blas64) Dgemv(tA blas.Transpose, m, n int, alpha float64, a []float64, lda int, x []float64, incX int, beta float64, y []float64, incY int) {
	if l := loadBLAS(); l.dgemv != 0 && fitsInt32(m, n, lda, incX, incY) {
		checkGemv(tA, m, n, len(a), lda, len(x), incX, len(y), incY)
		l.callDgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
		return
	}
	b.Implementation.Dgemv(tA, m, n, alpha, a, lda, x, incX, beta, y, incY)
}

// fitsInt32 reports whether every value fits OpenBLAS's 32-bit Fortran
// INTEGER (Debian's libopenblas0 is the LP64 build); larger products go to
// gonum.
func fitsInt32(v ...int) bool {
	for _, x := range v {
		if x > 1<<31-1 || x < -(1<<31) {
			return false
		}
	}
	return true
}

// checkGemm panics, as gonum does, when a row-major gemm's arguments do not
// describe matrices inside the slices, so that a bad call never lets C code
// read or write past a Go slice.
func checkGemm(tA, tB blas.Transpose, m, n, k, la, lda, lb, ldb, lc, ldc int) {
	ar, ac := m, k
	if tA != blas.NoTrans {
		ar, ac = k, m
	}
	br, bc := k, n
	if tB != blas.NoTrans {
		br, bc = n, k
	}
	switch {
	case m < 0 || n < 0 || k < 0:
		panic("blas: negative dimension")
	case lda < max(1, ac) || ldb < max(1, bc) || ldc < max(1, n):
		panic("blas: bad leading dimension")
	case m == 0 || n == 0:
	case k > 0 && (la < (ar-1)*lda+ac || lb < (br-1)*ldb+bc):
		panic("blas: insufficient length of a or b")
	case lc < (m-1)*ldc+n:
		panic("blas: insufficient length of c")
	}
}

// checkGemv is checkGemm for a row-major m×n gemv.
func checkGemv(tA blas.Transpose, m, n, la, lda, lx, incX, ly, incY int) {
	lenX, lenY := n, m
	if tA != blas.NoTrans {
		lenX, lenY = m, n
	}
	switch {
	case m < 0 || n < 0:
		panic("blas: negative dimension")
	case lda < max(1, n):
		panic("blas: bad leading dimension")
	case incX == 0 || incY == 0:
		panic("blas: zero increment")
	case m == 0 || n == 0:
	case la < (m-1)*lda+n:
		panic("blas: insufficient length of a")
	case lx < 1+(lenX-1)*blasAbs(incX) || ly < 1+(lenY-1)*blasAbs(incY):
		panic("blas: insufficient length of x or y")
	}
}

func blasAbs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
