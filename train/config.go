package train

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/gitcap/gitcap/data/fsutil"
	"github.com/gitcap/gitcap/graph"
	"gopkg.in/yaml.v3"
)

// DataConfig names a captioned image set.
type DataConfig struct {
	// Path is the captions file: COCO captions JSON, Karpathy's
	// dataset_coco.json, HF imagefolder metadata.jsonl or CSV
	// (file_name,text).
	Path string `yaml:"path"`
	// Format is the captions file's format: "auto" (the default: detected
	// from the file's extension and contents), "coco", "karpathy", "jsonl"
	// or "csv"; a stated format must match the detected one.
	Format string `yaml:"format"`
	// Images is the directory the captions' image file names are relative
	// to; empty means the directory that holds Path.
	Images string `yaml:"images"`
	// Split selects splits of a Karpathy dataset_coco.json file, joined
	// with "+" (e.g. "train+restval"); other formats have no splits.
	Split string `yaml:"split"`
}

// AugmentConfig selects training-time image augmentations.
type AugmentConfig struct {
	// RandomResizedCrop takes a random crop (scale and aspect ratio as in
	// torchvision's RandomResizedCrop) instead of the centre crop.
	RandomResizedCrop bool `yaml:"random_resized_crop"`
	// HFlip mirrors images left-right at random. Off by default because
	// captions often say "left" or "right".
	HFlip bool `yaml:"hflip"`
}

