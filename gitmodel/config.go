// Package gitmodel is GIT (Generative Image-to-text Transformer): a CLIP
// ViT image encoder whose projected tokens are the prefix of a BERT-style
// text decoder, trained with one language-modelling loss. The model is
// defined once (model.go) and builds inference, training and decode-step
// graphs over the same weights.
package gitmodel

import (
	"encoding/json"
	"fmt"
	"os"
)

// Config mirrors HuggingFace's GitConfig (config.json). Fields absent from
// the file take GitConfig's defaults; save_pretrained writes only the
// non-default keys of vision_config, so those fall back to
// GitVisionConfig's defaults.
type Config struct {
	VocabSize                 int          `json:"vocab_size"`
	HiddenSize                int          `json:"hidden_size"`
	NumHiddenLayers           int          `json:"num_hidden_layers"`
	NumAttentionHeads         int          `json:"num_attention_heads"`
	IntermediateSize          int          `json:"intermediate_size"`
	HiddenAct                 string       `json:"hidden_act"`
	HiddenDropoutProb         float64      `json:"hidden_dropout_prob"`
	AttentionProbsDropoutProb float64      `json:"attention_probs_dropout_prob"`
	MaxPositionEmbeddings     int          `json:"max_position_embeddings"`
	InitializerRange          float64      `json:"initializer_range"`
	LayerNormEps              float64      `json:"layer_norm_eps"`
	PadTokenID                int          `json:"pad_token_id"`
	BosTokenID                int          `json:"bos_token_id"`
	EosTokenID                int          `json:"eos_token_id"`
	PositionEmbeddingType     string       `json:"position_embedding_type"`
	TieWordEmbeddings         bool         `json:"tie_word_embeddings"`
	NumImageWithEmbedding     *int         `json:"num_image_with_embedding"`
	UseCache                  bool         `json:"use_cache"`
	Vision                    VisionConfig `json:"vision_config"`

	// Kept when saving so HF can load the checkpoint.
	ModelType     string   `json:"model_type"`
	Architectures []string `json:"architectures,omitempty"`
	TorchDtype    string   `json:"torch_dtype,omitempty"`
}

// VisionConfig mirrors GitVisionConfig.
type VisionConfig struct {
	HiddenSize        int     `json:"hidden_size"`
	IntermediateSize  int     `json:"intermediate_size"`
	NumHiddenLayers   int     `json:"num_hidden_layers"`
	NumAttentionHeads int     `json:"num_attention_heads"`
	NumChannels       int     `json:"num_channels"`
	ImageSize         int     `json:"image_size"`
	PatchSize         int     `json:"patch_size"`
	HiddenAct         string  `json:"hidden_act"`
	LayerNormEps      float64 `json:"layer_norm_eps"`
	AttentionDropout  float64 `json:"attention_dropout"`
	InitializerRange  float64 `json:"initializer_range"`
	ModelType         string  `json:"model_type,omitempty"`
}

// DefaultConfig returns GitConfig() with its defaults (the git-base shape).
func DefaultConfig() Config {
	return Config{
		VocabSize: 30522, HiddenSize: 768, NumHiddenLayers: 6, NumAttentionHeads: 12, IntermediateSize: 3072,
		HiddenAct: "gelu", HiddenDropoutProb: 0.1, AttentionProbsDropoutProb: 0.1, MaxPositionEmbeddings: 1024,
		InitializerRange: 0.02, LayerNormEps: 1e-12, PadTokenID: 0, BosTokenID: 101, EosTokenID: 102,
		PositionEmbeddingType: "absolute", UseCache: true, ModelType: "git", Architectures: []string{"GitForCausalLM"},
		Vision: DefaultVisionConfig(),
	}
}

// DefaultVisionConfig returns GitVisionConfig() (CLIP ViT-B/16 at 224 px).
func DefaultVisionConfig() VisionConfig {
	return VisionConfig{
		HiddenSize: 768, IntermediateSize: 3072, NumHiddenLayers: 12, NumAttentionHeads: 12, NumChannels: 3,
		ImageSize: 224, PatchSize: 16, HiddenAct: "quick_gelu", LayerNormEps: 1e-5, AttentionDropout: 0,
		InitializerRange: 0.02, ModelType: "git_vision_model",
	}
}

