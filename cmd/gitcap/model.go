package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/gitmodel/hub"
	"github.com/gitcap/gitcap/graph"
)

// loadPipeline resolves --model (a checkpoint directory or a HuggingFace
// model id, fetched into the HF cache) and loads it.
func loadPipeline(ctx context.Context, model string, stderr io.Writer) (*caption.Pipeline, error) {
	return loadPipelineDtype(ctx, model, gitmodel.FP32, stderr)
}

// loadPipelineDtype is loadPipeline with the weights held in dt (--dtype).
// Without AVX-512 the bf16 kernels run in pure Go: it says so and goes on.
func loadPipelineDtype(ctx context.Context, model string, dt gitmodel.WeightDtype, stderr io.Writer) (*caption.Pipeline, error) {
	if dt != gitmodel.FP32 && !graph.BF16Fast() {
		fmt.Fprintln(stderr, "gitcap: --dtype bf16: this CPU lacks AVX-512 (F and BW), so the bf16 kernels run in pure Go and are slower than fp32; the weights still take half the memory")
	}
	opts := hub.OptionsFromEnv()
	// Still silent with HF_HUB_DISABLE_PROGRESS_BARS: OptionsFromEnv sets
	// opts.DisableProgressBars, which Resolve honours whatever Progress is.
	opts.Progress = stderr
	dir, err := resolveModel(ctx, model, opts)
	if err != nil {
		return nil, err
	}
	return caption.LoadPipelineDtype(dir, dt)
}

// isTerminal reports whether w is an interactive terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