// Config is a training run. In YAML every field is written in snake_case
// (the name in its yaml tag); each can also be set by a command-line flag of
// the same name in kebab-case (FlagName: batch_size is --batch-size; nested
// fields joined with a dot: --train.path, --augment.hflip), which overrides
// the file. Relative paths are relative to
// the working directory.
type Config struct {
	// Model is the checkpoint to start from: a HuggingFace checkpoint
	// directory (config.json + model.safetensors) or a model id such as
	// "microsoft/git-base". Exactly one of Model and ModelConfig is set.
	Model string `yaml:"model"`
	// ModelConfig is a model preset file (a config.json) for training from
	// a random initialisation.
	ModelConfig string `yaml:"model_config"`

	// Train is the training data (required).
	Train DataConfig `yaml:"train"`
	// Val is the validation data; empty Path means no validation.
	Val DataConfig `yaml:"val"`
	// OutDir receives checkpoints, the metrics log, the training-curve plot
	// and the resolved configuration. Default "runs/train".
	OutDir string `yaml:"out_dir"`
	// Seed seeds initialisation, shuffling, dropout and augmentation.
	// Default 42.
	Seed int64 `yaml:"seed"`

	// Epochs is the number of passes over the training data. Exactly one of
	// Epochs and Steps is set; if neither is, Epochs is 1. A --epochs flag
	// clears a Steps set in the file, and --steps clears Epochs.
	Epochs int `yaml:"epochs"`
	// Steps is the number of optimiser steps.
	Steps int `yaml:"steps"`
	// BatchSize is the number of image-caption pairs per micro-batch.
	// Default 8.
	BatchSize int `yaml:"batch_size"`
	// GradAccum is the number of micro-batches whose gradients are averaged
	// into one optimiser step (effective batch = BatchSize * GradAccum).
	// Default 1.
	GradAccum int `yaml:"grad_accum"`

	// LR is the peak learning rate of the text decoder and projection, and
	// of the vision encoder too unless VisionLR is set. Default 5e-5.
	LR float64 `yaml:"lr"`
	// VisionLR is the vision encoder's peak learning rate; 0 means LR.
	VisionLR float64 `yaml:"vision_lr"`
	// WeightDecay is AdamW's decoupled weight decay. Default 0.01.
	WeightDecay float64 `yaml:"weight_decay"`
	// DecayAll applies weight decay to every parameter, as plain
	// torch.optim.AdamW(model.parameters()) does; by default biases,
	// LayerNorm weights and embeddings are not decayed (graph.Role.Decayed).
	DecayAll bool `yaml:"decay_all"`
	// AdamBeta1, AdamBeta2 and AdamEps are AdamW's betas and eps. Defaults
	// 0.9, 0.999 and 1e-8 (torch's).
	AdamBeta1 float64 `yaml:"adam_beta1"`
	AdamBeta2 float64 `yaml:"adam_beta2"`
	AdamEps   float64 `yaml:"adam_eps"`
	// WarmupSteps is the number of steps of linear warm-up from 0.
	WarmupSteps int `yaml:"warmup_steps"`
	// Schedule is the decay after warm-up: "constant", "linear" (the
	// default) or "cosine".
	Schedule string `yaml:"schedule"`
	// MinLRRatio is the floor that linear and cosine decay end at, as a
	// fraction of the peak rate. Default 0.
	MinLRRatio float64 `yaml:"min_lr_ratio"`
	// MaxGradNorm clips the global gradient norm; 0 disables clipping.
	// Default 1.0.
	MaxGradNorm float64 `yaml:"max_grad_norm"`
	// LabelSmoothing is the cross-entropy label smoothing, in [0, 1).
	LabelSmoothing float64 `yaml:"label_smoothing"`
	// FreezeVision keeps the vision encoder's weights fixed.
	FreezeVision bool `yaml:"freeze_vision"`
	// GradientCheckpointing recomputes each layer's activations in the
	// backward pass instead of keeping them (HF's gradient_checkpointing):
	// less memory for one more forward pass of the layers.
	GradientCheckpointing bool `yaml:"gradient_checkpointing"`
	// Precision is the arithmetic of the training step's matrix products:
	// "fp32" (the default) or "bf16", mixed precision: the linear and
	// attention products round their inputs to bfloat16 and accumulate in
	// float32, while the weights, gradients and AdamW state stay float32
	// (graph.WithPrecision). bf16 needs a CPU with AVX512_BF16; the run
	// refuses it at setup otherwise.
	Precision string `yaml:"precision"`
	// Dropout, when set, overrides the checkpoint's hidden and attention
	// dropout probabilities; unset (null) keeps them.
	Dropout *float64 `yaml:"dropout"`

	// EvalEvery runs validation every so many optimiser steps; 0 means at
	// the end of every epoch (and at the end of training).
	EvalEvery int `yaml:"eval_every"`
	// SaveEvery saves a checkpoint every so many optimiser steps; 0 means at
	// the end of every epoch (and at the end of training).
	SaveEvery int `yaml:"save_every"`
	// SaveTotalLimit keeps only the newest so many checkpoint-STEP
	// directories (never deleting the best one), as HF's save_total_limit;
	// 0 keeps them all. checkpoint-last and checkpoint-best are always kept.
	SaveTotalLimit int `yaml:"save_total_limit"`
	// MaxTextLen truncates captions to this many tokens, [CLS] and [SEP]
	// included. Default 40.
	MaxTextLen int `yaml:"max_text_len"`
	// Bucketing groups captions of similar length into the same batch to
	// waste less compute on padding.
	Bucketing bool `yaml:"bucketing"`
	// Augment selects image augmentations for training.
	Augment AugmentConfig `yaml:"augment"`
	// Workers is the number of goroutines decoding and preprocessing
	// images; 0 means one per CPU. Default 4.
	Workers int `yaml:"workers"`
	// LogEvery writes a metrics record every so many optimiser steps.
	// Default 10.
	LogEvery int `yaml:"log_every"`
	// ValCIDEr also captions the validation images (greedy) and scores them
	// with CIDEr-D at every evaluation. Needs Val.
	ValCIDEr bool `yaml:"val_cider"`
	// GenMaxLength is the generation max_length for validation captions
	// (HF's meaning: text tokens including the initial [CLS]). Default 50.
	GenMaxLength int `yaml:"gen_max_length"`

	// Objective is the training objective: "xe" (the default:
	// cross-entropy on the reference captions) or "scst" (self-critical
	// sequence training, scst.go: fine-tune a checkpoint for CIDEr-D with
	// captions sampled at gen_max_length; batch_size counts images).
	Objective string `yaml:"objective"`
	// SCSTSamples is the number of captions sampled per image by SCST
	// (at least 2: each sample's baseline is the mean reward of the
	// others). Default 5.
	SCSTSamples int `yaml:"scst_samples"`
	// SCSTTemperature is SCST's sampling temperature. Default 1.
	SCSTTemperature float64 `yaml:"scst_temperature"`
	// SCSTTopK restricts SCST's sampling to the k most likely tokens; 0
	// (the default) samples from the whole distribution.
	SCSTTopK int `yaml:"scst_top_k"`
}

