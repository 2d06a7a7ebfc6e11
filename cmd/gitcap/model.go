package main

import (
	"context"
	"io"
	"os"

	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/gitmodel/hub"
)

// loadPipeline resolves --model (a checkpoint directory or a HuggingFace
// model id, fetched into the HF cache) and loads it.
func loadPipeline(ctx context.Context, model string, stderr io.Writer) (*caption.Pipeline, error) {
	opts := hub.OptionsFromEnv()
	// Still silent with HF_HUB_DISABLE_PROGRESS_BARS: OptionsFromEnv sets
	// opts.DisableProgressBars, which Resolve honours whatever Progress is.
	opts.Progress = stderr
	dir, err := resolveModel(ctx, model, opts)
	if err != nil {
		return nil, err
	}
	return caption.LoadPipeline(dir)
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
