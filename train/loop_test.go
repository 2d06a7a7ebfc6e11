package train

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/fsutil"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/graph"
)

// shapesSet writes a COCO captions file over the fixture shape images with
// the captions the tiny model was pre-trained on, and returns its path.
func shapesSet(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(fixtures.Path(t, "git-tiny", "reference", "pretrain_captions.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		Captions map[string]string `json:"captions"`
	}
	if err := json.Unmarshal(b, &ref); err != nil {
		t.Fatal(err)
	}
	type img struct {
		ID       int    `json:"id"`
		FileName string `json:"file_name"`
	}
	type ann struct {
		ID      int    `json:"id"`
		ImageID int    `json:"image_id"`
		Caption string `json:"caption"`
	}
	var coco struct {
		Images      []img `json:"images"`
		Annotations []ann `json:"annotations"`
	}
	imgDir := fixtures.Path(t, "images")
	matches, err := filepath.Glob(filepath.Join(imgDir, "shape_*.png"))
	if err != nil || len(matches) == 0 {
		t.Fatalf("no shape images in %s: %v", imgDir, err)
	}
	for i, m := range matches {
		name := filepath.Base(m)
		c, ok := ref.Captions[name]
		if !ok {
			t.Fatalf("no caption for %s", name)
		}
		coco.Images = append(coco.Images, img{i + 1, name})
		coco.Annotations = append(coco.Annotations, ann{i + 1, i + 1, c})
	}
	out, _ := json.Marshal(coco)
	path := filepath.Join(t.TempDir(), "captions.json")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func tinyConfig(t *testing.T, out string, steps int) *Config {
	t.Helper()
	caps := shapesSet(t)
	c := DefaultConfig()
	c.Model = fixtures.Path(t, "git-tiny")
	c.Train = DataConfig{Path: caps, Format: "coco", Images: fixtures.Path(t, "images")}
	c.OutDir = out
	c.Steps, c.Epochs = steps, 0
	c.BatchSize = 3
	c.LR = 3e-3
	c.WarmupSteps = 2
	c.Schedule = ScheduleConstant
	c.LogEvery = 5
	c.SaveEvery = 0
	c.Workers = 2
	c.Seed = 7
	return &c
}

func TestRunLossFalls(t *testing.T) {
	for _, precision := range []string{"fp32", "bf16"} { // bf16: mixed precision through the run loop
		t.Run(precision, func(t *testing.T) {
			if p, _ := graph.ParsePrecision(precision); graph.CheckPrecision(p) != nil {
				t.Skip(graph.CheckPrecision(p))
			}
			dir := t.TempDir()
			steps := 30
			if testing.Short() {
				steps = 20 // the -short tier: the loss still halves
			}
			cfg := tinyConfig(t, dir, steps)
			cfg.Precision = precision
			var log strings.Builder
			sum, err := Run(context.Background(), cfg, &log)
			if err != nil {
				t.Fatalf("%v\n%s", err, log.String())
			}
			t.Logf("first loss %.4f, last %.4f, %v", sum.FirstLoss, sum.LastLoss, sum.Elapsed)
			if !(sum.LastLoss < 0.5*sum.FirstLoss) {
				t.Errorf("loss %.4f -> %.4f: did not fall below half\n%s", sum.FirstLoss, sum.LastLoss, log.String())
			}
			if sum.Steps != steps {
				t.Errorf("steps %d, want %d", sum.Steps, steps)
			}
			ck := filepath.Join(dir, LastCheckpoint)
			for _, f := range []string{"config.json", "model.safetensors", "vocab.txt", "preprocessor_config.json", OptimizerFile, StateFile} {
				if _, err := os.Stat(filepath.Join(ck, f)); err != nil {
					t.Error(err)
				}
			}
			for _, f := range []string{MetricsFile, PlotFile, ConfigFile} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Error(err)
				}
			}
			p, err := caption.LoadPipeline(ck)
			if err != nil {
				t.Fatal(err)
			}
			if p.Model.Params.Count() == 0 {
				t.Error("no parameters")
			}

		})
	}
}

func weights(t *testing.T, dir string) map[string][]float32 {
	t.Helper()
	m, err := gitmodel.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, p := range m.Params.All() {
		out[p.Name] = append([]float32(nil), p.F32()...)
	}
	return out
}

