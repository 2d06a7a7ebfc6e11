package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/train"
	"github.com/gitcap/gitcap/train/dist"
)

// benchAllReduce implements "gitcap bench --only allreduce", run under
// mpirun: it times the gradient all-reduce of one data-parallel step of a
// git-base-sized model (every parameter's float32 gradient, bucketed as
// training does) between the ranks. It reports handled = false when args do
// not ask for it, so that runBench measures its own workloads.
func benchAllReduce(ctx context.Context, args []string, stdout, stderr io.Writer) (handled bool, err error) {
	if !slices.Contains(args, "--only=allreduce") && !containsPair(args, "--only", "allreduce") &&
		!slices.Contains(args, "-only=allreduce") && !containsPair(args, "-only", "allreduce") {
		return false, nil
	}
	fs := newFlagSet("bench", stderr)
	fs.String("only", "allreduce", "allreduce: time the gradient all-reduce between MPI ranks")
	runs := fs.Int("runs", 3, "timed runs (after one warm-up); the median is reported")
	elems := fs.Int("elements", 0, "float32 gradients to reduce (default: git-base's parameter count)")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := fs.Parse(args); err != nil {
		return true, usageErr(err)
	}
	if *runs < 1 || *elems < 0 {
		return true, usageError{errors.New("--runs must be at least 1 and --elements not negative")}
	}
	if ok, _ := dist.Launched(os.Getenv); !ok {
		return true, errors.New("bench --only allreduce measures MPI: run it as mpirun -np 2 gitcap bench --only allreduce")
	}
	c, err := dist.FromEnv()
	if err != nil {
		return true, err
	}
	defer c.Close()
	n := *elems
	if n == 0 {
		m, err := gitmodel.New(gitmodel.DefaultConfig()) // for its parameter count
		if err != nil {
			c.Abort(1)
		}
		n = m.Params.Count()
	}
	buf := make([]float32, n)
	for i := range buf {
		buf[i] = float32(i%7) * 1e-3
	}
	var times []float64
	for r := 0; r <= *runs; r++ {
		if err := ctx.Err(); err != nil {
			c.Abort(1)
		}
		if err := c.Barrier(); err != nil {
			return true, err
		}
		start := time.Now()
		if err := train.AllReduceBuckets(c, buf); err != nil {
			fmt.Fprintf(stderr, "gitcap bench: rank %d: %v\n", c.Rank(), err)
			c.Abort(1)
		}
		if r > 0 { // the first run is a warm-up
			times = append(times, time.Since(start).Seconds())
		}
	}
	if c.Rank() != 0 {
		return true, nil
	}
	sort.Float64s(times)
	med := times[len(times)/2]
	bytes := 4 * float64(n)
	size := c.Size()
	// Bus bandwidth: what each link carries in a ring all-reduce,
	// 2(N-1)/N of the buffer, per second.
	bus := 2 * float64(size-1) / float64(size) * bytes / med / 1e9
	row := benchRow{Name: fmt.Sprintf("allreduce %d ranks %.1fM float32", size, float64(n)/1e6), Seconds: med,
		Throughput: bus, Unit: "GB/s", Runs: *runs}
	if *asJSON {
		return true, json.NewEncoder(stdout).Encode([]benchRow{row})
	}
	fmt.Fprintf(stdout, "%-40s %9s %14s\n", "workload", "median s", "bus bandwidth")
	fmt.Fprintf(stdout, "%-40s %9.3f %8.2f GB/s\n", row.Name, row.Seconds, row.Throughput)
	fmt.Fprintf(stdout, "%.0f MB per rank in %d MPI_Allreduce calls of up to %d MB; medians of %d runs after a warm-up\n",
		bytes/1e6, (n+train.AllReduceBucketElems-1)/train.AllReduceBucketElems, 4*train.AllReduceBucketElems>>20, *runs)
	return true, nil
}

// containsPair reports whether args hold name followed by value.
func containsPair(args []string, name, value string) bool {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name && strings.TrimSpace(args[i+1]) == value {
			return true
		}
	}
	return false
}
