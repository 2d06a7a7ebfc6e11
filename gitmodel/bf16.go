package gitmodel

import (
	"fmt"
	"path/filepath"

	"github.com/gitcap/gitcap/graph"
)

// WeightDtype is the type the model's weight matrices and embedding tables
// are held in for inference.
type WeightDtype string

const (
	FP32 WeightDtype = "fp32" // float32: the reference, and the only dtype that trains
	BF16 WeightDtype = "bf16" // bfloat16: half the memory and half the bytes a decode step reads
	// BF16Full is BF16 whose matrix products also round their activations
	// to bf16: on AMX CPUs every product (decode steps too) runs on the
	// tiles and the Linear matrices keep only their tile-layout copy
	// (SetBF16Activations); on other AVX512_BF16 CPUs the many-row ones
	// (vision tower, prefix) run the VDPBF16PS GEMM. A faster vision tower
	// and batched decode, a second rounding.
	BF16Full WeightDtype = "bf16-full"
)

// ParseWeightDtype reads a --dtype value ("" is fp32).
func ParseWeightDtype(s string) (WeightDtype, error) {
	switch WeightDtype(s) {
	case "", FP32, "float32":
		return FP32, nil
	case BF16, "bfloat16":
		return BF16, nil
	case BF16Full:
		return BF16Full, nil
	}
	return "", fmt.Errorf("unknown weight dtype %q (want fp32, bf16 or bf16-full)", s)
}

// ToBF16 narrows the model's weight matrices (every Linear, the patch
// convolution) and embedding tables (words, text and vision positions) to
// bfloat16, round to nearest even; biases, LayerNorm parameters and the
// small class and temporal embeddings stay float32. Graphs built before
// keep the float32 memory: build (or rebuild) graphs after. A bf16 model
// runs inference only: training graphs and SaveWeights need float32.
func (m *Model) ToBF16() {
	for _, p := range m.Params.All() {
		if p.Role == graph.RoleWeight { // the Linear layers' matrices (layers.NewLinear), read only by Linear.Forward
			p.ToBF16()
		}
	}
	for _, p := range []*graph.Param{m.patch.W, m.visionPos.W, m.words.W, m.positions.W} {
		p.ToBF16()
	}
}

