package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gitcap/gitcap/configs"
	"github.com/gitcap/gitcap/data"
	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/data/synth"
	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/eval"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/train"
)

// runDemo implements "gitcap demo": it writes the synthetic shapes set,
// builds a vocabulary and a small GIT, trains it from scratch with the real
// training loop, and scores greedy captions of the held-out test split with
// CIDEr-D. With --scst it then fine-tunes that checkpoint with
// self-critical sequence training (configs/demo-scst.yaml) and scores both.
//
//	gitcap demo [--out DIR] [--steps N] [--n N] [--precision fp32|bf16] [--scst] [--scst-steps N]
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", stderr)
	out := fs.String("out", filepath.Join(os.TempDir(), "gitcap-demo"), "working `directory` (data set, model, run)")
	steps := fs.Int("steps", 0, "training steps (0: the demo configuration's)")
	n := fs.Int("n", 3000, "total synthetic images, split 80/10/10 into train/val/test")
	show := fs.Int("show", 5, "test images to print with their captions")
	precision := fs.String("precision", "", "training precision, fp32 or bf16 (empty: the demo configuration's, fp32)")
	scst := fs.Bool("scst", false, "then fine-tune the checkpoint with self-critical sequence training (configs/demo-scst.yaml) and score both stages")
	scstSteps := fs.Int("scst-steps", 0, "SCST steps with --scst (0: the configuration's)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gitcap demo [--out DIR] [--steps N] [--n N] [--show N] [--precision fp32|bf16] [--scst] [--scst-steps N]\n\n"+
			"Trains a small GIT from scratch on a synthetic shapes data set and reports\n"+
			"held-out CIDEr-D. Uses configs/demo.json and configs/demo.yaml (embedded in the binary);\n"+
			"--scst then fine-tunes with self-critical sequence training (configs/demo-scst.yaml).\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	case *n < 10:
		return usageError{fmt.Errorf("--n must be at least 10, got %d", *n)}
	case *steps < 0:
		return usageError{fmt.Errorf("--steps must not be negative, got %d", *steps)}
	case *scstSteps < 0:
		return usageError{fmt.Errorf("--scst-steps must not be negative, got %d", *scstSteps)}
	case *scstSteps > 0 && !*scst:
		return usageError{fmt.Errorf("--scst-steps needs --scst")}
	}
	start := time.Now()

	// Model preset and training configuration, embedded from configs/.
	modelJSON, err := configs.Read("demo.json")
	if err != nil {
		return err
	}
	trainYAML, err := configs.Read("demo.yaml")
	if err != nil {
		return err
	}
	cfg, err := train.ParseConfig(trainYAML)
	if err != nil {
		return fmt.Errorf("configs/demo.yaml: %w", err)
	}
	var scstCfg *train.Config
	if *scst {
		b, err := configs.Read("demo-scst.yaml")
		if err != nil {
			return err
		}
		if scstCfg, err = train.ParseConfig(b); err != nil {
			return fmt.Errorf("configs/demo-scst.yaml: %w", err)
		}
	}
	var preset map[string]any
	if err := json.Unmarshal(modelJSON, &preset); err != nil {
		return fmt.Errorf("demo model preset: %w", err)
	}
	vision, _ := preset["vision_config"].(map[string]any)
	size := 32
	if v, ok := vision["image_size"].(float64); ok && v > 0 {
		size = int(v)
	}

	// Data.
	dataDir := filepath.Join(*out, "data")
	trN, vaN, teN := synth.SplitTotal(*n)
	fmt.Fprintf(stdout, "writing %d synthetic %dx%d images to %s\n", *n, size, size, dataDir)
	if _, err := synth.Write(ctx, dataDir, synth.Options{Seed: 1, Train: trN, Val: vaN, Test: teN, ImageSize: size}); err != nil {
		return err
	}
	trainPairs, err := data.LoadCOCOPairs(synth.AnnotationsPath(dataDir, synth.Train), synth.ImageDir(dataDir, synth.Train))
	if err != nil {
		return err
	}

	// Tokenizer, model preset and image processor in the model directory.
	modelDir := filepath.Join(*out, "model")
	caps := make([]string, len(trainPairs))
	for i, p := range trainPairs {
		caps[i] = p.Caption
	}
	vocab := tokenizer.BuildVocab(caps, 1)
	if err := tokenizer.WriteFiles(modelDir, vocab); err != nil {
		return err
	}
	preset["vocab_size"] = len(vocab)
	b, err := json.Marshal(preset)
	if err != nil {
		return err
	}
	mc, err := gitmodel.ParseConfig("configs/demo.json", b)
	if err != nil {
		return err
	}
	if err := mc.Save(filepath.Join(modelDir, "config.json")); err != nil {
		return err
	}
	if err := writeDemoPreprocessor(filepath.Join(modelDir, "preprocessor_config.json"), size); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "vocabulary: %d tokens; model: %d+%d layers, hidden %d, %dpx images\n",
		len(vocab), mc.Vision.NumHiddenLayers, mc.NumHiddenLayers, mc.HiddenSize, size)

	// Train.
	runDir := filepath.Join(*out, "run")
	if err := os.RemoveAll(runDir); err != nil {
		return err
	}
	cfg.Model, cfg.ModelConfig = "", filepath.Join(modelDir, "config.json")
	cfg.Train = train.DataConfig{Path: synth.AnnotationsPath(dataDir, synth.Train), Format: "coco", Images: synth.ImageDir(dataDir, synth.Train)}
	cfg.Val = train.DataConfig{Path: synth.AnnotationsPath(dataDir, synth.Val), Format: "coco", Images: synth.ImageDir(dataDir, synth.Val)}
	cfg.OutDir = runDir
	if *precision != "" {
		cfg.Precision = *precision
	}
	if *steps > 0 {
		cfg.Steps, cfg.Epochs = *steps, 0
		cfg.WarmupSteps = min(cfg.WarmupSteps, *steps/10)
	}
	trainStart := time.Now()
	sum, err := train.Run(ctx, cfg, stdout)
	if err != nil {
		return err
	}
	trainTime := time.Since(trainStart)
	if sum.Interrupted {
		fmt.Fprintf(stdout, "interrupted; checkpoint in %s\n", sum.LastDir)
		return ctx.Err()
	}

	// Evaluate on the held-out test split.
	ck := sum.LastDir
	if sum.BestDir != "" {
		ck = sum.BestDir
	}
	testPairs, err := data.LoadCOCOPairs(synth.AnnotationsPath(dataDir, synth.Test), synth.ImageDir(dataDir, synth.Test))
	if err != nil {
		return err
	}
	imgs, gts := caption.GroupByImage(testPairs)
	xe, err := scoreDemo(ctx, ck, imgs, gts, cfg.GenMaxLength)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	for i, im := range imgs {
		if i >= *show {
			break
		}
		fmt.Fprintf(stdout, "%s\n  generated: %s\n", im, xe.res[im])
		for _, r := range gts[im] {
			fmt.Fprintf(stdout, "  reference: %s\n", r)
		}
	}
	fmt.Fprintf(stdout, "\nheld-out test CIDEr-D: %.3f on %d images (greedy)\n", xe.cider, len(imgs))
	fmt.Fprintf(stdout, "training: %d steps at precision %s in %s (final train loss %.4f, val loss %.4f); total %s\n",
		sum.Steps, cfg.Precision, trainTime.Round(time.Second), sum.LastLoss, sum.ValLoss, time.Since(start).Round(time.Second))
	fmt.Fprintf(stdout, "checkpoint: %s\ntraining curve: %s\n", ck, filepath.Join(runDir, train.PlotFile))
	if scstCfg == nil {
		return nil
	}

	// Stage 2: self-critical sequence training from stage 1's checkpoint.
	scstDir := filepath.Join(*out, "run-scst")
	if err := os.RemoveAll(scstDir); err != nil {
		return err
	}
	scstCfg.Model, scstCfg.ModelConfig = ck, ""
	scstCfg.Train, scstCfg.Val, scstCfg.OutDir = cfg.Train, cfg.Val, scstDir
	if *scstSteps > 0 {
		scstCfg.Steps, scstCfg.Epochs = *scstSteps, 0
		scstCfg.WarmupSteps = min(scstCfg.WarmupSteps, *scstSteps/10)
	}
	fmt.Fprintf(stdout, "\nself-critical sequence training from %s\n", ck)
	scstStart := time.Now()
	ssum, err := train.Run(ctx, scstCfg, stdout)
	if err != nil {
		return err
	}
	if ssum.Interrupted {
		fmt.Fprintf(stdout, "interrupted; checkpoint in %s\n", ssum.LastDir)
		return ctx.Err()
	}
	sck := ssum.LastDir
	if ssum.BestDir != "" {
		sck = ssum.BestDir
	}
	sc, err := scoreDemo(ctx, sck, imgs, gts, cfg.GenMaxLength)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	for i, im := range imgs {
		if i >= *show {
			break
		}
		fmt.Fprintf(stdout, "%s\n  cross-entropy: %s\n  SCST:          %s\n", im, xe.res[im], sc.res[im])
	}
	rel := func(a, b float64) float64 { return 100 * (b - a) / a }
	fmt.Fprintf(stdout, "\nheld-out test, greedy, %d images:  cross-entropy  ->  SCST\n", len(imgs))
	fmt.Fprintf(stdout, "  CIDEr-D  %.3f -> %.3f (%+.1f%%)\n", xe.cider, sc.cider, rel(xe.cider, sc.cider))
	fmt.Fprintf(stdout, "  BLEU-4   %.3f -> %.3f (%+.1f%%)\n", xe.bleu4, sc.bleu4, rel(xe.bleu4, sc.bleu4))
	fmt.Fprintf(stdout, "SCST: %d steps in %s; checkpoint: %s\n", ssum.Steps, time.Since(scstStart).Round(time.Second), sck)
	return nil
}

