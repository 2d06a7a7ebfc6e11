package train

import (
	"fmt"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// checkPrecision refuses a precision this machine cannot run (cpu says
// whether it can: graph.CheckPrecision), before the run loads anything,
// with a message that names the option and its alternative.
func checkPrecision(cfg *Config, cpu func(graph.Precision) error) (graph.Precision, error) {
	p, err := graph.ParsePrecision(cfg.Precision)
	if err != nil {
		return graph.FP32, fmt.Errorf("precision: %w", err)
	}
	if err := cpu(p); err != nil {
		return graph.FP32, fmt.Errorf("precision %s (--precision %s) cannot run here: %w; use precision: fp32 (--precision fp32)", p, p, err)
	}
	return p, nil
}

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