// TestResumeIsExact interrupts a run (Ctrl-C, i.e. a cancelled context)
// part-way, resumes it from the checkpoint written on the way out, and
// requires bit-identical weights to an uninterrupted run. The run uses what
// resuming must restore: a cosine schedule, gradient accumulation, dropout
// and random-resized-crop augmentation.
func TestResumeIsExact(t *testing.T) {
	const total = 12
	setup := func(dir string) *Config {
		cfg := tinyConfig(t, dir, total)
		cfg.Schedule, cfg.WarmupSteps = ScheduleCosine, 3
		cfg.BatchSize, cfg.GradAccum = 2, 2
		cfg.Augment.RandomResizedCrop = true
		cfg.LogEvery = 1
		return cfg
	}
	full := t.TempDir()
	if _, err := Run(context.Background(), setup(full), nil); err != nil {
		t.Fatal(err)
	}

	part := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	sum, err := Run(ctx, setup(part), &cancelAfter{n: 5, cancel: cancel})
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.Steps >= total {
		t.Fatalf("the first run was not interrupted: %+v", sum)
	}
	sum, err = Resume(context.Background(), setup(part), filepath.Join(part, LastCheckpoint), nil)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != total {
		t.Fatalf("resumed run ended at step %d, want %d", sum.Steps, total)
	}
	a, b := weights(t, filepath.Join(full, LastCheckpoint)), weights(t, filepath.Join(part, LastCheckpoint))
	for name, wa := range a {
		wb := b[name]
		for i := range wa {
			if wa[i] != wb[i] {
				t.Fatalf("%s[%d]: uninterrupted %g, resumed %g", name, i, wa[i], wb[i])
			}
		}
	}
	// A fresh run into the same directory is refused rather than mixed in.
	if _, err := Run(context.Background(), setup(part), nil); err == nil || !strings.Contains(err.Error(), "already holds a run") {
		t.Errorf("a new run into a used out_dir: %v", err)
	}
}

func TestCancelSavesCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 1000)
	ctx, cancel := context.WithCancel(context.Background())
	w := &cancelAfter{n: 3, cancel: cancel}
	cfg.LogEvery = 1
	sum, err := Run(ctx, cfg, w)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.Steps >= 1000 {
		t.Fatalf("summary %+v", sum)
	}
	b, err := os.ReadFile(filepath.Join(dir, LastCheckpoint, StateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st TrainerState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	if st.Step != sum.Steps {
		t.Errorf("checkpoint at step %d, summary says %d", st.Step, sum.Steps)
	}
}

// cancelAfter cancels after n log lines that start with "step".
type cancelAfter struct {
	n      int
	cancel func()
}

func (c *cancelAfter) Write(p []byte) (int, error) {
	if strings.HasPrefix(string(p), "step") {
		c.n--
		if c.n == 0 {
			c.cancel()
		}
	}
	return len(p), nil
}

func TestNonFiniteLossStops(t *testing.T) {
	src := fixtures.Path(t, "git-tiny")
	bad := t.TempDir()
	m, err := gitmodel.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	// Non-finite weights are refused at load, so make finite ones so large
	// that the forward pass overflows into NaN.
	w := m.Params.Get("git.embeddings.LayerNorm.weight").F32()
	for i := range w {
		w[i] = math.MaxFloat32
	}
	if err := m.SaveWeights(filepath.Join(bad, "model.safetensors")); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "preprocessor_config.json"} {
		if err := fsutil.CopyFile(filepath.Join(src, f), filepath.Join(bad, f)); err != nil {
			t.Fatal(err)
		}
	}
	cfg := tinyConfig(t, t.TempDir(), 5)
	cfg.Model = bad
	_, err = Run(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "loss is NaN") {
		t.Fatalf("err = %v, want a NaN loss error", err)
	}
}

// maxChange returns the largest |after-before| over the parameters whose
// names satisfy keep.
func maxChange(before, after map[string][]float32, keep func(string) bool) float64 {
	worst := 0.0
	for name, b := range before {
		if !keep(name) {
			continue
		}
		for i, v := range b {
			if d := math.Abs(float64(after[name][i] - v)); d > worst {
				worst = d
			}
		}
	}
	return worst
}

func isVision(name string) bool { return strings.HasPrefix(name, "git.image_encoder.") }