// Training objectives (Config.Objective).
const (
	ObjectiveXE   = "xe"
	ObjectiveSCST = "scst"
)

// DataFormats lists the accepted DataConfig.Format values.
func DataFormats() []string { return []string{"auto", "coco", "karpathy", "jsonl", "csv"} }

// DefaultConfig returns the defaults that fields missing from a file take.
func DefaultConfig() Config {
	return Config{
		Train:        DataConfig{Format: "auto"},
		Val:          DataConfig{Format: "auto"},
		OutDir:       "runs/train",
		Seed:         42,
		BatchSize:    8,
		GradAccum:    1,
		LR:           5e-5,
		WeightDecay:  0.01,
		AdamBeta1:    0.9,
		AdamBeta2:    0.999,
		AdamEps:      1e-8,
		Schedule:     ScheduleLinear,
		MaxGradNorm:  1.0,
		MaxTextLen:   40,
		Workers:      4,
		LogEvery:     10,
		GenMaxLength: 50,

		Precision:       "fp32",
		Objective:       ObjectiveXE,
		SCSTSamples:     5,
		SCSTTemperature: 1,
	}
}

// LoadConfig reads a YAML configuration on top of DefaultConfig. Unknown
// fields and values of the wrong type are errors that name the file, the
// line and the field. It does not call Validate, since flags may still
// change the configuration.
func LoadConfig(path string) (*Config, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	c, err := ParseConfig(buf)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig is LoadConfig on YAML text already in memory.
func ParseConfig(buf []byte) (*Config, error) {
	c := DefaultConfig()
	dec := yaml.NewDecoder(bytes.NewReader(buf))
	dec.KnownFields(true)
	err := dec.Decode(&c)
	switch {
	case errors.Is(err, io.EOF): // empty file: all defaults
	case err != nil:
		return nil, explainYAMLError(buf, err)
	default:
		// yaml.v3 silently truncates 1.5 into an int field.
		var root yaml.Node
		if err := yaml.Unmarshal(buf, &root); err != nil {
			return nil, err
		}
		if err := checkIntegers(&root, reflect.TypeOf(c), ""); err != nil {
			return nil, err
		}
	}
	if c.Epochs == 0 && c.Steps == 0 {
		c.Epochs = 1
	}
	return &c, nil
}

// explainYAMLError rewrites yaml.v3's errors so that each names the field
// by its YAML path and the expected type in words.
func explainYAMLError(buf []byte, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err // a syntax error: yaml.v3 already gives the line
	}
	reLine := regexp.MustCompile(`^line (\d+): (.*)$`)
	reUnknown := regexp.MustCompile(`^field (\S+) not found in type \S+$`)
	reBadType := regexp.MustCompile("^cannot unmarshal (!!\\w+)(?: `([^`]*)`)? into (\\S+)$")
	var root yaml.Node
	if yaml.Unmarshal(buf, &root) != nil {
		return err
	}
	var keys []yamlKey
	collectKeys(&root, "", &keys)
	msgs := make([]string, 0, len(te.Errors))
	for _, e := range te.Errors {
		m := reLine.FindStringSubmatch(e)
		if m == nil {
			msgs = append(msgs, e)
			continue
		}
		line, _ := strconv.Atoi(m[1])
		rest := m[2]
		if u := reUnknown.FindStringSubmatch(rest); u != nil {
			path := u[1]
			for _, k := range keys {
				if k.keyLine == line && k.key == u[1] {
					path = k.path
					break
				}
			}
			msgs = append(msgs, fmt.Sprintf("line %d: unknown field %q", line, path))
			continue
		}
		if b := reBadType.FindStringSubmatch(rest); b != nil {
			tag, val, typ := b[1], b[2], b[3]
			path := ""
			for _, k := range keys {
				if k.valLine != line {
					continue
				}
				if val == "" || k.value == val || (strings.HasSuffix(val, "...") && strings.HasPrefix(k.value, strings.TrimSuffix(val, "..."))) {
					path = k.path
					if val != "" {
						val = k.value // yaml.v3 shortens long values
						break
					}
				}
			}
			got := tagWords(tag)
			if val != "" {
				got += " " + strconv.Quote(val)
			}
			if path == "" {
				msgs = append(msgs, fmt.Sprintf("line %d: want %s, got %s", line, typeWords(typ), got))
			} else {
				msgs = append(msgs, fmt.Sprintf("line %d: field %q: want %s, got %s", line, path, typeWords(typ), got))
			}
			continue
		}
		msgs = append(msgs, e)
	}
	return errors.New(strings.Join(msgs, "; "))
}

