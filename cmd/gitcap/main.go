// Command gitcap captions images with GIT (Generative Image-to-text
// Transformer), fine-tunes it and evaluates it, as a gorgonia graph in Go.
//
// Usage:
//
//	gitcap <command> [flags]
//
// Run "gitcap help" for the list of commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"sort"
	"syscall"
)

// command is one gitcap sub-command.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"bench":   {"measure speed on a git-base-shaped model (or --model) against this machine's sgemm peak", runBench},
		"caption": {"caption images (or video samples) with a GIT checkpoint", runCaption},
		"demo":    {"train a small GIT on generated data from scratch, caption and score it (no downloads)", runDemo},
		"train":   {"fine-tune (or train from a config) with the language-modelling loss", runTrain},
		"eval":    {"caption a COCO-style set, write a COCO results file and score it (CIDEr-D, BLEU, ROUGE-L)", runEval},
		"forward": {"run one forward pass and write activations, logits, loss (and gradients) to safetensors", runForward},
		"score":   {"score a COCO results file against COCO caption annotations (CIDEr-D, BLEU, ROUGE-L)", runScore},
		"synth":   {"write the synthetic shapes captioning data set", runSynth},
		"version": {"print the gitcap and Go versions, the BLAS in use and the thread count", runVersion},
	}
}

func main() {
	tuneGC()
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

func realMain(args []string, stdout, stderr io.Writer) int {
	cmds := commands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout, cmds)
		return 0
	}
	if args[0] == "--version" || args[0] == "-version" {
		args = append([]string{"version"}, args[1:]...)
	}
	c, ok := cmds[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "gitcap: unknown command %q\n", args[0])
		usage(stderr, cmds)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the first Ctrl-C asks for a clean stop; a second one kills
	}()
	warnIfPureGo(args, stderr)
	if err := c.run(ctx, args[1:], stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(stderr, "gitcap %s: %v\n", args[0], err)
			return 2
		}
		fmt.Fprintf(stderr, "gitcap %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// tuneGC lowers the garbage collector's heap growth from 100% to 20% unless
// the user set GOGC. The heap is almost all pointer-free float slices, so
// collecting more often costs little, and a training run's peak memory is
// its live set plus this margin (git-base batch 8: about 9.5 GB at 100%,
// about 6.3 GB at 10-20%).
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(20)
	}
}

// usageError marks a bad command line (exit status 2).
type usageError struct{ error }

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprintln(w, "gitcap: GIT image captioning in Go\n\nUsage: gitcap <command> [flags]\n\nCommands:")
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun \"gitcap <command> -h\" for a command's flags.")
}

// newFlagSet returns a flag set for a sub-command that reports errors
// instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("gitcap "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
