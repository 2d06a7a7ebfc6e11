package gitmodel

import (
	"fmt"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"

	"github.com/gitcap/gitcap/graph"
)

// stepper produces next-token logits for R rows of generation. The cached
// one encodes each image once, fills every decoder layer's keys/values for
// the image prefix and the prompt once, then runs a static decode-step
// graph per token. The uncached one re-runs the full sequence each token
// (as a reference and for benchmarks).
type stepper interface {
	// start encodes the images (B of them), runs the prompt (P tokens, the
	// same for every row) and expands each image to `expand` rows (beams or
	// return sequences): R = B·expand. It returns logits (R, vocab).
	start(pixels []float32, batch int, prompt []int, expand int) ([]float32, error)
	// step feeds one token per row and returns logits (R, vocab).
	step(tokens []int) ([]float32, error)
	// reorder makes row i continue the history of row src[i] (beam search).
	reorder(src []int)
	close()
}

// decodeStep is the compiled one-token graph over R rows and a KV cache of
// capacity Tmax positions per row. The graph writes each row's new keys
// and values into the cache and builds its mask; the host only sets each
// row's token, text position and length (at) before a run.
type decodeStep struct {
	rows, tmax   int
	vm           G.VM
	ids, pos, at []int
	kc, vc       [][]float32
	logits       *G.Node
}

func (m *Model) newDecodeStep(rows, tmax int) (*decodeStep, error) {
	return m.newDecodeStepOn(rows, tmax, nil, nil)
}

// newDecodeStepOn builds the step graph over caller-owned caches: per
// layer, a slice whose first rows·tmax·hidden values are the cache (the
// Batcher's graphs of several row counts share one cache). nil allocates.
func (m *Model) newDecodeStepOn(rows, tmax int, kcs, vcs [][]float32) (*decodeStep, error) {
	c := m.Config
	d := c.HiddenSize
	s := &decodeStep{rows: rows, tmax: tmax, ids: make([]int, rows), pos: make([]int, rows), at: make([]int, rows)}
	b := graph.NewBuilder(tensor.Float32, m.bf16Options()...)
	err := graph.Build(func() {
		in := stepInputs{ids: b.Const("ids", s.ids), pos: b.Const("pos", s.pos), at: b.Const("at", s.at), rows: rows, slots: tmax}
		for l := 0; l < c.NumHiddenLayers; l++ {
			var kc, vc []float32
			if kcs != nil {
				kc, vc = kcs[l][:rows*tmax*d], vcs[l][:rows*tmax*d]
			} else {
				kc, vc = make([]float32, rows*tmax*d), make([]float32, rows*tmax*d)
			}
			s.kc, s.vc = append(s.kc, kc), append(s.vc, vc)
			in.k = append(in.k, bind(b, fmt.Sprintf("kcache%d", l), kc, rows*tmax, d))
			in.v = append(in.v, bind(b, fmt.Sprintf("vcache%d", l), vc, rows*tmax, d))
		}
		// A sequence's logits do not depend on the sequences beside it in
		// the step (a serving batch, many images with many beams).
		b.BatchInvariant(func() { s.logits = m.decodeStep(b, in) })
	})
	if err != nil {
		return nil, fmt.Errorf("building the decode-step graph: %w", err)
	}
	s.vm = G.NewTapeMachine(b.G)
	return s, nil
}

// cachedStepper drives a prefix graph and a decode-step graph.
type cachedStepper struct {
	m      *Model
	g      *Generator
	step_  *decodeStep
	length []int // filled cache positions per row
	logits []float32
	tmp    []float32 // reorder scratch
	tmpLen []int
}