// LoadConfig reads a HF config.json.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(path, b)
}

// ParseConfig parses config.json contents; path is used in errors.
func ParseConfig(path string, b []byte) (Config, error) {
	c := DefaultConfig()
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%s: malformed config: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Frames is the number of frames per sample (1 for image checkpoints).
func (c Config) Frames() int {
	if c.NumImageWithEmbedding == nil || *c.NumImageWithEmbedding < 1 {
		return 1
	}
	return *c.NumImageWithEmbedding
}

// Video reports whether the checkpoint has temporal frame embeddings.
func (c Config) Video() bool { return c.NumImageWithEmbedding != nil && *c.NumImageWithEmbedding > 0 }

// Patches is the number of patches per frame.
func (v VisionConfig) Patches() int { return (v.ImageSize / v.PatchSize) * (v.ImageSize / v.PatchSize) }

// Tokens is the number of vision tokens per frame (patches + class token).
func (v VisionConfig) Tokens() int { return v.Patches() + 1 }

// ImageTokens is the number of decoder positions the image prefix takes.
func (c Config) ImageTokens() int { return c.Frames() * c.Vision.Tokens() }

// Validate checks that the sizes are usable.
func (c Config) Validate() error {
	check := func(name string, v int) error {
		if v <= 0 {
			return fmt.Errorf("%s must be positive, got %d", name, v)
		}
		return nil
	}
	for _, f := range []struct {
		n string
		v int
	}{
		{"vocab_size", c.VocabSize}, {"hidden_size", c.HiddenSize}, {"num_hidden_layers", c.NumHiddenLayers},
		{"num_attention_heads", c.NumAttentionHeads}, {"intermediate_size", c.IntermediateSize},
		{"max_position_embeddings", c.MaxPositionEmbeddings},
		{"vision_config.hidden_size", c.Vision.HiddenSize}, {"vision_config.intermediate_size", c.Vision.IntermediateSize},
		{"vision_config.num_hidden_layers", c.Vision.NumHiddenLayers}, {"vision_config.num_attention_heads", c.Vision.NumAttentionHeads},
		{"vision_config.num_channels", c.Vision.NumChannels}, {"vision_config.image_size", c.Vision.ImageSize},
		{"vision_config.patch_size", c.Vision.PatchSize},
	} {
		if err := check(f.n, f.v); err != nil {
			return err
		}
	}
	if c.HiddenSize%c.NumAttentionHeads != 0 {
		return fmt.Errorf("hidden_size %d is not a multiple of num_attention_heads %d", c.HiddenSize, c.NumAttentionHeads)
	}
	if c.Vision.HiddenSize%c.Vision.NumAttentionHeads != 0 {
		return fmt.Errorf("vision_config.hidden_size %d is not a multiple of num_attention_heads %d", c.Vision.HiddenSize, c.Vision.NumAttentionHeads)
	}
	if c.Vision.ImageSize%c.Vision.PatchSize != 0 {
		return fmt.Errorf("vision_config.image_size %d is not a multiple of patch_size %d", c.Vision.ImageSize, c.Vision.PatchSize)
	}
	if c.PositionEmbeddingType != "" && c.PositionEmbeddingType != "absolute" {
		return fmt.Errorf("position_embedding_type %q is not supported (only \"absolute\")", c.PositionEmbeddingType)
	}
	for _, id := range []struct {
		n string
		v int
	}{{"bos_token_id", c.BosTokenID}, {"eos_token_id", c.EosTokenID}, {"pad_token_id", c.PadTokenID}} {
		if id.v < 0 || id.v >= c.VocabSize {
			return fmt.Errorf("%s %d is outside the vocabulary (%d)", id.n, id.v, c.VocabSize)
		}
	}
	return nil
}
