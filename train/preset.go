package train

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/gitmodel"
)

// LoadPreset reads a model preset for training from scratch (a config.json)
// and the tokenizer beside it. A preset whose vocab_size is 0 takes the
// tokenizer's vocabulary size; a larger vocab_size is kept (unused rows);
// a smaller one is an error. The preset's bos/eos/pad token ids must be the
// tokenizer's [CLS]/[SEP]/[PAD] ids: GIT starts every caption with [CLS]
// and generation stops at [SEP], so a mismatch would train a model that
// never ends a caption.
func LoadPreset(path string) (gitmodel.Config, *tokenizer.Tokenizer, error) {
	dir := filepath.Dir(path)
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return gitmodel.Config{}, nil, fmt.Errorf("model_config %s: training from scratch needs the tokenizer files beside the preset (make them with gitcap tokenizer --out %s): %w", path, dir, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return gitmodel.Config{}, nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return gitmodel.Config{}, nil, fmt.Errorf("%s: malformed config: %w", path, err)
	}
	if v, ok := m["vocab_size"].(float64); ok && v == 0 {
		m["vocab_size"] = tok.VocabSize()
		if b, err = json.Marshal(m); err != nil {
			return gitmodel.Config{}, nil, err
		}
	}
	// The ids are checked before the rest of the preset, whose own check
	// would only say that 101 is outside a small vocabulary. A missing id
	// takes HF GitConfig's default.
	def := gitmodel.DefaultConfig()
	for _, id := range []struct {
		key, tok string
		def      int
		want     int
	}{
		{"bos_token_id", "[CLS]", def.BosTokenID, tok.CLS()},
		{"eos_token_id", "[SEP]", def.EosTokenID, tok.SEP()},
		{"pad_token_id", "[PAD]", def.PadTokenID, tok.PAD()},
	} {
		got := id.def
		if v, ok := m[id.key].(float64); ok {
			got = int(v)
		}
		if got != id.want {
			how := "is"
			if _, ok := m[id.key]; !ok {
				how = "is missing, so HF's default"
			}
			return gitmodel.Config{}, nil, fmt.Errorf("%s: %s %s %d but the tokenizer in %s has %s = %d; set %s to %d",
				path, id.key, how, got, dir, id.tok, id.want, id.key, id.want)
		}
	}
	mc, err := gitmodel.ParseConfig(path, b)
	if err != nil {
		return gitmodel.Config{}, nil, err
	}
	if mc.VocabSize < tok.VocabSize() {
		return gitmodel.Config{}, nil, fmt.Errorf("%s: vocab_size %d is smaller than the tokenizer's %d tokens (%s); set vocab_size to %d, or 0 to take it from the tokenizer",
			path, mc.VocabSize, tok.VocabSize(), dir, tok.VocabSize())
	}
	return mc, tok, nil
}