func (s *cachedStepper) start(pixels []float32, batch int, prompt []int, expand int) ([]float32, error) {
	c := s.m.Config
	nImg := c.ImageTokens()
	rows := batch * expand
	tmax := nImg + s.g.maxText
	f, err := s.g.prefix(batch, len(prompt))
	if err != nil {
		return nil, err
	}
	ids := make([]int, 0, batch*len(prompt))
	for i := 0; i < batch; i++ {
		ids = append(ids, prompt...)
	}
	if err := f.Run(Batch{Pixels: pixels, IDs: ids}); err != nil {
		return nil, err
	}
	if s.step_, err = s.g.decodeStep(rows, tmax); err != nil {
		return nil, err
	}
	st := s.step_
	d := c.HiddenSize
	n := f.N
	for l := range st.kc {
		k, v := Values(f.Decoder.K[l]), Values(f.Decoder.V[l])
		for r := 0; r < rows; r++ {
			src := (r / expand) * n * d
			copy(st.kc[l][r*tmax*d:r*tmax*d+n*d], k[src:src+n*d])
			copy(st.vc[l][r*tmax*d:r*tmax*d+n*d], v[src:src+n*d])
			// Slots past the prefix are masked, but a masked slot still
			// multiplies a probability of 0 by its value: clear what an
			// earlier call left there.
			clear(st.vc[l][r*tmax*d+n*d : (r+1)*tmax*d])
		}
	}
	s.length = make([]int, rows)
	for r := range s.length {
		s.length[r] = n
	}
	vocab := c.VocabSize
	last := Values(f.LastLogits)
	s.logits = make([]float32, rows*vocab)
	for r := 0; r < rows; r++ {
		copy(s.logits[r*vocab:(r+1)*vocab], last[(r/expand)*vocab:(r/expand+1)*vocab])
	}
	return s.logits, nil
}

func (s *cachedStepper) step(tokens []int) ([]float32, error) {
	st := s.step_
	c := s.m.Config
	nImg := c.ImageTokens()
	for r, tok := range tokens {
		if s.length[r] >= st.tmax {
			return nil, fmt.Errorf("generation ran past the KV cache (%d positions)", st.tmax)
		}
		st.ids[r] = tok
		st.pos[r] = s.length[r] - nImg // text position of the new token
		st.at[r] = s.length[r]         // its cache slot
	}
	st.vm.Reset()
	if err := st.vm.RunAll(); err != nil {
		return nil, err
	}
	for r := range s.length {
		s.length[r]++
	}
	copy(s.logits, Values(st.logits))
	return s.logits, nil
}

func (s *cachedStepper) reorder(src []int) {
	st := s.step_
	d := s.m.Config.HiddenSize
	per := st.tmax * d
	if len(s.tmp) < len(src)*per {
		s.tmp = make([]float32, len(src)*per)
	}
	for _, cache := range [][][]float32{st.kc, st.vc} {
		for _, buf := range cache {
			copy(s.tmp, buf)
			for r, from := range src {
				if r != from {
					copy(buf[r*per:(r+1)*per], s.tmp[from*per:(from+1)*per])
				}
			}
		}
	}
	s.tmpLen = append(s.tmpLen[:0], s.length...)
	for r, from := range src {
		s.length[r] = s.tmpLen[from]
	}
}

func (s *cachedStepper) close() {}

// fullStepper recomputes the whole sequence for every token.
type fullStepper struct {
	m      *Model
	g      *Generator
	pixels []float32 // per row
	ids    [][]int
	logits []float32
}

func (s *fullStepper) start(pixels []float32, batch int, prompt []int, expand int) ([]float32, error) {
	c := s.m.Config
	img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	rows := batch * expand
	s.pixels = make([]float32, rows*img)
	s.ids = make([][]int, rows)
	for r := 0; r < rows; r++ {
		copy(s.pixels[r*img:(r+1)*img], pixels[(r/expand)*img:(r/expand+1)*img])
		s.ids[r] = append([]int(nil), prompt...)
	}
	return s.run()
}

func (s *fullStepper) run() ([]float32, error) {
	rows, t := len(s.ids), len(s.ids[0])
	f, err := s.g.prefix(rows, t)
	if err != nil {
		return nil, err
	}
	flat := make([]int, 0, rows*t)
	for _, r := range s.ids {
		flat = append(flat, r...)
	}
	if err := f.Run(Batch{Pixels: s.pixels, IDs: flat}); err != nil {
		return nil, err
	}
	s.logits = append(s.logits[:0], Values(f.LastLogits)...)
	return s.logits, nil
}

func (s *fullStepper) step(tokens []int) ([]float32, error) {
	for r, tok := range tokens {
		s.ids[r] = append(s.ids[r], tok)
	}
	return s.run()
}

func (s *fullStepper) reorder(src []int) {
	old := append([][]int(nil), s.ids...)
	for r, from := range src {
		s.ids[r] = append([]int(nil), old[from]...) // each row owns its slice
	}
}

func (s *fullStepper) close() {}