// checkIntegers reports a non-integral number given for an integer field.
func checkIntegers(n *yaml.Node, t reflect.Type, prefix string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := checkIntegers(c, t, prefix); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		if t.Kind() != reflect.Struct {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			for j := 0; j < t.NumField(); j++ {
				f := t.Field(j)
				if name, _, _ := strings.Cut(f.Tag.Get("yaml"), ","); name != k.Value {
					continue
				}
				path := k.Value
				if prefix != "" {
					path = prefix + "." + k.Value
				}
				switch f.Type.Kind() {
				case reflect.Int, reflect.Int64, reflect.Int32:
					if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!float" {
						return fmt.Errorf("line %d: field %q: want an integer, got the number %q", v.Line, path, v.Value)
					}
				default:
					if err := checkIntegers(v, f.Type, path); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

type yamlKey struct {
	path, key, value string
	keyLine, valLine int
}

func collectKeys(n *yaml.Node, prefix string, out *[]yamlKey) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			collectKeys(c, prefix, out)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			*out = append(*out, yamlKey{path: path, key: k.Value, value: v.Value, keyLine: k.Line, valLine: v.Line})
			collectKeys(v, path, out)
		}
	}
}

func tagWords(tag string) string {
	switch tag {
	case "!!str":
		return "the string"
	case "!!int":
		return "the integer"
	case "!!float":
		return "the number"
	case "!!bool":
		return "the boolean"
	case "!!map":
		return "a mapping"
	case "!!seq":
		return "a list"
	case "!!null":
		return "null"
	}
	return tag
}

func typeWords(goType string) string {
	t := strings.TrimLeft(goType, "*")
	switch t {
	case "float64", "float32":
		return "a number"
	case "int", "int64", "int32":
		return "an integer"
	case "bool":
		return "true or false"
	case "string":
		return "a string"
	}
	if strings.HasPrefix(t, "train.") || strings.HasPrefix(t, "map[") {
		return "a mapping"
	}
	return t
}

