package gitmodel

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/gitcap/gitcap/data/fsutil"
	"github.com/gitcap/gitcap/data/tensorfile"
)

// Load reads a HuggingFace checkpoint directory: config.json and
// model.safetensors (or a sharded model.safetensors.index.json). Every
// parameter must be present with its exact shape, and no unknown tensor may
// be left over; F16/BF16 weights are widened to float32.
func Load(dir string) (*Model, error) {
	cfg, err := LoadConfig(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil, err
	}
	m, err := New(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "config.json"), err)
	}
	files, err := weightFiles(dir)
	if err != nil {
		return nil, err
	}
	if err := m.LoadWeights(files...); err != nil {
		return nil, explainFit(dir, cfg, err)
	}
	return m, nil
}

// weightFiles lists the safetensors files of a checkpoint directory.
func weightFiles(dir string) ([]string, error) {
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err == nil {
		return []string{single}, nil
	}
	index := filepath.Join(dir, "model.safetensors.index.json")
	b, err := os.ReadFile(index)
	if err != nil {
		if _, e := os.Stat(filepath.Join(dir, "pytorch_model.bin")); e == nil {
			return nil, fmt.Errorf("%s: only pytorch_model.bin found; gitcap reads safetensors weights (convert with HF's save_pretrained(safe_serialization=True))", dir)
		}
		return nil, fmt.Errorf("%s: no model.safetensors or model.safetensors.index.json", dir)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: malformed index: %w", index, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s: empty weight_map", index)
	}
	seen := map[string]bool{}
	var files []string
	for _, f := range idx.WeightMap {
		if !filepath.IsLocal(f) {
			return nil, fmt.Errorf("%s: shard name %q points outside the checkpoint directory", index, f)
		}
		if !seen[f] {
			seen[f] = true
			files = append(files, filepath.Join(dir, f))
		}
	}
	sort.Strings(files)
	return files, nil
}

// ignoredTensor reports state-dict entries that are buffers, not weights
// (older checkpoints saved position_ids).
func ignoredTensor(name string) bool { return strings.HasSuffix(name, ".position_ids") }

// LoadWeights copies tensors from safetensors files into the parameters,
// checking names and shapes. The error names every missing, unexpected or
// mis-shaped tensor.
func (m *Model) LoadWeights(files ...string) error {
	loaded := map[string]bool{}
	var unexpected, misshaped []string
	for _, path := range files {
		f, err := tensorfile.Open(path)
		if err != nil {
			return err
		}
		for _, name := range f.Names() {
			p := m.Params.Get(name)
			if name == "output.weight" && m.Config.TieWordEmbeddings {
				continue // tied to the word embeddings, as HF ties it
			}
			if p == nil {
				if !ignoredTensor(name) {
					unexpected = append(unexpected, name)
				}
				continue
			}
			shape, err := f.Shape(name)
			if err != nil {
				return err
			}
			if !slices.Equal(shape, p.Shape()) {
				misshaped = append(misshaped, fmt.Sprintf("%s (file %v, model %v)", name, shape, p.Shape()))
				continue
			}
			if p.IsBF16() { // a BF16 tensor is kept as it is (bf16.go)
				bits, ok, err := f.BF16Bits(name)
				if err != nil {
					return err
				}
				if ok {
					if err := checkFiniteBF16(path, name, bits); err != nil {
						return err
					}
					if err := p.SetBF16Bits(bits); err != nil {
						return fmt.Errorf("%s: %w", path, err)
					}
					loaded[name] = true
					continue
				}
			}
			vals, _, err := f.F32(name)
			if err != nil {
				return err
			}
			if err := checkFinite(path, name, vals); err != nil {
				return err
			}
			if err := p.SetF32(vals); err != nil { // a bf16 parameter narrows float32 values
				return fmt.Errorf("%s: %w", path, err)
			}
			loaded[name] = true
		}
	}
	var missing []string
	for _, name := range m.Params.Names() {
		if !loaded[name] {
			missing = append(missing, name)
		}
	}
	if len(missing)+len(unexpected)+len(misshaped) > 0 {
		return &fitError{files: files, missing: missing, unexpected: unexpected, misshape: misshaped}
	}
	return nil
}

// SaveWeights writes every parameter to a safetensors file (atomically),
// with HF's names and shapes and metadata {"format":"pt"} so that
// transformers loads it. A tied output.weight is not written, as in HF.
func (m *Model) SaveWeights(path string) error {
	ts := make(map[string]tensorfile.Tensor)
	for _, p := range m.Params.All() {
		ts[p.Name] = tensorfile.Tensor{Shape: p.Shape(), F32: p.F32()}
	}
	return tensorfile.Write(path, ts, map[string]string{"format": "pt"})
}

// SaveConfig writes config.json (atomically).
func (c Config) Save(path string) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteAtomic(path, func(f *os.File) error {
		_, err := f.Write(append(b, '\n'))
		return err
	})
}
