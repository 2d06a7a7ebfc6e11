package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cheggaaa/pb/v3"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
)

// generationFlags registers HF generate()'s options on fs.
func generationFlags(fs interface {
	IntVar(*int, string, int, string)
	Float64Var(*float64, string, float64, string)
	BoolVar(*bool, string, bool, string)
	Int64Var(*int64, string, int64, string)
}, o *gitmodel.GenerateOptions) {
	fs.IntVar(&o.MaxLength, "max-length", 20, "maximum text tokens including the prompt and [CLS] (HF max_length)")
	fs.IntVar(&o.MaxNewTokens, "max-new-tokens", 0, "maximum generated tokens (overrides --max-length)")
	fs.IntVar(&o.MinLength, "min-length", 0, "minimum text tokens including the prompt before [SEP] may be produced")
	fs.IntVar(&o.MinNewTokens, "min-new-tokens", 0, "minimum generated tokens before [SEP] may be produced")
	fs.IntVar(&o.NumBeams, "num-beams", 1, "beam search width (1 = greedy or sampling)")
	fs.Float64Var(&o.LengthPenalty, "length-penalty", 1, "beam score = sum log-probs / length^penalty")
	fs.BoolVar(&o.EarlyStopping, "early-stopping", false, "stop beam search once num-beams hypotheses are finished")
	fs.IntVar(&o.NumReturnSequences, "num-return-sequences", 1, "sequences per image (beams or samples)")
	fs.Float64Var(&o.RepetitionPenalty, "repetition-penalty", 1, "penalty (> 1) for tokens already present")
	fs.IntVar(&o.NoRepeatNgramSize, "no-repeat-ngram-size", 0, "forbid repeating n-grams of this size")
	fs.BoolVar(&o.DoSample, "do-sample", false, "sample instead of greedy/beam search")
	fs.Float64Var(&o.Temperature, "temperature", 1, "sampling temperature")
	fs.IntVar(&o.TopK, "top-k", 50, "sample from the k most likely tokens (HF's default 50; 0 = all)")
	fs.Float64Var(&o.TopP, "top-p", 1, "nucleus sampling mass (1 = off)")
	fs.Int64Var(&o.Seed, "seed", 0, "sampling seed (the same seed repeats the same samples)")
}

func runCaption(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("caption", stderr)
	model := fs.String("model", "", "checkpoint directory or HuggingFace model id (required)")
	asJSON := fs.Bool("json", false, "print one JSON object per result")
	prompt := fs.String("prompt", "", "text to continue (VQA style); the printed caption excludes it")
	batch := fs.Int("batch-size", 1, "images per generation batch")
	frames := fs.Int("frames", 0, "frames per video sample (must match the checkpoint's num_image_with_embedding)")
	list := fs.String("images-from", "", "read image paths from a file (one per line) or every image in a directory")
	var o gitmodel.GenerateOptions
	generationFlags(fs, &o)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: gitcap caption --model DIR [flags] IMAGE...")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if *model == "" {
		return usageError{errors.New("--model is required")}
	}
	if err := checkGenerationFlags(&o); err != nil {
		return err
	}
	inputs := fs.Args()
	if *list != "" {
		more, err := listImages(*list)
		if err != nil {
			return err
		}
		inputs = append(inputs, more...)
	}
	if len(inputs) == 0 {
		return usageError{errors.New("no images given")}
	}
	p, err := loadPipeline(ctx, *model, stderr)
	if err != nil {
		return err
	}
	if *frames != 0 && *frames != p.Model.Config.Frames() {
		return fmt.Errorf("--frames %d: the checkpoint takes %d frames per sample", *frames, p.Model.Config.Frames())
	}
	var samples []caption.Sample
	failed := 0
	w := bufio.NewWriter(stdout)
	defer w.Flush()
	for _, in := range inputs {
		s, err := p.SampleFor(in)
		if err != nil {
			fmt.Fprintln(stderr, err) // names the input
			failed++
			continue
		}
		samples = append(samples, s)
	}
	if len(samples) == 0 {
		return fmt.Errorf("none of the %d inputs could be read", len(inputs))
	}
	g := p.Model.NewGenerator()
	defer g.Close()
	progress := newProgress(stderr, len(samples), "images")
	res, err := p.Caption(ctx, g, samples, *prompt, *batch, o, progress.set)
	progress.finish()
	for _, r := range res {
		if r.Err != nil {
			fmt.Fprintln(stderr, r.Err) // names the file
			failed++
			continue
		}
		if *asJSON {
			obj := map[string]any{"image": r.Sample.Name, "caption": r.Text, "ids": r.IDs}
			if r.Beam {
				obj["score"] = r.Score
			}
			b, _ := json.Marshal(obj)
			fmt.Fprintf(w, "%s\n", b)
		} else {
			fmt.Fprintf(w, "%s\t%s\n", r.Sample.Name, r.Text)
		}
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be captioned", failed, len(inputs))
	}
	return nil
}

