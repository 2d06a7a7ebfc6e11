package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gitcap/gitcap/train/dist"
)

// mpiCommand wraps a command that runs data-parallel under an MPI launcher
// (mpirun, srun --mpi=pmix): it joins the job, gives the command the
// communicator in its context and rank 0 alone its standard output, and when
// the command fails on any rank it names the rank and stops the whole job
// (MPI_Abort), so that the other ranks never wait forever. Without an MPI
// launch it runs the command as it is, and no MPI library is loaded.
func mpiCommand(name string, run func(ctx context.Context, args []string, stdout, stderr io.Writer) error) func(context.Context, []string, io.Writer, io.Writer) error {
	return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
		if ok, _ := dist.Launched(os.Getenv); !ok {
			return run(ctx, args, stdout, stderr)
		}
		c, err := dist.FromEnv()
		if err != nil {
			return err
		}
		if c.Rank() != 0 {
			stdout = io.Discard
		} else {
			// mpirun gives ranks a pseudo-terminal even when its own output
			// goes to a file: hide it, so that progress is logged as lines
			// rather than drawn as a bar.
			stdout = struct{ io.Writer }{stdout}
		}
		err = run(dist.NewContext(ctx, c), args, stdout, stderr)
		var stopped exitError
		if errors.As(err, &stopped) && c.Size() > 1 {
			// A stop every rank agreed on (SIGINT/SIGTERM: the ranks stop
			// after the same step): not a failure. The other ranks wait
			// here while rank 0 saves its checkpoint, then all exit with
			// the signal's status.
			if berr := c.Barrier(); berr != nil {
				fmt.Fprintf(stderr, "gitcap %s: rank %d of %d: %v\n", name, c.Rank(), c.Size(), berr)
				c.Abort(stopped.code)
			}
		} else if err != nil && c.Size() > 1 {
			fmt.Fprintf(stderr, "gitcap %s: rank %d of %d failed: %v\ngitcap %s: stopping all %d ranks (MPI_Abort)\n", name, c.Rank(), c.Size(), err, name, c.Size())
			c.Abort(1)
		}
		if cerr := c.Close(); err == nil {
			err = cerr
		}
		return err
	}
}
