package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
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

func runCaption(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("caption", stderr)
	model := fs.String("model", "", "checkpoint `directory` or HuggingFace model id owner/name (required)")
	dtype := fs.dtypeFlag()
	asJSON := fs.Bool("json", false, "print one JSON object per result")
	prompt := fs.String("prompt", "", "text to continue (VQA style); the printed caption excludes it")
	batch := fs.Int("batch-size", 1, "images per generation batch")
	frames := fs.Int("frames", 0, "frames per video sample (must match the checkpoint's num_image_with_embedding)")
	list := fs.String("images-from", "", "read image paths from a `file` (one per line) or every image in a directory")
	var o gitmodel.GenerateOptions
	generationFlags(fs, &o)
	var limits imageLimitFlags
	limits.register(fs)
	fs.Usage = func() {
		fs.header("gitcap caption --model DIR [flags] IMAGE...",
			"Captions images (for a video checkpoint: a folder of frames, or FRAME,FRAME,... per sample).\n"+
				"Generation defaults come from the checkpoint's generation_config.json when it has one,\n"+
				"as in HF's generate; the flags below override them.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" {
		return usageError{errors.New("--model is required")}
	}
	if *batch < 1 {
		return usageError{fmt.Errorf("--batch-size must be at least 1, got %d", *batch)}
	}
	if err := checkGenerationFlags(&o); err != nil {
		return err
	}
	inputs := fs.Args()
	if *list != "" {
		more, err := listImages(*list)
		if err != nil {
			return fmt.Errorf("--images-from %w", err)
		}
		inputs = append(inputs, more...)
	}
	if len(inputs) == 0 {
		return usageError{errors.New("no images given (name image files, or --images-from FILE|DIR)")}
	}
	p, err := loadPipelineDtype(ctx, *model, *dtype, stderr)
	if err != nil {
		return err
	}
	p.Processor = limits.apply(p.Processor, stderr)
	if *frames != 0 && *frames != p.Model.Config.Frames() {
		return fmt.Errorf("--frames %d: the checkpoint takes %d frames per sample", *frames, p.Model.Config.Frames())
	}
	if _, err := applyGenerationConfig(p.Dir, fs, &o); err != nil {
		return err
	}
	var samples []caption.Sample
	failed := 0
	for _, in := range inputs {
		if st, err := os.Stat(in); err == nil && st.IsDir() && !p.Model.Config.Video() {
			fmt.Fprintf(stderr, "%s: is a directory; this is an image checkpoint: caption every image in it with --images-from %s\n", in, in)
			failed++
			continue
		}
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
	progress := newProgress(stderr, len(inputs), "images")
	progress.failed = failed
	res, err := captionAll(ctx, p, g, samples, *prompt, *batch, o, progress)
	progress.finish()
	w := bufio.NewWriter(stdout)
	var werr error
	for _, r := range res {
		if r.Err != nil {
			fmt.Fprintln(stderr, r.Err) // names the file
			failed++
			continue
		}
		if werr != nil {
			continue
		}
		if *asJSON {
			obj := map[string]any{"image": r.Sample.Name, "caption": r.Text, "ids": r.IDs}
			if r.Beam {
				obj["score"] = r.Score
			}
			b, jerr := json.Marshal(obj)
			if jerr != nil {
				return fmt.Errorf("%s: the result cannot be written as JSON: %w", r.Sample.Name, jerr)
			}
			_, werr = fmt.Fprintf(w, "%s\n", b)
		} else {
			_, werr = fmt.Fprintf(w, "%s\t%s\n", r.Sample.Name, r.Text)
		}
	}
	if werr == nil {
		werr = w.Flush()
	}
	if werr != nil {
		return fmt.Errorf("writing the captions to standard output: %w", werr)
	}
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be captioned", failed, len(inputs))
	}
	return nil
}

// captionAll captions samples batch by batch, telling progress how many
// succeeded and failed after each batch. Each batch is the batch
// p.Caption would have made itself, with the same sample offsets, so the
// results are the same.
func captionAll(ctx context.Context, p *caption.Pipeline, g *gitmodel.Generator, samples []caption.Sample, prompt string, batch int, o gitmodel.GenerateOptions, pr *progress) ([]caption.Caption, error) {
	var out []caption.Caption
	for start := 0; start < len(samples); start += batch {
		end := min(start+batch, len(samples))
		bo := o
		bo.SampleOffset = o.SampleOffset + start
		res, err := p.Caption(ctx, g, samples[start:end], prompt, batch, bo, nil)
		out = append(out, res...)
		if err != nil {
			return out, err
		}
		nerr := 0 // a sample that failed has one result, with Err
		for _, r := range res {
			if r.Err != nil {
				nerr++
			}
		}
		pr.failed += nerr
		pr.ok += end - start - nerr
		pr.update()
	}
	return out, nil
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
// It counts successes and failures separately.
type progress struct {
	bar        *pb.ProgressBar
	w          io.Writer
	total      int
	ok, failed int
	unit       string
	start      time.Time
	last       time.Time
}

// barTemplate shows elapsed and remaining time (pb's rtime shows the
// elapsed time once the bar is finished, hence "done in").
const barTemplate = `{{counters .}} {{bar .}} {{percent .}} {{string . "counts"}} {{speed . "%s UNIT/s"}} {{etime . "%s elapsed"}}, {{rtime . "%s left" "done in %s" "? left"}}`

func newProgress(w io.Writer, total int, unit string) *progress {
	p := &progress{w: w, total: total, unit: unit, start: time.Now(), last: time.Now()}
	if isTerminal(w) && total > 1 {
		p.bar = pb.New(total)
		p.bar.SetWriter(w)
		p.bar.SetTemplateString(strings.Replace(barTemplate, "UNIT", unit, 1))
		p.bar.Start()
	}
	return p
}

// update shows the counts.
func (p *progress) update() {
	done := p.ok + p.failed
	if p.bar != nil {
		p.bar.Set("counts", fmt.Sprintf("%d ok, %d failed", p.ok, p.failed))
		p.bar.SetCurrent(int64(done))
		return
	}
	if p.total > 1 && (time.Since(p.last) > 10*time.Second || done == p.total) {
		p.last = time.Now()
		el := time.Since(p.start).Seconds()
		fmt.Fprintf(p.w, "%d/%d %s: %d captioned, %d failed (%.2f %s/s)\n", done, p.total, p.unit, p.ok, p.failed, float64(done)/el, p.unit)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		p.bar.Finish()
	}
}
