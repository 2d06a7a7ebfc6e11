package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gitcap/gitcap/gitmodel"
)

// generationFlags registers HF generate()'s options on fs. Their defaults
// are HF GenerationConfig's; a checkpoint's generation_config.json replaces
// them (applyGenerationConfig) and flags given on the command line override
// both.
func generationFlags(fs *flagSet, o *gitmodel.GenerateOptions) {
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
	fs.Float64Var(&o.TopP, "top-p", 1, "nucleus sampling mass, in (0, 1] (1 = off)")
	fs.Int64Var(&o.Seed, "seed", 0, "sampling seed (the same seed repeats the same samples)")
}

// GenerationConfigFile is the checkpoint file HF's generate takes its
// defaults from.
const GenerationConfigFile = "generation_config.json"

// generationConfig is the part of HF's generation_config.json that the
// generation flags cover.
type generationConfig struct {
	MaxLength          *int            `json:"max_length"`
	MaxNewTokens       *int            `json:"max_new_tokens"`
	MinLength          *int            `json:"min_length"`
	MinNewTokens       *int            `json:"min_new_tokens"`
	NumBeams           *int            `json:"num_beams"`
	LengthPenalty      *float64        `json:"length_penalty"`
	EarlyStopping      json.RawMessage `json:"early_stopping"` // true, false or "never"
	NumReturnSequences *int            `json:"num_return_sequences"`
	RepetitionPenalty  *float64        `json:"repetition_penalty"`
	NoRepeatNgramSize  *int            `json:"no_repeat_ngram_size"`
	DoSample           *bool           `json:"do_sample"`
	Temperature        *float64        `json:"temperature"`
	TopK               *int            `json:"top_k"`
	TopP               *float64        `json:"top_p"`
}

// applyGenerationConfig sets every generation option that was not given on
// the command line from dir/generation_config.json, as HF's generate takes
// its defaults from the model's generation config. A missing file changes
// nothing. It returns the flags it set.
func applyGenerationConfig(dir string, fs *flagSet, o *gitmodel.GenerateOptions) ([]string, error) {
	path := filepath.Join(dir, GenerationConfigFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var gc generationConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&gc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var set []string
	take := func(name string, ok bool) bool { // the checkpoint's value, unless the flag was given
		if ok && !given[name] {
			set = append(set, name)
			return true
		}
		return false
	}
	takeDefault(take, "max-length", gc.MaxLength, &o.MaxLength)
	takeDefault(take, "max-new-tokens", gc.MaxNewTokens, &o.MaxNewTokens)
	takeDefault(take, "min-length", gc.MinLength, &o.MinLength)
	takeDefault(take, "min-new-tokens", gc.MinNewTokens, &o.MinNewTokens)
	takeDefault(take, "num-beams", gc.NumBeams, &o.NumBeams)
	takeDefault(take, "length-penalty", gc.LengthPenalty, &o.LengthPenalty)
	takeDefault(take, "num-return-sequences", gc.NumReturnSequences, &o.NumReturnSequences)
	takeDefault(take, "repetition-penalty", gc.RepetitionPenalty, &o.RepetitionPenalty)
	takeDefault(take, "no-repeat-ngram-size", gc.NoRepeatNgramSize, &o.NoRepeatNgramSize)
	takeDefault(take, "temperature", gc.Temperature, &o.Temperature)
	takeDefault(take, "top-k", gc.TopK, &o.TopK)
	takeDefault(take, "top-p", gc.TopP, &o.TopP)
	takeDefault(take, "do-sample", gc.DoSample, &o.DoSample)
	if take("early-stopping", len(gc.EarlyStopping) > 0) {
		var v any
		if err := json.Unmarshal(gc.EarlyStopping, &v); err != nil {
			return nil, fmt.Errorf("%s: early_stopping: %w", path, err)
		}
		switch v {
		case true, false:
			o.EarlyStopping = v.(bool)
		case "never":
			o.EarlyStopping = false // "never" is HF's canonical beam search; ours without early stopping
		default:
			return nil, fmt.Errorf("%s: early_stopping must be true, false or \"never\", got %s", path, gc.EarlyStopping)
		}
	}
	if err := checkGenerationFlags(o); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return set, nil
}

// checkGenerationFlags rejects what HF's generate rejects, and non-finite
// numbers, naming the flag; it maps --length-penalty 0 (no length
// normalisation) onto the API.
func checkGenerationFlags(o *gitmodel.GenerateOptions) error {
	if err := o.Check(); err != nil {
		var oe *gitmodel.OptionError
		if errors.As(err, &oe) { // name the flag and the HF name: --num-beams (num_beams)
			return usageError{fmt.Errorf("--%s (%s) %s", strings.ReplaceAll(oe.Option, "_", "-"), oe.Option, oe.Problem)}
		}
		return usageError{err}
	}
	if o.LengthPenalty == 0 {
		o.LengthPenalty = 1e-300 // L^1e-300 == 1: HF's length_penalty=0
	}
	return nil
}

// takeDefault sets *dst to the checkpoint's *v when the config has the
// field and take (the flag was not given) agrees.
func takeDefault[T any](take func(name string, ok bool) bool, name string, v, dst *T) {
	if take(name, v != nil) {
		*dst = *v
	}
}
