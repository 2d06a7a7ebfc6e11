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
		"bench":     {"measure speed on a git-base-shaped model (or --model) against this machine's sgemm peak", runBench},
		"caption":   {"caption images (or video samples) with a GIT checkpoint", runCaption},
		"demo":      {"train a small GIT on generated data from scratch, caption and score it (no downloads)", runDemo},
		"train":     {"fine-tune (or train from a config) with the language-modelling loss", mpiCommand("train", runTrain)},
		"eval":      {"caption a COCO-style set, write a COCO results file and score it (CIDEr-D, BLEU, ROUGE-L)", mpiCommand("eval", runEval)},
		"forward":   {"run one forward pass and write activations, logits, loss (and gradients) to safetensors", runForward},
		"serve":     {"serve captions over HTTP (JSON API, web page, metrics) with continuous batching", runServe},
		"score":     {"score a COCO results file against COCO caption annotations (CIDEr-D, BLEU, ROUGE-L)", runScore},
		"synth":     {"write the synthetic shapes captioning data set", runSynth},
		"version":   {"print the gitcap and Go versions, the BLAS in use and the thread count", runVersion},
		"tokenizer": {"build a WordPiece tokenizer (vocab.txt, tokenizer.json, ...) from your caption files", runTokenizer},
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
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer signal.Stop(sigs)
		select {
		case s := <-sigs:
			// The first Ctrl-C (or SIGTERM) asks for a clean stop; a
			// second one kills.
			cancel(signalError{s})
		case <-done:
		}
	}()
	warnIfPureGo(args, stderr)
	return exitStatus(args[0], c.run(ctx, args[1:], stdout, stderr), stderr)
}

// exitStatus prints a command's error (one line, "gitcap CMD: ...") and
// returns the exit status: 0, 2 for a bad command line, the code of an
// exitError, else 1.
func exitStatus(cmd string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintf(stderr, "gitcap %s: %v\n", cmd, err)
	var ue usageError
	var ee exitError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.As(err, &ee):
		return ee.code
	}
	return 1
}

// exitError is an error with its own exit status.
type exitError struct {
	code int
	err  error
}

func (e exitError) Error() string { return e.err.Error() }
func (e exitError) Unwrap() error { return e.err }

// signalError is the cancellation cause of a command stopped by a signal.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "stopped by " + signalName(e.sig) }

func signalName(s os.Signal) string {
	switch s {
	case os.Interrupt:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return s.String()
}

// interruptCode is the shell's exit status for a command stopped by ctx's
// signal (128 + the signal number: 130 for SIGINT, 143 for SIGTERM) and
// why it stopped; a cancellation without a signal counts as SIGINT.
func interruptCode(ctx context.Context) (int, string) {
	var se signalError
	if errors.As(context.Cause(ctx), &se) {
		if n, ok := se.sig.(syscall.Signal); ok {
			return 128 + int(n), se.Error()
		}
	}
	return 130, "interrupted"
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
