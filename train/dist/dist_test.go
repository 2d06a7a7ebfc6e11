package dist_test

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gitcap/gitcap/train/dist"
	"github.com/gitcap/gitcap/train/dist/disttest"
)

// helperEnv makes the test binary act as an MPI program (TestMPIHelper).
const helperEnv = "GITCAP_DIST_HELPER"

func TestLaunchedReadsLauncherVariables(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{nil, false},
		{map[string]string{"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}, false},
		{map[string]string{"OMPI_COMM_WORLD_SIZE": "2"}, true},
		{map[string]string{"PMI_SIZE": "2"}, true},
		{map[string]string{"PMIX_RANK": "0"}, true},
	} {
		got, _ := dist.Launched(func(k string) string { return tc.env[k] })
		if got != tc.want {
			t.Errorf("Launched(%v) = %v, want %v", tc.env, got, tc.want)
		}
	}
}

func TestFromEnvWithoutLaunchIsSingle(t *testing.T) {
	for _, v := range []string{"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "PMI_RANK"} {
		t.Setenv(v, "")
	}
	c, err := dist.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(dist.Single); !ok || c.Size() != 1 || c.Rank() != 0 {
		t.Fatalf("FromEnv without a launch = %#v, want Single", c)
	}
	if got := dist.FromContext(context.Background()); got.Size() != 1 {
		t.Fatalf("FromContext of a bare context has size %d", got.Size())
	}
	if dist.MPILoaded() {
		t.Fatal("the MPI library was loaded by a process that was not launched by MPI")
	}
}

func TestShardSplitsEvenly(t *testing.T) {
	for _, tc := range []struct{ n, size int }{{10, 3}, {1, 2}, {0, 2}, {7, 7}, {5, 1}} {
		next := 0
		for r := 0; r < tc.size; r++ {
			lo, hi := dist.Shard(tc.n, r, tc.size)
			if lo != next || hi < lo || hi-lo > tc.n/tc.size+1 {
				t.Fatalf("Shard(%d, %d, %d) = [%d, %d)", tc.n, r, tc.size, lo, hi)
			}
			next = hi
		}
		if next != tc.n {
			t.Fatalf("Shard(%d, *, %d) covers %d items", tc.n, tc.size, next)
		}
	}
}

func TestOpenMPIWithoutLibraryIsAClearError(t *testing.T) {
	_, err := dist.OpenMPI("/nonexistent/libmpi.so.40")
	if err == nil || !strings.Contains(err.Error(), "openmpi-bin") {
		t.Fatalf("OpenMPI on a missing library: %v, want an error saying what to install", err)
	}
}

// TestMPICollectivesAcrossTwoRanks runs this test binary as 2 MPI ranks
// (TestMPIHelper) and checks every collective.
func TestMPICollectivesAcrossTwoRanks(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	out, err := runHelper(t, mpirun, "collectives", 60*time.Second)
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	for r := 0; r < 2; r++ {
		if want := fmt.Sprintf("rank %d of 2: ok", r); !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestMPIRankDeathStopsTheJob: rank 1 is killed (SIGKILL) while rank 0
// waits in a barrier; mpirun must end the job quickly, naming rank 1.
func TestMPIRankDeathStopsTheJob(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	start := time.Now()
	out, err := runHelper(t, mpirun, "die", 60*time.Second)
	if err == nil || !strings.Contains(out, "rank 1") {
		t.Fatalf("mpirun after rank 1 was killed: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("the job took %s to stop", d)
	}
}

// TestMPIKeepsGoSignalHandlers: a nil dereference in a rank is still a Go
// panic that recover catches (Open MPI installs SIGSEGV handlers of its own
// unless told not to).
func TestMPIKeepsGoSignalHandlers(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	out, err := runHelper(t, mpirun, "nilderef", 60*time.Second)
	if err != nil || strings.Count(out, "recovered") != 2 {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
}

// TestMPIAbortStopsTheJob has rank 1 abort while rank 0 waits in a
// collective: the job must end quickly, non-zero, naming the rank.
func TestMPIAbortStopsTheJob(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	start := time.Now()
	out, err := runHelper(t, mpirun, "abort", 60*time.Second)
	if err == nil {
		t.Fatalf("the job exited 0 after rank 1 aborted:\n%s", out)
	}
	if !strings.Contains(out, "rank 1") {
		t.Fatalf("the output does not name rank 1:\n%s", out)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("the job took %s to stop", d)
	}
}

// TestMPISizeFailuresAreCollective: a Gather or Bcast over the byte limit
// fails on every rank with the same cause (not on one rank while the others
// wait in the collective), and the communicator still works afterwards.
func TestMPISizeFailuresAreCollective(t *testing.T) {
	mpirun := disttest.MPIRun(t)
	out, err := runHelper(t, mpirun, "limits", 60*time.Second)
	if err != nil {
		t.Fatalf("mpirun: %v\n%s", err, out)
	}
	for r := 0; r < 2; r++ {
		if want := fmt.Sprintf("rank %d of 2: limits ok", r); !strings.Contains(out, want) {
			t.Fatalf("output lacks %q:\n%s", want, out)
		}
	}
}

func runHelper(t *testing.T, mpirun, mode string, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpirun, disttest.Args(2, os.Args[0], "-test.run=^TestMPIHelper$", "-test.v")...)
	cmd.Env = disttest.Env(helperEnv + "=" + mode)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mpirun did not finish in %s (a hang):\n%s", timeout, buf.String())
	}
	return buf.String(), err
}

// TestMPIHelper is the MPI program of the tests above; it does nothing
// unless started by them.
func TestMPIHelper(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper process")
	}
	c, err := dist.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	r, n := c.Rank(), c.Size()
	if n != 2 {
		t.Fatalf("size %d, want 2", n)
	}
	switch mode {
	case "die":
		if r == 1 {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		c.Barrier()
		t.Fatal("rank 0 passed a barrier rank 1 never reached")
	case "nilderef":
		// Go turns a nil dereference into a panic through its SIGSEGV
		// handler; MPI must not have replaced it.
		var p *int
		func() {
			defer func() {
				if recover() != nil {
					fmt.Printf("rank %d: recovered\n", r)
				}
			}()
			fmt.Println(*p)
		}()
		c.Close()
	case "abort":
		if r == 1 {
			fmt.Printf("rank 1: failing on purpose\n")
			c.Abort(3)
		}
		c.Barrier() // rank 0 waits here forever unless the abort stops it
		t.Fatal("rank 0 passed a barrier rank 1 never reached")
	case "limits":
		dist.SetByteLimit(c, 8)
		expectErr := func(what, want string, err error) {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("rank %d: %s: error %v, want one containing %q", r, what, err, want)
			}
		}
		big := []byte("0123456789")
		one := big[r*9 : r*9+1]
		mine := one
		if r == 1 {
			mine = big
		}
		_, err := c.Gather(mine)
		expectErr("Gather of 10 bytes at rank 1", "rank 1's buffer exceeds 8 bytes", err)
		_, err = c.Gather(big[:5])
		expectErr("Gather of 2×5 bytes", "together exceed 8 bytes", err)
		_, err = c.Bcast(mine) // rank 0 sends 1 byte; rank 1's 10 are ignored
		if err != nil {
			t.Fatalf("rank %d: Bcast of 1 byte: %v", r, err)
		}
		_, err = c.Bcast(big)
		expectErr("Bcast of 10 bytes", "rank 0's buffer exceeds 8 bytes", err)
		g, err := c.Gather(one)
		if err != nil || (r == 0 && (len(g) != 2 || string(g[0]) != "0" || string(g[1]) != "9")) {
			t.Fatalf("rank %d: Gather after the failures = %q, %v", r, g, err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("rank %d of %d: limits ok\n", r, n)
	case "collectives":
		// Sum across a chunked buffer of odd length.
		buf := make([]float32, 1001)
		for i := range buf {
			buf[i] = float32(i*(r+1)) + 0.5
		}
		if err := c.AllReduceSum(buf); err != nil {
			t.Fatal(err)
		}
		for i, v := range buf {
			if want := float32(i*3) + 1; v != want {
				t.Fatalf("rank %d: sum[%d] = %v, want %v", r, i, v, want)
			}
		}
		d := []float64{float64(r), math.Pi}
		if err := c.AllReduceSum64(d); err != nil {
			t.Fatal(err)
		}
		if d[0] != 1 || d[1] != 2*math.Pi {
			t.Fatalf("rank %d: AllReduceSum64 = %v", r, d)
		}
		g, err := c.Gather([]byte(strings.Repeat("x", r*3) + fmt.Sprint(r)))
		if err != nil {
			t.Fatal(err)
		}
		if r == 0 && (len(g) != 2 || string(g[0]) != "0" || string(g[1]) != "xxx1") {
			t.Fatalf("Gather at rank 0 = %q", g)
		}
		if r != 0 && g != nil {
			t.Fatalf("Gather at rank %d = %q, want nil", r, g)
		}
		msg := []byte("from rank 0")
		if r != 0 {
			msg = nil
		}
		b, err := c.Bcast(msg)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != "from rank 0" {
			t.Fatalf("rank %d: Bcast = %q", r, b)
		}
		if err := c.Barrier(); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("rank %d of %d: ok\n", r, n)
	}
}
