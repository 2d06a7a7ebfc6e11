package gitmodel

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// checkFinite reports a tensor holding NaN or ±Inf, naming the file, the
// tensor, the first bad index and how many values are bad. Such weights
// load without complaint otherwise and then caption every image as "".
func checkFinite(path, name string, vals []float32) error {
	first, n := -1, 0
	for i, v := range vals {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	if n == 0 {
		return nil
	}
	return fmt.Errorf("%s: tensor %q holds non-finite weights (%d of %d values; the first, at index %d, is %v)", path, name, n, len(vals), first, vals[first])
}

// fitError is LoadWeights' error when the tensors do not match the
// parameters the config describes. Its message lists a few names per kind
// (a config with a wrong layer count mismatches hundreds of tensors).
type fitError struct {
	files                         []string
	missing, unexpected, misshape []string
}

// maxListed is how many tensor names a fitError message shows per kind.
const maxListed = 3

func listSome(kind string, names []string) string {
	s := fmt.Sprintf("%d %s: %s", len(names), kind, strings.Join(names[:min(len(names), maxListed)], ", "))
	if len(names) > maxListed {
		s += fmt.Sprintf(", ... (%d more)", len(names)-maxListed)
	}
	return s
}

func (e *fitError) problems() string {
	var ps []string
	// A wrongly shaped tensor is not loaded, so LoadWeights also counts it
	// as missing; list it once.
	shaped := map[string]bool{}
	for _, m := range e.misshape {
		name, _, _ := strings.Cut(m, " (")
		shaped[name] = true
	}
	var missing []string
	for _, m := range e.missing {
		if !shaped[m] {
			missing = append(missing, m)
		}
	}
	if len(missing) > 0 {
		ps = append(ps, listSome("missing tensors", missing))
	}
	if len(e.unexpected) > 0 {
		ps = append(ps, listSome("unexpected tensors", e.unexpected))
	}
	if len(e.misshape) > 0 {
		ps = append(ps, listSome("wrongly shaped tensors", e.misshape))
	}
	return strings.Join(ps, "; ")
}

func (e *fitError) Error() string {
	return fmt.Sprintf("%s: checkpoint does not fit the config: %s", strings.Join(e.files, ", "), e.problems())
}

// shapeFields are the config.json keys that fix parameter shapes, with
// the GitConfig / GitVisionConfig default a missing key takes.
func shapeFields() []struct {
	key string
	def func(Config) any
} {
	return []struct {
		key string
		def func(Config) any
	}{
		{"vocab_size", func(c Config) any { return c.VocabSize }},
		{"hidden_size", func(c Config) any { return c.HiddenSize }},
		{"num_hidden_layers", func(c Config) any { return c.NumHiddenLayers }},
		{"intermediate_size", func(c Config) any { return c.IntermediateSize }},
		{"max_position_embeddings", func(c Config) any { return c.MaxPositionEmbeddings }},
		{"tie_word_embeddings", func(c Config) any { return c.TieWordEmbeddings }},
		{"num_image_with_embedding", func(c Config) any { return "null" }},
		{"vision_config.hidden_size", func(c Config) any { return c.Vision.HiddenSize }},
		{"vision_config.intermediate_size", func(c Config) any { return c.Vision.IntermediateSize }},
		{"vision_config.num_hidden_layers", func(c Config) any { return c.Vision.NumHiddenLayers }},
		{"vision_config.num_channels", func(c Config) any { return c.Vision.NumChannels }},
		{"vision_config.image_size", func(c Config) any { return c.Vision.ImageSize }},
		{"vision_config.patch_size", func(c Config) any { return c.Vision.PatchSize }},
	}
}

// absentShapeFields lists the shape-determining keys config.json leaves
// out (so HF's defaults were taken), each as "key (default V)". A missing
// vision_config is listed once.
func absentShapeFields(raw []byte, c Config, text, vision bool) []string {
	var top map[string]json.RawMessage
	if json.Unmarshal(raw, &top) != nil {
		return nil
	}
	var vcfg map[string]json.RawMessage
	vc, hasVision := top["vision_config"]
	if hasVision && json.Unmarshal(vc, &vcfg) != nil {
		return nil
	}
	var out, vout []string
	if !hasVision || vcfg == nil {
		vout = append(vout, "vision_config (GitVisionConfig's defaults: CLIP ViT-B/16 at 224 px)")
	}
	for _, f := range shapeFields() {
		if k, ok := strings.CutPrefix(f.key, "vision_config."); ok {
			if _, has := vcfg[k]; vcfg != nil && !has {
				vout = append(vout, fmt.Sprintf("%s (default %v)", f.key, f.def(c)))
			}
		} else if _, has := top[f.key]; !has {
			out = append(out, fmt.Sprintf("%s (default %v)", f.key, f.def(c)))
		}
	}
	// A field is a suspect only when tensors on its side (the image
	// encoder, or the rest) do not fit: save_pretrained leaves out every
	// vision_config key that equals its default, so an absent vision key
	// alone proves nothing.
	var suspects []string
	if text {
		suspects = out
	}
	if vision {
		suspects = append(suspects, vout...)
	}
	return suspects
}

// explainFit turns a weights-do-not-fit error into one that blames
// config.json when config.json left out shape fields (the usual cause: a
// hand-written or truncated config takes git-base's defaults).
func explainFit(dir string, c Config, err error) error {
	fe, ok := err.(*fitError)
	if !ok {
		return err
	}
	path := filepath.Join(dir, "config.json")
	raw, rerr := os.ReadFile(path)
	if rerr != nil {
		return err
	}
	var text, vision bool
	for _, l := range [][]string{fe.missing, fe.unexpected, fe.misshape} {
		for _, name := range l {
			if strings.HasPrefix(name, "git.image_encoder.") {
				vision = true
			} else {
				text = true
			}
		}
	}
	absent := absentShapeFields(raw, c, text, vision)
	if len(absent) == 0 {
		return err
	}
	return fmt.Errorf("%s: does not set %s, so HF's defaults were taken, and the weights do not fit them (%s)",
		path, strings.Join(absent, ", "), fe.problems())
}
