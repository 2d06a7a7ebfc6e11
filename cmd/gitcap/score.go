package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/eval"
)

// stringList is a flag that may be given several times.
type stringList []string

func (s *stringList) String() string { return strings.Join(*s, ",") }

func (s *stringList) Set(v string) error {
	if v == "" {
		return errors.New("empty file name")
	}
	*s = append(*s, v)
	return nil
}

// runScore implements "gitcap score": COCOEvalCap's CIDEr-D, BLEU-1..4 and
// ROUGE-L of one or more results files (merged, as for a sharded run)
// against a caption annotation file. Only the images with a result are
// scored, in the annotation file's image order.
func runScore(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("score", stderr)
	var results stringList
	annotations := fs.String("annotations", "", "caption annotations: COCO captions JSON (also Karpathy split file, metadata.jsonl or CSV)")
	fs.Var(&results, "results", "COCO results file [{\"image_id\", \"caption\"}]; repeat to merge shards")
	asJSON := fs.Bool("json", false, "print the scores, with per-image scores, as JSON")
	idfFrom := fs.String("idf-from", "", "take CIDEr-D's document frequencies from this caption file's references (coco-train-idf style) instead of the scored set's")
	fs.Usage = func() {
		fs.header("gitcap score --annotations ANN.json --results RES.json [--results RES2.json ...] [--json]",
			"Scores captions like the coco-caption toolkit (COCOEvalCap): PTB tokenization, then CIDEr-D,\n"+
				"Bleu_1..4 and ROUGE_L over the images that have a result. "+scoredKeys)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case *annotations == "":
		return usageError{errors.New("--annotations is required")}
	case len(results) == 0:
		return usageError{errors.New("at least one --results file is required")}
	}

	ann, err := data.LoadCaptions(*annotations, "")
	if err != nil {
		return err
	}
	if ann.Format == data.CaptionFormatCOCOResults {
		return fmt.Errorf("%s is a COCO results file; --annotations wants the reference captions", *annotations)
	}
	refs := ann.CaptionsByID()

	res := map[string]string{}
	from := map[string]string{} // image id -> results file
	for _, path := range results {
		if err := ctx.Err(); err != nil {
			return err
		}
		rs, err := data.LoadCOCOResults(path)
		if err != nil {
			return err
		}
		var unknown, noRefs []string
		for _, r := range rs {
			if prev, dup := from[r.ImageID]; dup {
				return fmt.Errorf("%s: image_id %s already has a caption in %s", path, r.ImageID, prev)
			}
			caps, ok := refs[r.ImageID]
			switch {
			case !ok:
				unknown = append(unknown, r.ImageID)
			case len(caps) == 0:
				noRefs = append(noRefs, r.ImageID)
			}
			from[r.ImageID] = path
			res[r.ImageID] = r.Caption
		}
		if len(unknown) > 0 {
			return fmt.Errorf("%s: %d image id(s) not in %s: %s", path, len(unknown), *annotations, idList(unknown))
		}
		if len(noRefs) > 0 {
			return fmt.Errorf("%s: %d image(s) without reference captions in %s: %s", path, len(noRefs), *annotations, idList(noRefs))
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	df, err := docFreqFrom(*idfFrom)
	if err != nil {
		return err
	}
	s, err := eval.Score(ann.IDs(), refs, res, eval.ScoreOptions{DocFreq: df})
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(stdout)
	if *asJSON {
		err = writeScoresJSON(bw, s)
	} else {
		fmt.Fprintf(bw, "%d images scored (%d reference captions in %s)\n\n", len(s.IDs), countCaptions(refs, s.IDs), *annotations)
		fmt.Fprintf(bw, "%-8s %s\n", "metric", "score")
		for _, m := range scoreRows(s.CIDEr, s.Bleu, s.ROUGEL) {
			fmt.Fprintf(bw, "%-8s %.6f\n", m.name, m.value)
		}
	}
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("writing the scores to standard output: %w", err)
	}
	return nil
}

type scoreRow struct {
	name  string
	value float64
}

func scoreRows(cider float64, bleu [4]float64, rouge float64) []scoreRow {
	return []scoreRow{
		{"CIDEr", cider}, {"Bleu_1", bleu[0]}, {"Bleu_2", bleu[1]}, {"Bleu_3", bleu[2]}, {"Bleu_4", bleu[3]}, {"ROUGE_L", rouge},
	}
}

// imageScoresJSON is one image's entry of the --json output.
type imageScoresJSON struct {
	CIDEr  float64 `json:"CIDEr"`
	Bleu1  float64 `json:"Bleu_1"`
	Bleu2  float64 `json:"Bleu_2"`
	Bleu3  float64 `json:"Bleu_3"`
	Bleu4  float64 `json:"Bleu_4"`
	ROUGEL float64 `json:"ROUGE_L"`
}

func writeScoresJSON(w io.Writer, s eval.Scores) error {
	out := struct {
		imageScoresJSON
		PerImage map[string]imageScoresJSON `json:"per_image"`
	}{
		imageScoresJSON: imageScoresJSON{s.CIDEr, s.Bleu[0], s.Bleu[1], s.Bleu[2], s.Bleu[3], s.ROUGEL},
		PerImage:        make(map[string]imageScoresJSON, len(s.PerImage)),
	}
	for id, p := range s.PerImage {
		out.PerImage[id] = imageScoresJSON{p.CIDEr, p.Bleu[0], p.Bleu[1], p.Bleu[2], p.Bleu[3], p.ROUGEL}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func countCaptions(refs map[string][]string, ids []string) int {
	n := 0
	for _, id := range ids {
		n += len(refs[id])
	}
	return n
}

// idList formats image ids for an error message, eliding a long tail.
func idList(ids []string) string {
	eval.SortIDs(ids)
	const show = 10
	var b strings.Builder
	for i, id := range ids {
		if i == show {
			fmt.Fprintf(&b, ", ... (%d more)", len(ids)-show)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		if _, err := strconv.ParseInt(id, 10, 64); err == nil {
			b.WriteString(id)
		} else {
			b.WriteString(strconv.Quote(id))
		}
	}
	return b.String()
}

// docFreqFrom builds CIDEr-D document frequencies from the references of a
// caption file (any format LoadCaptions reads), PTB-tokenized as the
// scored captions are; "" means none (df from the scored set).
func docFreqFrom(path string) (*eval.DocFreq, error) {
	if path == "" {
		return nil, nil
	}
	set, err := data.LoadCaptions(path, "")
	if err != nil {
		return nil, err
	}
	images := make([][]string, 0, len(set.Images))
	for _, im := range set.Images {
		images = append(images, eval.PTBTokenizeAll(im.Captions))
	}
	if len(images) == 0 {
		return nil, fmt.Errorf("%s: no images to take document frequencies from", path)
	}
	return eval.NewDocFreq(images), nil
}