// demoScores are a checkpoint's greedy captions of the test images and
// their coco-caption scores.
type demoScores struct {
	res          map[string]string
	cider, bleu4 float64
}

// scoreDemo captions the images greedily with the checkpoint and scores
// them as coco-caption does (PTB tokenization, CIDEr-D with the test
// references' document frequencies, corpus BLEU-4).
func scoreDemo(ctx context.Context, ck string, imgs []string, gts map[string][]string, maxLen int) (demoScores, error) {
	p, err := caption.LoadPipeline(ck)
	if err != nil {
		return demoScores{}, err
	}
	res, err := caption.CaptionImages(ctx, p, imgs, 64, maxLen)
	if err != nil {
		return demoScores{}, err
	}
	s, err := eval.Score(imgs, gts, res, eval.ScoreOptions{})
	if err != nil {
		return demoScores{}, err
	}
	return demoScores{res: res, cider: s.CIDEr, bleu4: s.Bleu[3]}, nil
}

// writeDemoPreprocessor writes a CLIP preprocessor_config.json for size px.
func writeDemoPreprocessor(path string, size int) error {
	cfg := map[string]any{
		"crop_size":            map[string]int{"height": size, "width": size},
		"do_center_crop":       true,
		"do_convert_rgb":       true,
		"do_normalize":         true,
		"do_rescale":           true,
		"do_resize":            true,
		"image_mean":           []float64{0.48145466, 0.4578275, 0.40821073},
		"image_std":            []float64{0.26862954, 0.26130258, 0.27577711},
		"image_processor_type": "CLIPImageProcessor",
		"processor_class":      "GitProcessor",
		"resample":             3,
		"rescale_factor":       1.0 / 255,
		"size":                 map[string]int{"shortest_edge": size},
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	if _, err := imageproc.ParseConfig(b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
