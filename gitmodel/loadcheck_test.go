package gitmodel

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
	"github.com/gitcap/gitcap/data/tensorfile"
)

// TestNonFiniteWeightsAreALoadError checks that NaN and ±Inf anywhere in a
// tensor make Load fail, naming the file and the tensor.
func TestNonFiniteWeightsAreALoadError(t *testing.T) {
	const name = "git.encoder.layer.1.output.dense.weight"
	for _, tc := range []struct {
		label string
		v     float32
	}{{"NaN", float32(math.NaN())}, {"+Inf", float32(math.Inf(1))}, {"-Inf", float32(math.Inf(-1))}} {
		t.Run(tc.label, func(t *testing.T) {
			dir, ts := copyCheckpoint(t)
			w := ts[name]
			w.F32[7] = tc.v
			ts[name] = w
			path := filepath.Join(dir, "model.safetensors")
			if err := tensorfile.Write(path, ts, nil); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil {
				t.Fatal("loaded non-finite weights without an error")
			}
			for _, want := range []string{path, name, "non-finite", "index 7"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// TestMissingConfigFieldsTakeHFDefaults checks that fields config.json
// leaves out take GitConfig's / GitVisionConfig's defaults, field by field.
func TestMissingConfigFieldsTakeHFDefaults(t *testing.T) {
	c, err := ParseConfig("config.json", []byte(`{"hidden_size": 32, "num_attention_heads": 4, "vision_config": {"hidden_size": 64, "num_attention_heads": 4}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.HiddenSize, want.NumAttentionHeads = 32, 4
	want.Vision.HiddenSize, want.Vision.NumAttentionHeads = 64, 4
	got, _ := json.Marshal(c)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Fatalf("config with defaults:\n got %s\nwant %s", got, exp)
	}
	// GitVisionConfig's documented defaults (transformers 4.36.2).
	v := c.Vision
	if v.IntermediateSize != 3072 || v.NumHiddenLayers != 12 || v.NumChannels != 3 || v.ImageSize != 224 || v.PatchSize != 16 ||
		v.HiddenAct != "quick_gelu" || v.LayerNormEps != 1e-5 || v.AttentionDropout != 0 || v.InitializerRange != 0.02 {
		t.Fatalf("vision defaults differ from GitVisionConfig: %+v", v)
	}
	if c.TieWordEmbeddings || c.NumImageWithEmbedding != nil || c.MaxPositionEmbeddings != 1024 || c.PositionEmbeddingType != "absolute" {
		t.Fatalf("text defaults differ from GitConfig: %+v", c)
	}
}

// TestConfigMissingShapeFieldBlamesConfigBriefly checks that a config.json
// without hidden_size or vision_config, whose defaults do not fit the
// weights, gives a short error naming config.json and the field, not a
// many-kilobyte list blaming model.safetensors.
func TestConfigMissingShapeFieldBlamesConfigBriefly(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path(t, "git-tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ drop, want string }{
		{"hidden_size", "hidden_size (default 768)"},
		{"vision_config", "vision_config"},
		{"num_hidden_layers", "num_hidden_layers (default 6)"},
	} {
		t.Run(tc.drop, func(t *testing.T) {
			var m map[string]any
			if err := json.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			delete(m, tc.drop)
			b, _ := json.Marshal(m)
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
			if err := os.Symlink(fixtures.Path(t, "git-tiny", "model.safetensors"), filepath.Join(dir, "model.safetensors")); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil {
				t.Fatal("want an error")
			}
			msg := err.Error()
			t.Log(msg)
			cfgPath := filepath.Join(dir, "config.json")
			if !strings.HasPrefix(msg, cfgPath+":") || !strings.Contains(msg, tc.want) {
				t.Errorf("error does not start with %s and mention %q: %s", cfgPath, tc.want, msg)
			}
			if len(msg) > 1000 {
				t.Errorf("error is %d bytes long: %s", len(msg), msg)
			}
		})
	}
}

// TestConfigFieldErrorsNameConfigAndField checks wrongly typed and
// invalid fields.
func TestConfigFieldErrorsNameConfigAndField(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"hidden_size": "big"}`, "hidden_size"},
		{`{"vision_config": {"patch_size": 0}}`, "vision_config.patch_size"},
		{`{"vision_config": 3}`, "vision_config"},
		{`{"num_attention_heads": 5}`, "num_attention_heads"},
		{`{"eos_token_id": 40000}`, "eos_token_id"},
	} {
		_, err := ParseConfig("/m/config.json", []byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), "/m/config.json") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want an error naming /m/config.json and %s, got %v", tc.body, tc.want, err)
		}
	}
}

// TestMismatchErrorListsAFewNamesPerKind checks that weights which do not
// fit an explicit config give a short error (a few names per kind and a
// count), still naming the weights file.
func TestMismatchErrorListsAFewNamesPerKind(t *testing.T) {
	raw, err := os.ReadFile(fixtures.Path(t, "git-tiny", "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["num_hidden_layers"] = 1 // the weights have 2
	b, _ := json.Marshal(m)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
	weights := filepath.Join(dir, "model.safetensors")
	if err := os.Symlink(fixtures.Path(t, "git-tiny", "model.safetensors"), weights); err != nil {
		t.Fatal(err)
	}
	_, err = Load(dir)
	if err == nil {
		t.Fatal("want an error")
	}
	msg := err.Error()
	for _, want := range []string{weights, "unexpected tensors", "git.encoder.layer.1.", "more)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not mention %q: %s", want, msg)
		}
	}
	if len(msg) > 1000 {
		t.Errorf("error is %d bytes long", len(msg))
	}
}
