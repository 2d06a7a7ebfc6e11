package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/eval"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/train/dist"
)

// runEval implements "gitcap eval": caption every image of a caption set
// (COCO annotations, Karpathy split file, metadata.jsonl or CSV), write a
// COCO results file and score it as COCOEvalCap does.
func runEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("eval", stderr)
	model := fs.String("model", "", "checkpoint directory or HuggingFace model id (required)")
	dtype := fs.dtypeFlag()
	annotations := fs.String("annotations", "", "reference captions: COCO captions JSON, Karpathy dataset_coco.json, metadata.jsonl or CSV (required)")
	images := fs.String("images", "", "directory the annotation file names are relative to (default: the annotation file's directory)")
	split := fs.String("split", "", "split of a Karpathy split file (default test)")
	out := fs.String("out", "", "write the COCO results file [{\"image_id\", \"caption\"}] here")
	shard := fs.String("shard", "", "caption only shard K of N (K/N, K from 0): images K, K+N, K+2N, ... for splitting a set across machines; merge with gitcap score --results A --results B ...")
	batch := fs.Int("batch-size", 8, "images per generation batch")
	prompt := fs.String("prompt", "", "prompt to continue")
	asJSON := fs.Bool("json", false, "print the scores as JSON")
	idfFrom := fs.String("idf-from", "", "take CIDEr-D's document frequencies from this caption file's references (coco-train-idf style)")
	var o gitmodel.GenerateOptions
	generationFlags(fs, &o)
	var limits imageLimitFlags
	limits.register(fs)
	fs.Usage = func() {
		fs.header("gitcap eval --model DIR --annotations FILE [--images DIR] [--out RESULTS.json] [flags]",
			"Captions every image of a caption set, writes a COCO results file and scores it as\n"+
				"coco-caption's COCOEvalCap does. "+scoredKeys+"\n"+
				"Generation defaults come from the checkpoint's generation_config.json when it has one.")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *model == "" || *annotations == "" {
		return usageError{errors.New("--model and --annotations are required")}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q (images are given with --images)", fs.Arg(0))}
	}
	if *batch < 1 {
		return usageError{fmt.Errorf("--batch-size must be at least 1, got %d", *batch)}
	}
	if err := checkGenerationFlags(&o); err != nil {
		return err
	}
	if *out != "" {
		if err := checkOutFile("--out", *out); err != nil {
			return err
		}
	}
	k, n, err := parseShard(*shard)
	if err == nil {
		k, n, err = evalShardMPI(ctx, k, n) // under mpirun: this rank's shard (eval_mpi.go)
	}
	if err != nil {
		return usageError{err}
	}
	ann, err := data.LoadCaptions(*annotations, *split)
	if err != nil {
		return err
	}
	if ann.Format == data.CaptionFormatKarpathy && *split == "" {
		*split = "test"
		if ann, err = data.LoadCaptions(*annotations, *split); err != nil {
			return err
		}
	}
	if ann.Format == data.CaptionFormatCOCOResults {
		return fmt.Errorf("%s is a COCO results file; --annotations wants the reference captions", *annotations)
	}
	root := *images
	if root == "" {
		root = filepath.Dir(*annotations)
	}
	var samples []caption.Sample
	var ids []string
	candidates := 0
	for i, im := range ann.Images {
		if len(im.Captions) == 0 { // nothing to score it against
			continue
		}
		if candidates++; i%n != k {
			continue
		}
		file := im.File
		if file == "" {
			file = im.ID
		}
		samples = append(samples, caption.Sample{Name: im.ID, Frames: []string{filepath.Join(root, file)}})
		ids = append(ids, im.ID)
	}
	captionShard := func() ([]caption.Caption, error) {
		if err := checkImagesExist(samples, *annotations, root, *images != ""); err != nil {
			return nil, err
		} else if miss := countMissing(samples); miss > 0 {
			fmt.Fprintf(stderr, "warning: %d of %d images are missing, the first %s\n", miss, len(samples), firstMissing(samples))
		}
		p, err := loadPipelineDtype(ctx, *model, *dtype, stderr)
		if err != nil {
			return nil, err
		}
		p.Processor = limits.apply(p.Processor, stderr)
		if p.Model.Config.Video() {
			return nil, errors.New("gitcap eval captions still images; this is a video checkpoint")
		}
		if _, err := applyGenerationConfig(p.Dir, fs, &o); err != nil {
			return nil, err
		}
		g := p.Model.NewGenerator()
		defer g.Close()
		bar := newProgress(stderr, len(samples), "images")
		defer bar.finish()
		return captionAll(ctx, p, g, samples, *prompt, *batch, o, bar)
	}
	// Under mpirun a rank whose shard is empty (fewer images than ranks)
	// still takes part in the gather; only an empty set is an error.
	mpi := dist.FromContext(ctx).Size() > 1
	if candidates == 0 || (len(samples) == 0 && !mpi) {
		return fmt.Errorf("%s: no images to caption (split %q, shard %d/%d)", *annotations, *split, k, n)
	}
	var caps []caption.Caption
	if len(samples) > 0 {
		if caps, err = captionShard(); err != nil {
			return err
		}
	}
	// Under mpirun rank 0 takes every rank's captions; the others are done.
	if caps, ids, n, err = gatherEvalMPI(ctx, ann, caps, ids, n); err != nil || caps == nil {
		return err
	}
	var results []data.Result
	res := map[string]string{}
	failed := 0
	for _, c := range caps {
		if c.Err != nil {
			fmt.Fprintln(stderr, c.Err)
			failed++
			continue
		}
		if _, dup := res[c.Sample.Name]; dup {
			continue // several return sequences: the first is the result
		}
		res[c.Sample.Name] = c.Text
		results = append(results, data.Result{ImageID: c.Sample.Name, Caption: c.Text})
	}
	scored := ids[:0:0]
	for _, id := range ids {
		if _, ok := res[id]; ok {
			scored = append(scored, id)
		}
	}
	if len(scored) == 0 {
		if *out != "" {
			return fmt.Errorf("none of the %d images could be captioned; %s not written", len(samples), *out)
		}
		return fmt.Errorf("none of the %d images could be captioned", len(samples))
	}
	if *out != "" {
		if err := data.WriteCOCOResults(*out, results); err != nil {
			return err
		}
	}
	df, err := docFreqFrom(*idfFrom)
	if err != nil {
		return err
	}
	s, err := eval.Score(scored, ann.CaptionsByID(), res, eval.ScoreOptions{DocFreq: df})
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(stdout)
	stdout = bw
	if *asJSON {
		err = writeScoresJSON(stdout, s)
	} else {
		fmt.Fprintf(stdout, "%d images captioned and scored", len(scored))
		if n > 1 {
			fmt.Fprintf(stdout, " (shard %d/%d: merge the shards' results with gitcap score for the full-set score)", k, n)
		}
		if *out != "" {
			fmt.Fprintf(stdout, "; results in %s", *out)
		}
		fmt.Fprintf(stdout, "\n\n%-8s %s\n", "metric", "score")
		for _, m := range scoreRows(s.CIDEr, s.Bleu, s.ROUGEL) {
			fmt.Fprintf(stdout, "%-8s %.6f\n", m.name, m.value)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("writing the scores to standard output: %w", err)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d images could not be read", failed, len(samples))
	}
	return nil
}

// parseShard parses "K/N" (K from 0); "" is the whole set.
func parseShard(s string) (k, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, err1 := strconv.Atoi(ks)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, fmt.Errorf("--shard %q: want K/N with 0 <= K < N", s)
	}
	return k, n, nil
}