// Validate checks the configuration and returns every problem found, each
// naming its field.
func (c *Config) Validate() error {
	var errs []string
	bad := func(field, format string, args ...any) {
		errs = append(errs, field+": "+fmt.Sprintf(format, args...))
	}
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

	switch {
	case c.Model == "" && c.ModelConfig == "":
		bad("model", "set model (a checkpoint) or model_config (a preset for random initialisation)")
	case c.Model != "" && c.ModelConfig != "":
		bad("model", "set model or model_config, not both")
	}
	if c.Train.Path == "" {
		bad("train.path", "required")
	}
	for _, d := range []struct {
		name string
		f    string
	}{{"train.format", c.Train.Format}, {"val.format", c.Val.Format}} {
		ok := false
		for _, f := range DataFormats() {
			ok = ok || d.f == f
		}
		if !ok {
			bad(d.name, "unknown format %q (want one of %s)", d.f, strings.Join(DataFormats(), ", "))
		}
	}
	if c.OutDir == "" {
		bad("out_dir", "required")
	}
	switch {
	case c.Epochs < 0:
		bad("epochs", "must be >= 0, got %d", c.Epochs)
	case c.Steps < 0:
		bad("steps", "must be >= 0, got %d", c.Steps)
	case c.Epochs > 0 && c.Steps > 0:
		bad("steps", "set epochs or steps, not both (epochs %d, steps %d)", c.Epochs, c.Steps)
	case c.Epochs == 0 && c.Steps == 0:
		bad("steps", "set epochs or steps")
	}
	if c.BatchSize < 1 {
		bad("batch_size", "must be >= 1, got %d", c.BatchSize)
	}
	if c.GradAccum < 1 {
		bad("grad_accum", "must be >= 1, got %d", c.GradAccum)
	}
	if !(c.LR > 0) || !finite(c.LR) {
		bad("lr", "must be > 0, got %v", c.LR)
	}
	if !(c.VisionLR >= 0) || !finite(c.VisionLR) {
		bad("vision_lr", "must be >= 0 (0 = same as lr), got %v", c.VisionLR)
	}
	if c.FreezeVision && c.VisionLR > 0 {
		bad("vision_lr", "set to %v but freeze_vision is true", c.VisionLR)
	}
	if !(c.WeightDecay >= 0) || !finite(c.WeightDecay) {
		bad("weight_decay", "must be >= 0, got %v", c.WeightDecay)
	}
	if !(c.AdamBeta1 >= 0 && c.AdamBeta1 < 1) {
		bad("adam_beta1", "must be in [0, 1), got %v", c.AdamBeta1)
	}
	if !(c.AdamBeta2 >= 0 && c.AdamBeta2 < 1) {
		bad("adam_beta2", "must be in [0, 1), got %v", c.AdamBeta2)
	}
	if !(c.AdamEps > 0) || !finite(c.AdamEps) {
		bad("adam_eps", "must be > 0, got %v", c.AdamEps)
	}
	if c.WarmupSteps < 0 {
		bad("warmup_steps", "must be >= 0, got %d", c.WarmupSteps)
	} else if c.Steps > 0 && c.WarmupSteps > c.Steps {
		bad("warmup_steps", "%d is more than steps (%d)", c.WarmupSteps, c.Steps)
	}
	switch c.Schedule {
	case ScheduleConstant, ScheduleLinear, ScheduleCosine:
	default:
		bad("schedule", "unknown schedule %q (want %s, %s or %s)", c.Schedule, ScheduleConstant, ScheduleLinear, ScheduleCosine)
	}
	if !(c.MinLRRatio >= 0 && c.MinLRRatio <= 1) {
		bad("min_lr_ratio", "must be in [0, 1], got %v", c.MinLRRatio)
	}
	if !(c.MaxGradNorm >= 0) || !finite(c.MaxGradNorm) {
		bad("max_grad_norm", "must be >= 0 (0 = no clipping), got %v", c.MaxGradNorm)
	}
	if !(c.LabelSmoothing >= 0 && c.LabelSmoothing < 1) {
		bad("label_smoothing", "must be in [0, 1), got %v", c.LabelSmoothing)
	}
	if c.Dropout != nil && !(*c.Dropout >= 0 && *c.Dropout < 1) {
		bad("dropout", "must be in [0, 1), got %v", *c.Dropout)
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"eval_every", c.EvalEvery}, {"save_every", c.SaveEvery}, {"save_total_limit", c.SaveTotalLimit}, {"workers", c.Workers}} {
		if f.v < 0 {
			bad(f.name, "must be >= 0, got %d", f.v)
		}
	}
	if c.LogEvery < 1 {
		bad("log_every", "must be >= 1, got %d", c.LogEvery)
	}
	if c.MaxTextLen < 3 {
		bad("max_text_len", "must be >= 3 ([CLS], a word, [SEP]), got %d", c.MaxTextLen)
	}
	if c.GenMaxLength < 2 {
		bad("gen_max_length", "must be >= 2, got %d", c.GenMaxLength)
	}
	if _, err := graph.ParsePrecision(c.Precision); err != nil {
		bad("precision", "%v", err)
	}
	switch c.Objective {
	case ObjectiveXE:
	case ObjectiveSCST:
		if c.SCSTSamples < 2 {
			bad("scst_samples", "must be >= 2 (the baseline is the mean reward of the other samples), got %d", c.SCSTSamples)
		}
		if !(c.SCSTTemperature > 0) || !finite(c.SCSTTemperature) {
			bad("scst_temperature", "must be > 0, got %v", c.SCSTTemperature)
		}
		if c.SCSTTopK < 0 {
			bad("scst_top_k", "must be >= 0 (0 = off), got %d", c.SCSTTopK)
		}
		if c.LabelSmoothing != 0 {
			bad("label_smoothing", "must be 0 with objective scst (the SCST loss has no smoothing), got %v", c.LabelSmoothing)
		}
	default:
		bad("objective", "unknown objective %q (want %s or %s)", c.Objective, ObjectiveXE, ObjectiveSCST)
	}
	if c.ValCIDEr && c.Val.Path == "" {
		bad("val_cider", "needs validation data (val.path)")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid training configuration: %s", strings.Join(errs, "; "))
}

