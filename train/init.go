package train

import (
	"hash/fnv"
	"math/rand/v2"
	"strings"

	"github.com/gitcap/gitcap/gitmodel"
)

// Init gives m HuggingFace's initialisation of a fresh GitForCausalLM:
// Linear, Embedding and convolution weights and CLIP's class embedding drawn
// from normal(0, initializer_range), biases 0, LayerNorm weights 1 and biases
// 0, and the padding row of the word embeddings 0. Each parameter draws from
// its own source seeded by (seed, name), so the result does not depend on the
// parameters' order.
func Init(m *gitmodel.Model, seed int64) {
	std := m.Config.InitializerRange
	if std <= 0 {
		std = 0.02
	}
	for _, p := range m.Params.All() {
		w := p.F32()
		switch {
		case isNormParam(p.Name) && strings.HasSuffix(p.Name, ".weight"):
			for i := range w {
				w[i] = 1
			}
		case strings.HasSuffix(p.Name, ".bias"):
			clear(w)
		default:
			h := fnv.New64a()
			h.Write([]byte(p.Name))
			rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
			for i := range w {
				w[i] = float32(rng.NormFloat64() * std)
			}
			if p.Name == "git.embeddings.word_embeddings.weight" {
				if sh := p.Shape(); len(sh) == 2 && m.Config.PadTokenID >= 0 && m.Config.PadTokenID < sh[0] {
					clear(w[m.Config.PadTokenID*sh[1] : (m.Config.PadTokenID+1)*sh[1]])
				}
			}
		}
	}
}

// isNormParam reports whether name belongs to a LayerNorm.
func isNormParam(name string) bool {
	for _, s := range []string{"LayerNorm.", "layer_norm", "layernorm", "layrnorm", "visual_projection.1."} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}
