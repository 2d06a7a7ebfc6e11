package train

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const fullYAML = `# a complete configuration
model: microsoft/git-base
train:
  path: data/train.jsonl
  format: jsonl
  images: data/images
val:
  path: data/val.json
out_dir: runs/x
seed: 7
steps: 2000
batch_size: 32
grad_accum: 2
lr: 1e-4
vision_lr: 1e-5
weight_decay: 0.05
decay_all: true
adam_beta2: 0.98
warmup_steps: 100
schedule: cosine
min_lr_ratio: 0.1
max_grad_norm: 0.5
label_smoothing: 0.1
freeze_vision: false
gradient_checkpointing: true
precision: bf16
dropout: 0
eval_every: 500
save_every: 1000
max_text_len: 32
bucketing: true
augment: {random_resized_crop: true, hflip: true}
workers: 3
log_every: 5
val_cider: true
gen_max_length: 30
`

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfigReadsEveryField(t *testing.T) {
	c, err := LoadConfig(writeFile(t, "run.yaml", fullYAML))
	if err != nil {
		t.Fatal(err)
	}
	zero := 0.0
	want := DefaultConfig()
	want.Model = "microsoft/git-base"
	want.Train = DataConfig{Path: "data/train.jsonl", Format: "jsonl", Images: "data/images"}
	want.Val = DataConfig{Path: "data/val.json", Format: "auto"}
	want.OutDir = "runs/x"
	want.Seed = 7
	want.Steps = 2000
	want.BatchSize, want.GradAccum = 32, 2
	want.LR, want.VisionLR, want.WeightDecay, want.DecayAll = 1e-4, 1e-5, 0.05, true
	want.AdamBeta2 = 0.98
	want.WarmupSteps, want.Schedule, want.MinLRRatio = 100, "cosine", 0.1
	want.MaxGradNorm, want.LabelSmoothing = 0.5, 0.1
	want.Dropout = &zero
	want.GradientCheckpointing = true
	want.Precision = "bf16"
	want.EvalEvery, want.SaveEvery, want.MaxTextLen, want.Bucketing = 500, 1000, 32, true
	want.Augment = AugmentConfig{RandomResizedCrop: true, HFlip: true}
	want.Workers, want.LogEvery, want.ValCIDEr, want.GenMaxLength = 3, 5, true, 30
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("valid configuration rejected: %v", err)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	c, err := LoadConfig(writeFile(t, "min.yaml", "model: m\ntrain: {path: t.jsonl}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Epochs != 1 || c.Steps != 0 || c.LR != 5e-5 || c.BatchSize != 8 || c.Schedule != "linear" ||
		c.MaxGradNorm != 1 || c.Augment.HFlip || c.Dropout != nil || c.Train.Format != "auto" {
		t.Errorf("defaults not applied: %+v", *c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("minimal configuration rejected: %v", err)
	}
	empty, err := LoadConfig(writeFile(t, "empty.yaml", ""))
	if err != nil {
		t.Fatalf("empty file: %v", err)
	}
	if empty.LR != 5e-5 {
		t.Error("empty file did not give the defaults")
	}
}

func TestLoadConfigErrorsNameFileAndField(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown field", "model: m\nlearning_rate: 1e-4\n", []string{"bad.yaml", "line 2", `unknown field "learning_rate"`}},
		{"unknown nested field", "model: m\naugment:\n  vflip: true\n", []string{"bad.yaml", "line 3", `unknown field "augment.vflip"`}},
		{"number expected", "model: m\nlr: fast\n", []string{"bad.yaml", "line 2", `field "lr"`, "want a number", `"fast"`}},
		{"integer expected", "steps: 1.5\n", []string{"bad.yaml", `field "steps"`, "want an integer"}},
		{"boolean expected", "augment: {hflip: maybe}\n", []string{"bad.yaml", `field "augment.hflip"`, "true or false"}},
		{"mapping expected", "train: data.jsonl\n", []string{"bad.yaml", `field "train"`, "want a mapping"}},
		{"syntax error", "model: [unclosed\n", []string{"bad.yaml", "line"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := LoadConfig(writeFile(t, "bad.yaml", tc.yaml))
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: error %v", err)
	}
}

func TestValidateNamesEveryBadField(t *testing.T) {
	cases := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no model", func(c *Config) { c.Model = "" }, "model: set model"},
		{"model and preset", func(c *Config) { c.ModelConfig = "tiny.json" }, "not both"},
		{"no training data", func(c *Config) { c.Train.Path = "" }, "train.path: required"},
		{"unknown format", func(c *Config) { c.Val.Format = "parquet" }, `val.format: unknown format "parquet"`},
		{"epochs and steps", func(c *Config) { c.Steps = 10 }, "set epochs or steps, not both"},
		{"zero batch", func(c *Config) { c.BatchSize = 0 }, "batch_size"},
		{"zero lr", func(c *Config) { c.LR = 0 }, "lr: must be > 0"},
		{"schedule", func(c *Config) { c.Schedule = "step" }, `schedule: unknown schedule "step"`},
		{"floor", func(c *Config) { c.MinLRRatio = 1.5 }, "min_lr_ratio"},
		{"smoothing", func(c *Config) { c.LabelSmoothing = 1 }, "label_smoothing"},
		{"dropout", func(c *Config) { d := -0.1; c.Dropout = &d }, "dropout"},
		{"cider without val", func(c *Config) { c.ValCIDEr = true }, "val_cider: needs validation data"},
		{"vision lr while frozen", func(c *Config) { c.FreezeVision, c.VisionLR = true, 1e-5 }, "freeze_vision"},
		{"warm-up beyond steps", func(c *Config) { c.Epochs, c.Steps, c.WarmupSteps = 0, 10, 11 }, "warmup_steps"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Model, c.Train.Path, c.Epochs = "m", "t.jsonl", 1
			tc.change(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFlagsOverrideFile(t *testing.T) {
	path := writeFile(t, "run.yaml", "model: m\ntrain: {path: t.jsonl}\nepochs: 3\nlr: 5e-5\nbatch_size: 16\n")
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c, err := ParseArgs(fs, []string{"--config", path, "--steps", "100", "--lr", "1e-4", "--augment.hflip", "--dropout", "0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Steps != 100 || c.Epochs != 0 {
		t.Errorf("--steps 100 over epochs: 3 gave steps %d epochs %d, want 100 and 0", c.Steps, c.Epochs)
	}
	if c.LR != 1e-4 {
		t.Errorf("lr %v, want the flag's 1e-4", c.LR)
	}
	if c.BatchSize != 16 {
		t.Errorf("batch_size %d, want the file's 16", c.BatchSize)
	}
	if !c.Augment.HFlip || c.Dropout == nil || *c.Dropout != 0.2 {
		t.Errorf("augment.hflip %v dropout %v", c.Augment.HFlip, c.Dropout)
	}

	// RegisterFlags alone, on a loaded file.
	c2, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	fs2 := flag.NewFlagSet("train", flag.ContinueOnError)
	fs2.SetOutput(io.Discard)
	c2.RegisterFlags(fs2)
	if err := fs2.Parse([]string{"--epochs", "5", "--train.path", "other.jsonl"}); err != nil {
		t.Fatal(err)
	}
	if c2.Epochs != 5 || c2.Train.Path != "other.jsonl" || c2.LR != 5e-5 {
		t.Errorf("after flags: epochs %d train.path %q lr %v", c2.Epochs, c2.Train.Path, c2.LR)
	}
}

func TestParseArgsErrors(t *testing.T) {
	good := writeFile(t, "run.yaml", "model: m\ntrain: {path: t.jsonl}\n")
	bad := writeFile(t, "bad.yaml", "model: m\nlr: -1\ntrain: {path: t.jsonl}\n")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"both epochs and steps", []string{"--config", good, "--epochs", "2", "--steps", "3"}, "not both"},
		{"bad flag value", []string{"--config", good, "--lr", "fast"}, "lr"},
		{"invalid after merge names the file", []string{"--config", bad}, "bad.yaml"},
		{"no config and no model", []string{"--train.path", "x"}, "model"},
		{"stray argument", []string{"--config", good, "extra"}, `unexpected argument "extra"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("train", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			_, err := ParseArgs(fs, tc.args)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	c, err := ParseArgs(fs, []string{"--model", "m", "--train.path", "t.jsonl"})
	if err != nil || c.Epochs != 1 {
		t.Errorf("flags only: %v, epochs %v", err, c)
	}
}

func TestConfigHelpers(t *testing.T) {
	c := DefaultConfig()
	c.Model, c.Train.Path, c.Epochs = "m", "t", 2
	c.BatchSize, c.GradAccum = 8, 3
	if got := c.StepsPerEpoch(100); got != 5 { // 13 micro-batches -> 5 steps
		t.Errorf("StepsPerEpoch(100) = %d, want 5", got)
	}
	if got := c.TotalSteps(100); got != 10 {
		t.Errorf("TotalSteps(100) = %d, want 10", got)
	}
	c.VisionLR = 5e-6
	a := c.AdamW("vision")
	if a.GroupLR["vision"] != 5e-6/5e-5 || a.Beta1 != 0.9 || a.Eps != 1e-8 {
		t.Errorf("AdamW() = %+v", a)
	}
	if s := c.LRSchedule(10); s.Validate() != nil || s.TotalSteps != 10 || s.BaseLR != c.LR {
		t.Errorf("LRSchedule = %+v", s)
	}
	path := filepath.Join(t.TempDir(), "resolved.yaml")
	if err := c.WriteYAML(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*back, c) {
		t.Errorf("WriteYAML round trip:\n got  %+v\n want %+v", *back, c)
	}
}

// TestEveryYAMLKeyHasTheSameNamedKebabFlag walks Config's yaml tags: each
// key (nested ones joined with a dot) is a flag of the same name in
// kebab-case, and there is no flag without a key.
func TestEveryYAMLKeyHasTheSameNamedKebabFlag(t *testing.T) {
	var keys []string
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if prefix != "" {
				name = prefix + "." + name
			}
			if f.Type.Kind() == reflect.Struct {
				walk(f.Type, name)
				continue
			}
			keys = append(keys, name)
		}
	}
	walk(reflect.TypeOf(Config{}), "")
	c := DefaultConfig()
	fs := flag.NewFlagSet("train", flag.ContinueOnError)
	c.RegisterFlags(fs)
	seen := map[string]bool{}
	for _, k := range keys {
		fl := FlagName(k)
		seen[fl] = true
		if fs.Lookup(fl) == nil {
			t.Errorf("yaml key %s has no flag --%s", k, fl)
		}
		if strings.Contains(fl, "_") {
			t.Errorf("flag --%s is not kebab-case", fl)
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !seen[f.Name] {
			t.Errorf("flag --%s has no yaml key", f.Name)
		}
	})
}