// AdamW returns the optimiser settings; visionGroup names the Param.Group of
// the vision encoder, which gets VisionLR/LR as its multiplier when VisionLR
// is set.
func (c *Config) AdamW(visionGroup string) AdamWConfig {
	a := AdamWConfig{Beta1: c.AdamBeta1, Beta2: c.AdamBeta2, Eps: c.AdamEps, WeightDecay: c.WeightDecay, DecayAll: c.DecayAll}
	if c.VisionLR > 0 && c.VisionLR != c.LR {
		a.GroupLR = map[string]float64{visionGroup: c.VisionLR / c.LR}
	}
	return a
}

// StepsPerEpoch is the number of optimiser steps in one pass over
// numExamples training pairs, counted like HF's Trainer:
// ceil(numExamples/BatchSize) micro-batches, GradAccum per step (a last
// incomplete group of micro-batches still makes a step), at least 1.
func (c *Config) StepsPerEpoch(numExamples int) int {
	micro := (numExamples + c.BatchSize - 1) / max(1, c.BatchSize)
	return max(1, (micro+c.GradAccum-1)/max(1, c.GradAccum))
}

// TotalSteps is Steps, or Epochs * StepsPerEpoch(numExamples).
func (c *Config) TotalSteps(numExamples int) int {
	if c.Steps > 0 {
		return c.Steps
	}
	return c.Epochs * c.StepsPerEpoch(numExamples)
}

// LRSchedule returns the learning-rate schedule for a run of totalSteps
// optimiser steps.
func (c *Config) LRSchedule(totalSteps int) Schedule {
	return Schedule{
		Kind:        c.Schedule,
		BaseLR:      c.LR,
		WarmupSteps: c.WarmupSteps,
		TotalSteps:  totalSteps,
		MinLRRatio:  c.MinLRRatio,
	}
}

