package train

import (
	"hash/fnv"
	"math/rand/v2"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// Init gives m HuggingFace's initialisation of a fresh GitForCausalLM, as
// each parameter's layer declared it (graph.Param.Role): weights, embeddings
// and convolution kernels drawn from normal(0, initializer_range), biases 0,
// LayerNorm gains 1 and shifts 0, and an embedding's padding row
// (Param.ZeroRows) 0. Each parameter draws from its own source seeded by
// (seed, name), so the result does not depend on the parameters' order.
func Init(m *gitmodel.Model, seed int64) {
	std := m.Config.InitializerRange
	if std <= 0 {
		std = 0.02
	}
	for _, p := range m.Params.All() {
		w := p.F32()
		switch p.Role.Init() {
		case graph.InitOnes:
			for i := range w {
				w[i] = 1
			}
		case graph.InitZeros:
			clear(w)
		default:
			h := fnv.New64a()
			h.Write([]byte(p.Name))
			rng := rand.New(rand.NewPCG(uint64(seed), h.Sum64()))
			for i := range w {
				w[i] = float32(rng.NormFloat64() * std)
			}
			if len(p.ZeroRows) > 0 {
				cols := len(w) / p.Shape()[0]
				for _, r := range p.ZeroRows {
					clear(w[r*cols : (r+1)*cols])
				}
			}
		}
	}
}
