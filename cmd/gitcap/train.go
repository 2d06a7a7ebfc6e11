package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitcap/gitcap/train"
)

// runTrain implements "gitcap train":
//
//	gitcap train --config configs/FILE.yaml [--field value ...] [--resume DIR]
//
// Every configuration field is a flag (see train.Config) that overrides the
// file. --resume DIR continues the run whose checkpoint is DIR (normally
// OUT/checkpoint-last) exactly; without other flags it reuses the run's
// saved configuration (OUT/config.yaml).
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	resume, rest, err := splitResume(args)
	if err != nil {
		return usageError{err}
	}
	if resume != "" && len(rest) > 0 && !hasFlag(rest, "config") {
		// Flags given with --resume adjust the run's saved configuration.
		rest = append([]string{"--config", filepath.Join(filepath.Dir(filepath.Clean(resume)), train.ConfigFile)}, rest...)
	}
	var cfg *train.Config
	if resume == "" || len(rest) > 0 {
		fs := newFlagSet("train", stderr)
		fs.Usage = func() {
			fmt.Fprintf(fs.Output(), "Usage: gitcap train --config FILE.yaml [--field value ...] [--resume DIR]\n\n"+
				"Fine-tunes GIT (or trains it from a model preset). Flags override the file.\n"+
				"--resume DIR continues from a checkpoint directory written by an earlier run.\n\nFlags:\n")
			fs.PrintDefaults()
		}
		c, err := train.ParseArgs(fs, rest)
		if err != nil {
			return usageErr(err)
		}
		cfg = c
	}
	var sum train.Summary
	if resume != "" {
		sum, err = train.Resume(ctx, cfg, resume, stdout)
	} else {
		sum, err = train.Run(ctx, cfg, stdout)
	}
	if err != nil {
		return err
	}
	if sum.Interrupted {
		fmt.Fprintf(stdout, "stopped at step %d/%d; resume with: gitcap train --resume %s\n", sum.Steps, sum.TotalSteps, sum.LastDir)
		return nil
	}
	fmt.Fprintf(stdout, "done: %d steps in %s, last train loss %.4f\n", sum.Steps, sum.Elapsed.Round(1e9), sum.LastLoss)
	if sum.BestDir != "" {
		fmt.Fprintf(stdout, "best %s %.4f: %s\n", sum.BestMetric, sum.BestScore, sum.BestDir)
	}
	fmt.Fprintf(stdout, "last checkpoint: %s\n", sum.LastDir)
	if sum.Corrupt > 0 {
		fmt.Fprintf(stderr, "gitcap train: %d unreadable images were skipped\n", sum.Corrupt)
	}
	return nil
}

// splitResume takes --resume DIR (or --resume=DIR, one or two dashes) out of
// args, since the configuration's flag set does not know it.
func splitResume(args []string) (dir string, rest []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		name := strings.TrimLeft(a, "-")
		if a == name || (name != "resume" && !strings.HasPrefix(name, "resume=")) {
			rest = append(rest, a)
			continue
		}
		if v, ok := strings.CutPrefix(name, "resume="); ok {
			dir = v
		} else if i+1 < len(args) {
			dir = args[i+1]
			i++
		} else {
			return "", nil, errors.New("--resume needs a checkpoint directory")
		}
		if dir == "" {
			return "", nil, errors.New("--resume needs a checkpoint directory")
		}
		if _, err := os.Stat(dir); err != nil {
			return "", nil, fmt.Errorf("--resume: %w", err)
		}
	}
	return dir, rest, nil
}

// hasFlag reports whether args set --name (one or two dashes, with or
// without =value).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