// TestFreezeVisionAndVisionLR checks the two encoder controls: a frozen
// encoder does not move at all, and a tiny vision learning rate moves it
// far less than the decoder.
func TestFreezeVisionAndVisionLR(t *testing.T) {
	start := weights(t, fixtures.Path(t, "git-tiny"))
	for _, c := range []struct {
		name     string
		freeze   bool
		visionLR float64
	}{{"frozen", true, 0}, {"tiny vision lr", false, 1e-9}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := tinyConfig(t, dir, 4)
			cfg.FreezeVision, cfg.VisionLR = c.freeze, c.visionLR
			if _, err := Run(context.Background(), cfg, io.Discard); err != nil {
				t.Fatal(err)
			}
			end := weights(t, filepath.Join(dir, LastCheckpoint))
			vis := maxChange(start, end, isVision)
			text := maxChange(start, end, func(n string) bool { return !isVision(n) })
			if text < 1e-4 {
				t.Fatalf("the decoder barely moved (%.3g): the run did not train", text)
			}
			if c.freeze && vis != 0 {
				t.Errorf("frozen encoder moved by %.3g", vis)
			}
			if !c.freeze && vis > 1e-6 {
				t.Errorf("encoder moved by %.3g with vision_lr 1e-9", vis)
			}
		})
	}
}

// TestGradAccumulationTrains runs with two micro-batches per step: the run
// takes the requested number of optimiser steps and the loss falls.
func TestGradAccumulationTrains(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 15)
	cfg.BatchSize, cfg.GradAccum = 2, 2
	sum, err := Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != 15 {
		t.Errorf("%d optimiser steps, want 15", sum.Steps)
	}
	if !(sum.LastLoss < 0.7*sum.FirstLoss) {
		t.Errorf("loss %.4f -> %.4f with grad_accum 2", sum.FirstLoss, sum.LastLoss)
	}
}

// TestInterruptedEvaluationRunsOnResume cancels the run just as step 3's
// validation starts; the resumed run must evaluate step 3 first, giving the
// same validation record as an uninterrupted run.
func TestInterruptedEvaluationRunsOnResume(t *testing.T) {
	setup := func(dir string) *Config {
		cfg := tinyConfig(t, dir, 5)
		cfg.Val = cfg.Train
		cfg.EvalEvery, cfg.LogEvery = 3, 1
		return cfg
	}
	valAt := func(dir string, step int) float64 {
		recs, err := ReadMetrics(filepath.Join(dir, MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if r.Step == step && !math.IsNaN(r.ValLoss) {
				return r.ValLoss
			}
		}
		return math.NaN()
	}
	full := t.TempDir()
	if _, err := Run(context.Background(), setup(full), nil); err != nil {
		t.Fatal(err)
	}
	part := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	sum, err := Run(ctx, setup(part), &cancelAfter{n: 3, cancel: cancel}) // the step-3 line precedes its evaluation
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	if !sum.Interrupted || sum.Steps != 3 {
		t.Fatalf("want an interruption at step 3, got %+v", sum)
	}
	if !math.IsNaN(valAt(part, 3)) {
		t.Fatal("the evaluation was not interrupted; the test does not test anything")
	}
	if _, err := Resume(context.Background(), setup(part), filepath.Join(part, LastCheckpoint), nil); err != nil {
		t.Fatal(err)
	}
	if a, b := valAt(full, 3), valAt(part, 3); math.IsNaN(b) || a != b {
		t.Errorf("validation loss at step 3: uninterrupted %v, resumed %v", a, b)
	}
}

// TestUnreadableImageIsSkippedAndCountedOnce adds an image that does not
// exist (with two captions) to the set: training goes on over several
// epochs and the summary counts the image once.
func TestUnreadableImageIsSkippedAndCountedOnce(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig(t, dir, 8)
	b, err := os.ReadFile(cfg.Train.Path)
	if err != nil {
		t.Fatal(err)
	}
	var coco map[string][]map[string]any
	if err := json.Unmarshal(b, &coco); err != nil {
		t.Fatal(err)
	}
	coco["images"] = append(coco["images"], map[string]any{"id": 99, "file_name": "missing.png"})
	coco["annotations"] = append(coco["annotations"],
		map[string]any{"id": 99, "image_id": 99, "caption": "nothing"}, map[string]any{"id": 100, "image_id": 99, "caption": "still nothing"})
	b, _ = json.Marshal(coco)
	cfg.Train.Path = filepath.Join(dir, "with_missing.json")
	if err := os.WriteFile(cfg.Train.Path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sum, err := Run(context.Background(), cfg, &log)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Steps != 8 || sum.Corrupt != 1 {
		t.Errorf("steps %d, unreadable images %d; want 8 and 1\n%s", sum.Steps, sum.Corrupt, log.String())
	}
	if n := strings.Count(log.String(), "missing.png"); n != 1 {
		t.Errorf("the missing image is reported %d times", n)
	}
}
