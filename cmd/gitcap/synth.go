package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gitcap/gitcap/data/synth"
)

// runSynth implements "gitcap synth": it writes the synthetic shapes data
// set (package data/synth) as a COCO-style directory.
//
//	gitcap synth --out DIR [--n N] [--seed S] [--size PX] [--max-shapes K]
//
// N is the total number of images, split 80/10/10: val and test get N/10
// each (rounded down) and train the rest. The result is
// DIR/images/{train,val,test}/NNNNNN.png and
// DIR/annotations/captions_{train,val,test}.json, where each JSON file is in
// COCO captions format with file_name relative to DIR/images/<split>/.
func runSynth(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("synth", stderr)
	out := fs.String("out", "", "output `directory` (required)")
	n := fs.Int("n", 2000, "total number of images, split 80/10/10 into train/val/test")
	seed := fs.Int64("seed", 1, "random seed; the same seed gives the same files")
	size := fs.Int("size", synth.DefaultImageSize, "image side in `pixels`")
	maxShapes := fs.Int("max-shapes", synth.DefaultMaxShapes, "most shapes per image, 1 to 3")
	fs.Usage = func() {
		fs.header("gitcap synth --out DIR [--n N] [--seed S] [--size PX] [--max-shapes K]",
			"Writes a synthetic image-captioning data set of coloured shapes:\n"+
				"DIR/images/<split>/NNNNNN.png and DIR/annotations/captions_<split>.json\n"+
				"(COCO captions format, file_name relative to DIR/images/<split>/)\n"+
				"for the splits train, val and test (80/10/10 of N).")
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case *out == "":
		return usageError{errors.New("--out is required")}
	case *n < 1:
		return usageError{fmt.Errorf("--n must be at least 1, got %d", *n)}
	case *size < synth.MinImageSize || *size > synth.MaxImageSize:
		return usageError{fmt.Errorf("--size must be from %d to %d, got %d", synth.MinImageSize, synth.MaxImageSize, *size)}
	case *maxShapes < 1 || *maxShapes > 3:
		return usageError{fmt.Errorf("--max-shapes must be from 1 to 3, got %d", *maxShapes)}
	}
	train, val, test := synth.SplitTotal(*n)
	sum, err := synth.Write(ctx, *out, synth.Options{
		Seed: *seed, Train: train, Val: val, Test: test,
		ImageSize: *size, MaxShapes: *maxShapes,
	})
	if err != nil {
		return err
	}
	for _, sp := range sum.Splits {
		fmt.Fprintf(stdout, "%-5s %6d images %7d captions  %s\n", sp.Split, sp.Images, sp.Captions, sp.Annotations)
	}
	fmt.Fprintf(stdout, "wrote %d %dx%d images to %s (seed %d)\n", sum.Images(), *size, *size, *out, *seed)
	return nil
}