// scoredKeys says, for -h, what eval and score report and what they do not.
const scoredKeys = "Reported keys: CIDEr (CIDEr-D), Bleu_1..Bleu_4, ROUGE_L.\n" +
	"METEOR and SPICE are not computed: they need Java and the WordNet/CoreNLP models\n" +
	"that coco-caption runs; use pycocoevalcap on the results file for them."

// checkOutFile checks, before any work, that path can be written: not a
// directory, in an existing directory we may create files in.
func checkOutFile(flagName, path string) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s %s: is a directory; give a file name (e.g. %s)", flagName, path, filepath.Join(path, "results.json"))
	}
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s %s: the directory %s does not exist", flagName, path, dir)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s %s: %s is not a directory", flagName, path, dir)
	}
	f, err := os.CreateTemp(dir, ".gitcap-write-check-*")
	if err != nil {
		return fmt.Errorf("%s %s: cannot write in %s: %w", flagName, path, dir, errors.Unwrap(err))
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// missing reports whether an image file cannot be found.
func missing(path string) bool {
	_, err := os.Stat(path)
	return errors.Is(err, os.ErrNotExist)
}

func countMissing(samples []caption.Sample) int {
	n := 0
	for _, s := range samples {
		if missing(s.Frames[0]) {
			n++
		}
	}
	return n
}

func firstMissing(samples []caption.Sample) string {
	for _, s := range samples {
		if missing(s.Frames[0]) {
			return s.Frames[0]
		}
	}
	return ""
}

// checkImagesExist fails when none of the images is where the annotation
// file says, naming the first and suggesting --images.
func checkImagesExist(samples []caption.Sample, annotations, root string, imagesGiven bool) error {
	if countMissing(samples) < len(samples) {
		return nil
	}
	hint := "give the image directory with --images DIR"
	if imagesGiven {
		hint = "check --images " + root
	}
	return fmt.Errorf("%s: none of its %d images is in %s (the first, %s, does not exist); %s",
		annotations, len(samples), root, samples[0].Frames[0], hint)
}
