package train

import (
	"fmt"

	"github.com/gitcap/gitcap/gitmodel"
)

// checkAgainstModel reports run settings the model cannot honour, at setup
// rather than at the step where a long caption or a validation pass first
// needs them. Text positions are the model's max_position_embeddings; a
// batch's text is padded up to a multiple of textPadMult.
func checkAgainstModel(cfg *Config, mc gitmodel.Config) error {
	padded := (cfg.MaxTextLen + textPadMult - 1) / textPadMult * textPadMult
	if padded > mc.MaxPositionEmbeddings {
		if cfg.MaxTextLen <= mc.MaxPositionEmbeddings {
			return fmt.Errorf("max_text_len %d (padded to %d, a multiple of %d) exceeds the model's max_position_embeddings %d", cfg.MaxTextLen, padded, textPadMult, mc.MaxPositionEmbeddings)
		}
		return fmt.Errorf("max_text_len %d exceeds the model's max_position_embeddings %d", cfg.MaxTextLen, mc.MaxPositionEmbeddings)
	}
	if (cfg.Val.Path != "" || cfg.Objective == ObjectiveSCST) && cfg.GenMaxLength > mc.MaxPositionEmbeddings {
		return fmt.Errorf("gen_max_length %d exceeds the model's max_position_embeddings %d", cfg.GenMaxLength, mc.MaxPositionEmbeddings)
	}
	return nil
}
