package gitmodel

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
	"github.com/gitcap/gitcap/graph"
)

// TestLoadKeepsBF16CheckpointTensors writes git-tiny as a checkpoint whose
// floating-point tensors are all BF16 (the fixture's values rounded), then
// loads it both ways: with --dtype bf16 every narrowed parameter holds the
// file's bits unchanged (and the rest their exact widening); in float32
// every parameter holds the exact widening.
func TestLoadKeepsBF16CheckpointTensors(t *testing.T) {
	src := fixtures.Path(t, "git-tiny")
	dir := t.TempDir()
	for _, f := range []string{"config.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	in, err := tensorfile.Open(filepath.Join(src, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	bits := map[string][]uint16{}
	ts := map[string]tensorfile.Tensor{}
	for _, name := range in.Names() {
		v, shape, err := in.F32(name)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]uint16, len(v))
		for i, x := range v {
			b[i] = graph.BF16FromF32(x)
		}
		bits[name] = b
		ts[name] = tensorfile.Tensor{Shape: shape, BF16: b}
	}
	if err := tensorfile.Write(filepath.Join(dir, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	bf, err := LoadDtype(dir, BF16)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := LoadDtype(dir, FP32)
	if err != nil {
		t.Fatal(err)
	}
	narrowed := 0
	for _, p := range bf.Params.All() {
		want := bits[p.Name]
		if got := p.BF16(); got != nil {
			narrowed++
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%s[%d]: bf16 model holds %#04x, file %#04x", p.Name, i, got[i], want[i])
				}
			}
		} else {
			for i, v := range p.F32() {
				if v != graph.F32FromBF16(want[i]) {
					t.Fatalf("%s[%d] = %v, want the widened %v", p.Name, i, v, graph.F32FromBF16(want[i]))
				}
			}
		}
		for i, v := range fp.Params.Get(p.Name).F32() {
			if v != graph.F32FromBF16(want[i]) {
				t.Fatalf("fp32 model: %s[%d] = %v, want the widened %v", p.Name, i, v, graph.F32FromBF16(want[i]))
			}
		}
	}
	if narrowed == 0 {
		t.Fatal("no parameter was held as bf16")
	}
}
