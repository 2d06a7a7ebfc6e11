// Package dist is the communication layer of data-parallel training and
// sharded evaluation: a Comm is a group of processes (ranks) that can sum
// float buffers, wait for each other, gather bytes at rank 0 and abort the
// whole job.
//
// Two implementations exist. Single is the group of one process: every call
// is a no-op, and it is what a process not started by an MPI launcher gets.
// The MPI implementation (Open MPI, or any MPI whose handles are global
// symbols like Open MPI's) loads libmpi at run time with purego, so the
// binary neither links against MPI nor needs it installed: the library is
// opened only when the environment shows an MPI launch (see Launched).
//
// The communicator of a command travels in its context (NewContext,
// FromContext), so that the training and evaluation entry points keep their
// signatures and run single-process when no communicator is set.
package dist

import (
	"context"
	"fmt"
	"os"
)

// Comm is a group of cooperating processes. All ranks must make the same
// collective calls (AllReduce*, Barrier, Gather, Bcast) in the same order.
type Comm interface {
	Rank() int // this process's index, 0 <= Rank < Size
	Size() int // number of processes
	// AllReduceSum replaces buf on every rank by the element-wise sum of
	// buf over all ranks (float32).
	AllReduceSum(buf []float32) error
	// AllReduceSum64 is AllReduceSum for float64 (scalars: loss sums,
	// counts, flags).
	AllReduceSum64(buf []float64) error
	// Barrier returns once every rank has called it.
	Barrier() error
	// Gather returns, on rank 0, every rank's b in rank order; on other
	// ranks it returns nil.
	Gather(b []byte) ([][]byte, error)
	// Bcast returns rank 0's b on every rank (b is ignored elsewhere).
	Bcast(b []byte) ([]byte, error)
	// Abort stops every process of the job with the exit code (MPI_Abort);
	// it does not return for MPI.
	Abort(code int)
	// Close ends the process's part in the group (MPI_Finalize).
	Close() error
}

// Single is the one-process group.
type Single struct{}

func (Single) Rank() int                         { return 0 }
func (Single) Size() int                         { return 1 }
func (Single) AllReduceSum([]float32) error      { return nil }
func (Single) AllReduceSum64([]float64) error    { return nil }
func (Single) Barrier() error                    { return nil }
func (Single) Gather(b []byte) ([][]byte, error) { return [][]byte{b}, nil }
func (Single) Bcast(b []byte) ([]byte, error)    { return b, nil }
func (Single) Abort(code int)                    { os.Exit(code) }
func (Single) Close() error                      { return nil }

// launchVars are set by MPI launchers in each process they start, with the
// job size (or, for PMIx, the rank): Open MPI's mpirun, PMI-1/2 (MPICH
// hydra, Slurm's srun --mpi=pmi2) and PMIx (srun --mpi=pmix, prterun).
var launchVars = []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"}

// Launched reports whether getenv shows that the process was started by an
// MPI launcher, and names the variable that shows it. A plain Slurm job step
// (SLURM_PROCID without PMI) is not an MPI launch: run srun --mpi=pmix.
func Launched(getenv func(string) string) (bool, string) {
	for _, v := range launchVars {
		if getenv(v) != "" {
			return true, v
		}
	}
	return false, ""
}

// FromEnv returns Single when the process was not started by an MPI
// launcher, and otherwise initialises MPI (loading libmpi; GITCAP_LIBMPI
// names the library file to use instead of libmpi.so.40 / libmpi.so).
func FromEnv() (Comm, error) {
	ok, v := Launched(os.Getenv)
	if !ok {
		return Single{}, nil
	}
	c, err := OpenMPI(os.Getenv("GITCAP_LIBMPI"))
	if err != nil {
		return nil, fmt.Errorf("started by an MPI launcher (%s=%s) but MPI could not be initialised: %w", v, os.Getenv(v), err)
	}
	return c, nil
}

type ctxKey struct{}

// NewContext returns a context carrying c.
func NewContext(ctx context.Context, c Comm) context.Context {
	return context.WithValue(ctx, ctxKey{}, c)
}

// FromContext returns the communicator of ctx, or Single if none was set.
func FromContext(ctx context.Context) Comm {
	if c, ok := ctx.Value(ctxKey{}).(Comm); ok && c != nil {
		return c
	}
	return Single{}
}

// Shard returns the half-open range [lo, hi) of n items that rank takes
// when they are split into size contiguous, nearly equal parts.
func Shard(n, rank, size int) (lo, hi int) {
	return n * rank / size, n * (rank + 1) / size
}