// WriteYAML saves the configuration (atomically), for example as the
// resolved configuration of a run in its output directory.
func (c *Config) WriteYAML(path string) error {
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// RegisterFlags defines one flag per field on fs, named like the YAML field
// in kebab-case (FlagName; nested fields joined with a dot), bound to c:
// parsing a command line after loading the file overrides the file's values. The flags' defaults
// are c's current values. --epochs clears steps and --steps clears epochs.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Model, "model", c.Model, "checkpoint to start from: HF checkpoint directory or model id")
	fs.StringVar(&c.ModelConfig, "model-config", c.ModelConfig, "model preset (config.json) for random initialisation")
	fs.StringVar(&c.Train.Path, "train.path", c.Train.Path, "training captions file or directory")
	fs.StringVar(&c.Train.Format, "train.format", c.Train.Format, "training captions format: "+strings.Join(DataFormats(), ", "))
	fs.StringVar(&c.Train.Images, "train.images", c.Train.Images, "training images directory (default: beside the captions file)")
	fs.StringVar(&c.Train.Split, "train.split", c.Train.Split, "Karpathy splits to train on, e.g. train+restval")
	fs.StringVar(&c.Val.Path, "val.path", c.Val.Path, "validation captions file or directory (empty: no validation)")
	fs.StringVar(&c.Val.Format, "val.format", c.Val.Format, "validation captions format: "+strings.Join(DataFormats(), ", "))
	fs.StringVar(&c.Val.Images, "val.images", c.Val.Images, "validation images directory (default: beside the captions file)")
	fs.StringVar(&c.Val.Split, "val.split", c.Val.Split, "Karpathy split to validate on, e.g. val")
	fs.StringVar(&c.OutDir, "out-dir", c.OutDir, "output directory for checkpoints, metrics and plots")
	fs.Int64Var(&c.Seed, "seed", c.Seed, "random seed")
	fs.Var(&exclusiveInt{&c.Epochs, &c.Steps}, "epochs", "passes over the training data (clears steps)")
	fs.Var(&exclusiveInt{&c.Steps, &c.Epochs}, "steps", "optimiser steps (clears epochs)")
	fs.IntVar(&c.BatchSize, "batch-size", c.BatchSize, "image-caption pairs per micro-batch")
	fs.IntVar(&c.GradAccum, "grad-accum", c.GradAccum, "micro-batches per optimiser step")
	fs.Float64Var(&c.LR, "lr", c.LR, "peak learning rate")
	fs.Float64Var(&c.VisionLR, "vision-lr", c.VisionLR, "vision encoder peak learning rate (0 = lr)")
	fs.Float64Var(&c.WeightDecay, "weight-decay", c.WeightDecay, "AdamW weight decay")
	fs.BoolVar(&c.DecayAll, "decay-all", c.DecayAll, "decay biases, LayerNorm weights and embeddings too")
	fs.Float64Var(&c.AdamBeta1, "adam-beta1", c.AdamBeta1, "AdamW beta1")
	fs.Float64Var(&c.AdamBeta2, "adam-beta2", c.AdamBeta2, "AdamW beta2")
	fs.Float64Var(&c.AdamEps, "adam-eps", c.AdamEps, "AdamW eps")
	fs.IntVar(&c.WarmupSteps, "warmup-steps", c.WarmupSteps, "linear warm-up steps")
	fs.StringVar(&c.Schedule, "schedule", c.Schedule, "learning-rate decay: constant, linear or cosine")
	fs.Float64Var(&c.MinLRRatio, "min-lr-ratio", c.MinLRRatio, "decay floor as a fraction of the peak rate")
	fs.Float64Var(&c.MaxGradNorm, "max-grad-norm", c.MaxGradNorm, "clip the global gradient norm (0 = off)")
	fs.Float64Var(&c.LabelSmoothing, "label-smoothing", c.LabelSmoothing, "cross-entropy label smoothing")
	fs.BoolVar(&c.FreezeVision, "freeze-vision", c.FreezeVision, "keep the vision encoder fixed")
	fs.BoolVar(&c.GradientCheckpointing, "gradient-checkpointing", c.GradientCheckpointing, "recompute layer activations in the backward pass (less memory, slower)")
	fs.StringVar(&c.Precision, "precision", c.Precision, "matrix products of the training step: fp32, or bf16 (mixed precision: bf16 inputs, float32 sums, float32 weights; needs AVX512_BF16)")
	fs.Var(&optFloat{&c.Dropout}, "dropout", "override hidden and attention dropout (\"none\" = keep the checkpoint's)")
	fs.IntVar(&c.EvalEvery, "eval-every", c.EvalEvery, "validate every N steps (0 = every epoch)")
	fs.IntVar(&c.SaveEvery, "save-every", c.SaveEvery, "checkpoint every N steps (0 = every epoch)")
	fs.IntVar(&c.SaveTotalLimit, "save-total-limit", c.SaveTotalLimit, "keep the newest N checkpoint-STEP directories and the best (0 = all)")
	fs.IntVar(&c.MaxTextLen, "max-text-len", c.MaxTextLen, "caption length limit in tokens, [CLS] and [SEP] included")
	fs.BoolVar(&c.Bucketing, "bucketing", c.Bucketing, "batch captions of similar length together")
	fs.BoolVar(&c.Augment.RandomResizedCrop, "augment.random-resized-crop", c.Augment.RandomResizedCrop, "random resized crop augmentation")
	fs.BoolVar(&c.Augment.HFlip, "augment.hflip", c.Augment.HFlip, "random horizontal flip augmentation")
	fs.IntVar(&c.Workers, "workers", c.Workers, "image preprocessing goroutines (0 = one per CPU)")
	fs.IntVar(&c.LogEvery, "log-every", c.LogEvery, "metrics record every N steps")
	fs.BoolVar(&c.ValCIDEr, "val-cider", c.ValCIDEr, "score validation captions with CIDEr-D")
	fs.IntVar(&c.GenMaxLength, "gen-max-length", c.GenMaxLength, "generation max_length for validation captions")
	fs.StringVar(&c.Objective, "objective", c.Objective, "training objective: xe (cross-entropy) or scst (self-critical sequence training for CIDEr-D)")
	fs.IntVar(&c.SCSTSamples, "scst-samples", c.SCSTSamples, "scst: captions sampled per image")
	fs.Float64Var(&c.SCSTTemperature, "scst-temperature", c.SCSTTemperature, "scst: sampling temperature")
	fs.IntVar(&c.SCSTTopK, "scst-top-k", c.SCSTTopK, "scst: sample among the k most likely tokens (0: all)")
}

