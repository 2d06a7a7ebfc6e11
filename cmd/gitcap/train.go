package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gitcap/gitcap/gitmodel/hub"
	"github.com/gitcap/gitcap/train"
)

// runTrain implements "gitcap train":
//
//	gitcap train --config configs/FILE.yaml [--field value ...] [--resume DIR]
//
// Every configuration field is a flag (the YAML key in kebab-case, see
// train.Config) that overrides the file. --resume DIR continues the run
// whose checkpoint is DIR (normally OUT/checkpoint-last) exactly; without
// other flags it reuses the run's saved configuration (OUT/config.yaml),
// and the run directory is DIR's parent, wherever the run has been copied.
//
// A run stopped by SIGINT or SIGTERM saves a checkpoint and exits 130 or
// 143; only a run that reached its last step exits 0.
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("train", stderr)
	fs.oldSnake = true // train's flags were snake_case before 0.2
	resume := fs.String("resume", "", "continue the run from this checkpoint `directory` (RUN/checkpoint-last); flags given with it adjust the run's saved config.yaml")
	flags := train.NewFlags(fs.FlagSet)
	fs.Usage = func() {
		fs.header("gitcap train --config FILE.yaml [--field value ...] [--resume DIR]",
			"Fine-tunes GIT (or trains it from a model preset). Every YAML key is also a flag,\n"+
				"in kebab-case (batch_size: --batch-size); flags override the file.\n"+
				"--resume DIR continues from a checkpoint directory written by an earlier run;\n"+
				"a larger --steps or --epochs extends it (see README, \"Checkpoints\").\n"+
				"Ctrl-C (SIGINT) or SIGTERM saves a checkpoint and exits 130 or 143.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (the configuration is given with --config)", fs.Arg(0))}
	}
	var cfg *train.Config
	given := 0
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "resume" {
			given++
		}
	})
	if *resume != "" {
		if st, err := os.Stat(*resume); err != nil {
			return fmt.Errorf("--resume: %w", err)
		} else if !st.IsDir() {
			return fmt.Errorf("--resume %s: not a checkpoint directory", *resume)
		}
	}
	if *resume == "" || given > 0 {
		def := ""
		if *resume != "" {
			def = filepath.Join(filepath.Dir(filepath.Clean(*resume)), train.ConfigFile)
		}
		c, err := flags.Config(fs.FlagSet, def)
		if err != nil {
			return usageErr(err)
		}
		cfg = c
	}
	if cfg != nil && cfg.Model != "" {
		if err := checkModelArg(cfg.Model); err != nil {
			return err
		}
	}
	var sum train.Summary
	var err error
	if *resume != "" {
		sum, err = train.Resume(ctx, cfg, *resume, stdout)
	} else {
		sum, err = train.Run(ctx, cfg, stdout)
	}
	if err != nil {
		if cfg != nil && cfg.Model != "" {
			return explainHubError(cfg.Model, hub.OptionsFromEnv(), err)
		}
		return err
	}
	if sum.Interrupted {
		fmt.Fprintf(stdout, "stopped at step %d/%d; resume with: gitcap train --resume %s\n", sum.Steps, sum.TotalSteps, sum.LastDir)
		code, why := interruptCode(ctx)
		return exitError{code: code, err: fmt.Errorf("%s at step %d of %d; checkpoint saved in %s", why, sum.Steps, sum.TotalSteps, sum.LastDir)}
	}
	fmt.Fprintf(stdout, "done: %d steps in %s, last train loss %.4f\n", sum.Steps, sum.Elapsed.Round(1e9), sum.LastLoss)
	printRunFiles(stdout, sum)
	if sum.Corrupt > 0 {
		fmt.Fprintf(stderr, "gitcap train: %d unreadable images were skipped\n", sum.Corrupt)
	}
	return nil
}

// printRunFiles lists where a run's outputs are.
func printRunFiles(w io.Writer, sum train.Summary) {
	if sum.BestDir != "" {
		fmt.Fprintf(w, "best checkpoint (%s %.4f): %s\n", sum.BestMetric, sum.BestScore, sum.BestDir)
	}
	fmt.Fprintf(w, "last checkpoint: %s\n", sum.LastDir)
	dir := filepath.Dir(sum.LastDir)
	fmt.Fprintf(w, "metrics:         %s\n", filepath.Join(dir, train.MetricsFile))
	fmt.Fprintf(w, "training curve:  %s\n", filepath.Join(dir, train.PlotFile))
}