// CloneBF16 returns a copy of the model with ToBF16's weights narrowed
// (the receiver is unchanged).
func (m *Model) CloneBF16() (*Model, error) {
	c, err := New(m.Config)
	if err != nil {
		return nil, err
	}
	c.ToBF16()
	for _, p := range c.Params.All() {
		src := m.Params.Get(p.Name)
		var err error
		if bits := src.CheckpointBF16(); bits != nil {
			err = p.SetBF16Bits(bits)
		} else {
			err = p.SetF32(src.F32())
		}
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// IsBF16 reports whether the model holds bf16 weights (ToBF16).
func (m *Model) IsBF16() bool { return m.words.W.IsBF16() }

// LoadDtype is Load with the weights held in dt. With BF16, the
// parameters are narrowed before the weights are read: a checkpoint's BF16
// tensors are kept bit for bit, F32/F64/F16 ones are rounded to the nearest
// bf16 (an F16 value may lose its three lowest mantissa bits).
func LoadDtype(dir string, dt WeightDtype) (*Model, error) {
	if dt == FP32 || dt == "" {
		return Load(dir)
	}
	if dt != BF16 && dt != BF16Full {
		return nil, fmt.Errorf("unknown weight dtype %q (want fp32, bf16 or bf16-full)", dt)
	}
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	m.ToBF16() // the float32 zeros were never touched: narrowing frees memory the OS never gave
	files, err := weightFiles(dir)
	if err != nil {
		return nil, err
	}
	if err := m.LoadWeights(files...); err != nil {
		return nil, explainFit(dir, cfg, err)
	}
	m.SetBF16Activations(dt == BF16Full)
	return m, nil
}

// SetBF16Activations chooses whether graphs built from now on let their
// bf16 products round activations to bf16 (graph.WithBF16Activations;
// BF16Full). On with AMX, every product takes the tile unit whatever its
// row count, and the Linear matrices (read only by those products) keep
// only their tile-layout copy (graph.Param.PackAMX), so that the resident
// weights are about half the float32 ones; without AMX the same holds for
// the vision tower's and the decoder's matrices, whose many-row products
// VDPBF16PS runs from that copy and whose decode steps stream it through
// the packed-layout GEMV. Off, they get their checkpoint layout back (UnpackAMX). Call it before building graphs or
// sharing the model between goroutines.
func (m *Model) SetBF16Activations(on bool) {
	m.bf16Act = on
	for _, p := range m.amxOnly() {
		if on {
			p.PackAMX()
		} else {
			p.UnpackAMX()
		}
	}
}

// amxOnly lists the bf16 weights that only LinearBF16 reads: the Linear
// matrices (RoleWeight, ToBF16) but a weight tied to an embedding table
// (the LM head), and the patch convolution. Without AMX (packed products
// on VDPBF16PS, 32 rows at a time, and decode steps on the packed-layout
// GEMV) it leaves out the LM head, whose prefix and decode-step products
// have one row per sequence and stay on the checkpoint-layout GEMV, and any
// decoder matrix whose width is not a multiple of 32 (the packed GEMV needs
// it).
func (m *Model) amxOnly() []*graph.Param {
	if !m.IsBF16() {
		return nil
	}
	skip := map[*graph.Param]bool{m.visionPos.W: true, m.words.W: true, m.positions.W: true}
	if !graph.AMX() {
		for _, l := range m.decoder {
			for _, p := range l.Params() {
				if sh := p.Shape(); len(sh) == 2 && sh[1]%32 != 0 {
					skip[p] = true
				}
			}
		}
		for _, p := range m.output.Params() {
			skip[p] = true
		}
	}
	var ps []*graph.Param
	for _, p := range m.Params.All() {
		if (p.Role == graph.RoleWeight || p == m.patch.W) && p.IsBF16() && !skip[p] {
			ps = append(ps, p)
		}
	}
	return ps
}

func (m *Model) bf16Options() []graph.BuilderOption {
	if !m.bf16Act {
		return nil
	}
	return []graph.BuilderOption{graph.WithBF16Activations(true)}
}

// DecodeStepBytes is the memory one decode step over `rows` sequences reads
// at least: every decoder parameter and the LM head once (their resident
// bytes, or their AMX-packed copies: about half for bf16 weights), plus each row's KV cache of `cached`
// positions in every layer (float32 keys and values).
func (m *Model) DecodeStepBytes(rows, cached int) float64 {
	seen := map[*graph.Param]bool{}
	var n float64
	add := func(ps ...*graph.Param) {
		for _, p := range ps {
			if p != nil && !seen[p] {
				seen[p] = true
				n += float64(p.ProductBytes())
			}
		}
	}
	for _, l := range m.decoder {
		add(l.Params()...)
	}
	add(m.output.Params()...)
	c := m.Config
	return n + float64(c.NumHiddenLayers)*2*float64(rows)*float64(cached)*float64(c.HiddenSize)*4
}

// checkFiniteBF16 is checkFinite for a BF16 tensor's bit patterns
// (exponent all ones: infinity or NaN).
func checkFiniteBF16(path, name string, bits []uint16) error {
	for i, h := range bits {
		if h&0x7f80 == 0x7f80 {
			vals := make([]float32, len(bits))
			for j, b := range bits {
				vals[j] = graph.F32FromBF16(b)
			}
			if err := checkFinite(path, name, vals); err != nil {
				return err
			}
			return fmt.Errorf("%s: tensor %q holds a non-finite weight at index %d", path, name, i)
		}
	}
	return nil
}