// FlagName is the command-line flag of a YAML key: the same name in
// kebab-case (batch_size -> --batch-size, augment.random_resized_crop ->
// --augment.random-resized-crop).
func FlagName(yamlKey string) string { return strings.ReplaceAll(yamlKey, "_", "-") }

// Flags is a training command line being parsed: RegisterFlags plus
// --config on a flag set, read back with Config after the set is parsed.
type Flags struct {
	scratch Config
	path    string
}

// NewFlags registers --config and one flag per configuration field on fs.
func NewFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{scratch: DefaultConfig()}
	fs.StringVar(&f.path, "config", "", "YAML file with the training configuration (flags override it)")
	f.scratch.RegisterFlags(fs)
	return f
}

// ConfigPath is the --config given ("" if none).
func (f *Flags) ConfigPath() string { return f.path }

// Config builds the configuration from the parsed fs: DefaultConfig, then
// the YAML file named by --config (or defaultPath when --config was not
// given), then every configuration flag given, which overrides the file;
// the result is validated. Flags of fs that are not configuration fields
// (a command's own) are ignored.
func (f *Flags) Config(fs *flag.FlagSet, defaultPath string) (*Config, error) {
	path := f.path
	if path == "" {
		path = defaultPath
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["epochs"] && set["steps"] {
		return nil, errors.New("give --epochs or --steps, not both")
	}
	cfg := DefaultConfig()
	if path != "" {
		c, err := LoadConfig(path)
		if err != nil {
			return nil, err
		}
		cfg = *c
	} else if !set["epochs"] && !set["steps"] {
		cfg.Epochs = 1
	}
	// Apply the flags given on top of the file by replaying their values on
	// a flag set bound to cfg.
	apply := flag.NewFlagSet(fs.Name(), flag.ContinueOnError)
	apply.SetOutput(io.Discard)
	cfg.RegisterFlags(apply)
	var err error
	fs.Visit(func(fl *flag.Flag) {
		if err != nil || apply.Lookup(fl.Name) == nil {
			return
		}
		if e := apply.Set(fl.Name, fl.Value.String()); e != nil {
			err = fmt.Errorf("--%s: %w", fl.Name, e)
		}
	})
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		if path != "" {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return nil, err
	}
	return &cfg, nil
}

// ParseArgs builds a configuration from a command line: DefaultConfig, then
// the YAML file named by --config (if given), then every other flag given,
// which overrides the file; the result is validated. fs gets the flags
// (RegisterFlags plus --config); its error handling decides what a bad flag
// does.
func ParseArgs(fs *flag.FlagSet, args []string) (*Config, error) {
	f := NewFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f.Config(fs, "")
}

// exclusiveInt is an int flag that zeroes another field when set.
type exclusiveInt struct{ v, other *int }

func (e *exclusiveInt) String() string {
	if e == nil || e.v == nil {
		return "0"
	}
	return strconv.Itoa(*e.v)
}

func (e *exclusiveInt) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want an integer")
	}
	*e.v = n
	if n > 0 {
		*e.other = 0
	}
	return nil
}

// optFloat is a flag for an optional number; "none" or "" unsets it.
type optFloat struct{ p **float64 }

func (o *optFloat) String() string {
	if o == nil || o.p == nil || *o.p == nil {
		return "none"
	}
	return strconv.FormatFloat(**o.p, 'g', -1, 64)
}

func (o *optFloat) Set(s string) error {
	if s == "" || s == "none" {
		*o.p = nil
		return nil
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return errors.New("want a number or \"none\"")
	}
	*o.p = &x
	return nil
}