// checkGenerationFlags rejects what HF's generate rejects and maps
// --length-penalty 0 (no length normalisation) onto the API.
func checkGenerationFlags(o *gitmodel.GenerateOptions) error {
	switch {
	case o.NumBeams < 1 || o.NumReturnSequences < 1 || o.MaxLength < 1:
		return usageError{fmt.Errorf("--num-beams (num_beams), --num-return-sequences and --max-length must be at least 1")}
	case o.DoSample && o.Temperature <= 0:
		return usageError{fmt.Errorf("--temperature must be positive when sampling (got %g); leave out --do-sample for greedy search", o.Temperature)}
	case o.RepetitionPenalty <= 0:
		return usageError{fmt.Errorf("--repetition-penalty must be positive, got %g", o.RepetitionPenalty)}
	case o.MaxNewTokens < 0 || o.MinLength < 0 || o.MinNewTokens < 0 || o.NoRepeatNgramSize < 0:
		return usageError{errors.New("lengths and --no-repeat-ngram-size must not be negative")}
	}
	if o.LengthPenalty == 0 {
		o.LengthPenalty = 1e-300 // L^1e-300 == 1: HF's length_penalty=0
	}
	return nil
}

// listImages reads image paths from a list file or a directory.
func listImages(path string) ([]string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		ents, err := os.ReadDir(path)
		if err != nil {
			return nil, err
		}
		var out []string
		for _, e := range ents {
			switch strings.ToLower(filepath.Ext(e.Name())) {
			case ".png", ".jpg", ".jpeg", ".gif":
				out = append(out, filepath.Join(path, e.Name()))
			}
		}
		sort.Strings(out)
		if len(out) == 0 {
			return nil, fmt.Errorf("%s: no images (.png, .jpg, .jpeg, .gif) in the directory", path)
		}
		return out, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: the image list is empty", path)
	}
	return out, nil
}

// progress shows a pb/v3 bar on a terminal and periodic log lines
// otherwise (pb writes one endless line when output is not a terminal).
type progress struct {
	bar   *pb.ProgressBar
	w     io.Writer
	total int
	unit  string
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, total int, unit string) *progress {
	p := &progress{w: w, total: total, unit: unit, start: time.Now(), last: time.Now()}
	if isTerminal(w) && total > 1 {
		p.bar = pb.New(total)
		p.bar.SetWriter(w)
		p.bar.SetTemplateString(`{{counters .}} {{bar .}} {{percent .}} {{speed . "%s ` + unit + `/s"}} {{rtime . "ETA %s"}}`)
		p.bar.Start()
	}
	return p
}

func (p *progress) set(done int) {
	if p.bar != nil {
		p.bar.SetCurrent(int64(done))
		return
	}
	if p.total > 1 && (time.Since(p.last) > 10*time.Second || done == p.total) {
		p.last = time.Now()
		el := time.Since(p.start).Seconds()
		fmt.Fprintf(p.w, "%d/%d %s (%.2f %s/s)\n", done, p.total, p.unit, float64(done)/el, p.unit)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}

// usageErr marks flag errors as usage errors, leaving -h alone.
func usageErr(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}
