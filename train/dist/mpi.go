//go:build linux || darwin || freebsd

package dist

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/ebitengine/purego"
)

// libNames are tried in order when no library is named: Open MPI's soname
// (Debian's libopenmpi3) and the development symlink.
var libNames = []string{"libmpi.so.40", "libmpi.so"}

// Open MPI constants (mpi.h).
const (
	mpiThreadSerialized = 2
	mpiInPlace          = 1 // MPI_IN_PLACE is (void *) 1
	mpiSuccess          = 0
)

// maxCount bounds one call's element count (MPI counts are C ints).
const maxCount = 1 << 30

// loaded records that this process opened an MPI library (MPILoaded); it is
// written once, before any rank is returned.
var loaded atomic.Bool

// MPILoaded reports whether this process has loaded an MPI library.
func MPILoaded() bool { return loaded.Load() }

// mpiComm is MPI_COMM_WORLD through a run-time loaded Open MPI.
type mpiComm struct {
	mu         sync.Mutex // MPI_THREAD_SERIALIZED: one call at a time
	rank, size int
	closed     bool
	limit      int // the most bytes Gather and Bcast move (maxCount; tests lower it)

	world, float, double, byteT, intT, sum uintptr

	initThread func(argc, argv unsafe.Pointer, required int32, provided *int32) int32
	commRank   func(comm uintptr, rank *int32) int32
	commSize   func(comm uintptr, size *int32) int32
	allreduce  func(send uintptr, recv unsafe.Pointer, count int32, dt, op, comm uintptr) int32
	barrier    func(comm uintptr) int32
	bcast      func(buf unsafe.Pointer, count int32, dt uintptr, root int32, comm uintptr) int32
	gather     func(send unsafe.Pointer, scount int32, sdt uintptr, recv unsafe.Pointer, rcount int32, rdt uintptr, root int32, comm uintptr) int32
	gatherv    func(send unsafe.Pointer, scount int32, sdt uintptr, recv unsafe.Pointer, rcounts, displs unsafe.Pointer, rdt uintptr, root int32, comm uintptr) int32
	abort      func(comm uintptr, code int32) int32
	finalize   func() int32
}

// OpenMPI loads libmpi (lib, or libmpi.so.40 then libmpi.so when lib is
// empty), initialises MPI with MPI_THREAD_SERIALIZED and returns
// MPI_COMM_WORLD. Open MPI's handles are addresses of global symbols
// (ompi_mpi_comm_world, ompi_mpi_float, ...), which is how this finds them;
// an MPI whose handles are integer constants (MPICH) is not supported.
func OpenMPI(lib string) (Comm, error) {
	names := libNames
	if lib != "" {
		names = []string{lib}
	}
	var h uintptr
	var errs []error
	for _, n := range names {
		var err error
		// RTLD_GLOBAL: Open MPI dlopens its components, which need
		// libmpi's symbols.
		if h, err = purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
			break
		}
		errs = append(errs, err)
	}
	if h != 0 {
		loaded.Store(true)
	}
	if h == 0 {
		return nil, fmt.Errorf("loading the MPI library (install Open MPI: apt-get install openmpi-bin): %w", errors.Join(errs...))
	}
	c := &mpiComm{limit: maxCount}
	for _, s := range []struct {
		name string
		dst  *uintptr
	}{
		{"ompi_mpi_comm_world", &c.world}, {"ompi_mpi_float", &c.float}, {"ompi_mpi_double", &c.double},
		{"ompi_mpi_byte", &c.byteT}, {"ompi_mpi_int", &c.intT}, {"ompi_mpi_op_sum", &c.sum},
	} {
		p, err := purego.Dlsym(h, s.name)
		if err != nil {
			return nil, fmt.Errorf("the MPI library is not Open MPI (no %s): %w", s.name, err)
		}
		*s.dst = p
	}
	for _, f := range []struct {
		name string
		fn   any
	}{
		{"MPI_Init_thread", &c.initThread}, {"MPI_Comm_rank", &c.commRank}, {"MPI_Comm_size", &c.commSize},
		{"MPI_Allreduce", &c.allreduce}, {"MPI_Barrier", &c.barrier}, {"MPI_Bcast", &c.bcast},
		{"MPI_Gather", &c.gather}, {"MPI_Gatherv", &c.gatherv}, {"MPI_Abort", &c.abort}, {"MPI_Finalize", &c.finalize},
	} {
		if _, err := purego.Dlsym(h, f.name); err != nil {
			return nil, fmt.Errorf("MPI library: %w", err)
		}
		purego.RegisterLibFunc(f.fn, h, f.name)
	}
	var provided int32
	if rc := c.initThread(nil, nil, mpiThreadSerialized, &provided); rc != mpiSuccess {
		return nil, fmt.Errorf("MPI_Init_thread failed (error %d)", rc)
	}
	if provided < mpiThreadSerialized {
		c.finalize()
		return nil, fmt.Errorf("MPI provides thread level %d, need MPI_THREAD_SERIALIZED", provided)
	}
	var r, n int32
	if rc := c.commRank(c.world, &r); rc != mpiSuccess {
		return nil, fmt.Errorf("MPI_Comm_rank failed (error %d)", rc)
	}
	if rc := c.commSize(c.world, &n); rc != mpiSuccess {
		return nil, fmt.Errorf("MPI_Comm_size failed (error %d)", rc)
	}
	c.rank, c.size = int(r), int(n)
	return c, nil
}

