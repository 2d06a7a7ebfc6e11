package gitmodel

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
)

// copyCheckpoint makes a writable copy of the tiny checkpoint's config and
// returns the directory and the weights as a map.
func copyCheckpoint(t *testing.T) (string, map[string]tensorfile.Tensor) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := os.ReadFile(fixtures.Path(t, "git-tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := tensorfile.Open(fixtures.Path(t, "git-tiny", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	ts := map[string]tensorfile.Tensor{}
	for _, n := range f.Names() {
		if ts[n], err = f.Tensor(n); err != nil {
			t.Fatal(err)
		}
	}
	return dir, ts
}

func TestLoadRejectsBadCheckpoints(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(ts map[string]tensorfile.Tensor)
		wants []string
	}{
		{"missing tensor", func(ts map[string]tensorfile.Tensor) { delete(ts, "output.bias") }, []string{"missing", "output.bias"}},
		{"unexpected tensor", func(ts map[string]tensorfile.Tensor) {
			ts["extra.weight"] = tensorfile.Tensor{Shape: []int{1}, F32: []float32{1}}
		}, []string{"unexpected", "extra.weight"}},
		{"wrong shape", func(ts map[string]tensorfile.Tensor) {
			ts["git.embeddings.LayerNorm.bias"] = tensorfile.Tensor{Shape: []int{31}, F32: make([]float32, 31)}
		}, []string{"wrongly shaped", "git.embeddings.LayerNorm.bias"}},
		{"buffers are ignored", func(ts map[string]tensorfile.Tensor) {
			ts["git.embeddings.position_ids"] = tensorfile.Tensor{Shape: []int{1, 64}, I64: make([]int64, 64)}
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, ts := copyCheckpoint(t)
			c.edit(ts)
			if err := tensorfile.Write(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if c.wants == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range c.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestLoadRejectsCorruptFiles(t *testing.T) {
	good, err := os.ReadFile(fixtures.Path(t, "git-tiny", "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"truncated":   good[:len(good)/2],
		"tiny":        good[:5],
		"bad header":  append([]byte{8, 0, 0, 0, 0, 0, 0, 0}, []byte("{garbage")...),
		"huge header": append([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0}, good[8:100]...),
		"empty":       nil,
	} {
		t.Run(name, func(t *testing.T) {
			dir, _ := copyCheckpoint(t)
			path := filepath.Join(dir, "model.safetensors")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), path) {
				t.Errorf("want an error naming %s, got %v", path, err)
			}
		})
	}
	t.Run("malformed config", func(t *testing.T) {
		dir, _ := copyCheckpoint(t)
		os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"hidden_size": "big"`), 0o644)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "config.json") {
			t.Errorf("want an error naming config.json, got %v", err)
		}
	})
	t.Run("no weights", func(t *testing.T) {
		dir, _ := copyCheckpoint(t)
		if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "model.safetensors") {
			t.Errorf("want an error about missing weights, got %v", err)
		}
	})
}

// TestLoadReadsShardedCheckpoints splits the weights over two shards with
// an index and checks every parameter arrives intact.
func TestLoadReadsShardedCheckpoints(t *testing.T) {
	dir, ts := copyCheckpoint(t)
	a, b := map[string]tensorfile.Tensor{}, map[string]tensorfile.Tensor{}
	index := map[string]string{}
	i := 0
	for n, v := range ts {
		if i%2 == 0 {
			a[n], index[n] = v, "model-00001-of-00002.safetensors"
		} else {
			b[n], index[n] = v, "model-00002-of-00002.safetensors"
		}
		i++
	}
	if err := tensorfile.Write(filepath.Join(dir, "model-00001-of-00002.safetensors"), a, nil); err != nil {
		t.Fatal(err)
	}
	if err := tensorfile.Write(filepath.Join(dir, "model-00002-of-00002.safetensors"), b, nil); err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString(`{"metadata": {}, "weight_map": {`)
	first := true
	for n, f := range index {
		if !first {
			sb.WriteString(",")
		}
		first = false
		sb.WriteString(`"` + n + `": "` + f + `"`)
	}
	sb.WriteString("}}")
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	ref := loadTiny(t, "git-tiny")
	for _, p := range ref.Params.All() {
		got := m.Params.Get(p.Name).F32()
		for j, v := range p.F32() {
			if got[j] != v {
				t.Fatalf("%s[%d] = %g, want %g", p.Name, j, got[j], v)
			}
		}
	}
}