func (c *mpiComm) Rank() int { return c.rank }
func (c *mpiComm) Size() int { return c.size }

func (c *mpiComm) check(op string, rc int32) error {
	if rc != mpiSuccess {
		return fmt.Errorf("rank %d: %s failed (MPI error %d)", c.rank, op, rc)
	}
	return nil
}

func (c *mpiComm) AllReduceSum(buf []float32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(buf) > 0 {
		n := min(len(buf), maxCount)
		rc := c.allreduce(mpiInPlace, unsafe.Pointer(&buf[0]), int32(n), c.float, c.sum, c.world)
		runtime.KeepAlive(buf)
		if err := c.check("MPI_Allreduce", rc); err != nil {
			return err
		}
		buf = buf[n:]
	}
	return nil
}

func (c *mpiComm) AllReduceSum64(buf []float64) error {
	if len(buf) == 0 {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	rc := c.allreduce(mpiInPlace, unsafe.Pointer(&buf[0]), int32(len(buf)), c.double, c.sum, c.world)
	runtime.KeepAlive(buf)
	return c.check("MPI_Allreduce", rc)
}

func (c *mpiComm) Barrier() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.check("MPI_Barrier", c.barrier(c.world))
}

// Gather collects every rank's bytes at rank 0 (nil elsewhere). A size
// failure is decided at rank 0 and broadcast, so every rank returns the same
// error instead of one rank returning while the others wait in MPI_Gatherv.
func (c *mpiComm) Gather(b []byte) ([][]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int32(-1) // -1: this rank's buffer is too large
	if len(b) <= c.limit {
		n = int32(len(b))
	}
	var counts []int32
	if c.rank == 0 {
		counts = make([]int32, c.size)
	}
	var cp unsafe.Pointer
	if counts != nil {
		cp = unsafe.Pointer(&counts[0])
	}
	if err := c.check("MPI_Gather", c.gather(unsafe.Pointer(&n), 1, c.intT, cp, 1, c.intT, 0, c.world)); err != nil {
		return nil, err
	}
	// status: -1 ok, r < size: rank r's buffer is too large, size: the total is.
	status := int32(-1)
	var all []byte
	var displs []int32
	if c.rank == 0 {
		displs = make([]int32, c.size)
		total := 0
		for i, k := range counts {
			if k < 0 {
				status = int32(i)
				break
			}
			displs[i] = int32(total)
			total += int(k)
		}
		if status < 0 && total > c.limit {
			status = int32(c.size)
		}
		if status < 0 {
			all = make([]byte, total+1) // +1: a valid address when every rank sends nothing
		}
	}
	if err := c.check("MPI_Bcast", c.bcast(unsafe.Pointer(&status), 1, c.intT, 0, c.world)); err != nil {
		return nil, err
	}
	switch {
	case status == int32(c.size):
		return nil, fmt.Errorf("rank %d: gather failed: the %d ranks' buffers together exceed %d bytes", c.rank, c.size, c.limit)
	case status >= 0:
		return nil, fmt.Errorf("rank %d: gather failed: rank %d's buffer exceeds %d bytes", c.rank, status, c.limit)
	}
	var sp, rp, dp unsafe.Pointer
	if len(b) > 0 {
		sp = unsafe.Pointer(&b[0])
	}
	if c.rank == 0 {
		rp, cp, dp = unsafe.Pointer(&all[0]), unsafe.Pointer(&counts[0]), unsafe.Pointer(&displs[0])
	}
	rc := c.gatherv(sp, n, c.byteT, rp, cp, dp, c.byteT, 0, c.world)
	runtime.KeepAlive(b)
	runtime.KeepAlive(all)
	runtime.KeepAlive(counts)
	runtime.KeepAlive(displs)
	if err := c.check("MPI_Gatherv", rc); err != nil {
		return nil, err
	}
	if c.rank != 0 {
		return nil, nil
	}
	out := make([][]byte, c.size)
	for i := range out {
		out[i] = all[displs[i] : displs[i]+counts[i] : displs[i]+counts[i]]
	}
	return out, nil
}

// Bcast sends rank 0's bytes to every rank (other ranks' b is ignored). Only
// rank 0's size matters; when it is too large, rank 0 broadcasts -1 and every
// rank returns the error.
func (c *mpiComm) Bcast(b []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := int32(0)
	if c.rank == 0 {
		n = -1
		if len(b) <= c.limit {
			n = int32(len(b))
		}
	}
	if err := c.check("MPI_Bcast", c.bcast(unsafe.Pointer(&n), 1, c.intT, 0, c.world)); err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, fmt.Errorf("rank %d: broadcast failed: rank 0's buffer exceeds %d bytes", c.rank, c.limit)
	}
	if c.rank != 0 {
		b = make([]byte, n)
	}
	if n == 0 {
		return b, nil
	}
	rc := c.bcast(unsafe.Pointer(&b[0]), n, c.byteT, 0, c.world)
	runtime.KeepAlive(b)
	return b, c.check("MPI_Bcast", rc)
}

func (c *mpiComm) Abort(code int) {
	c.abort(c.world, int32(code)) // does not return under Open MPI
}

func (c *mpiComm) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	return c.check("MPI_Finalize", c.finalize())
}
