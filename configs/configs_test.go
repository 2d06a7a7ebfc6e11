// Package configs holds the model presets and example training configs;
// its test proves each one loads.
package configs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/train"
)

func TestModelPresetsLoad(t *testing.T) {
	files, _ := filepath.Glob("*.json")
	if len(files) < 3 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]any
			if err := json.Unmarshal(b, &raw); err != nil {
				t.Fatal(err)
			}
			if raw["vocab_size"] == float64(0) {
				// demo.json's vocabulary size is filled in by gitcap demo
				// from the vocabulary it builds.
				raw["vocab_size"] = 100
				b, _ = json.Marshal(raw)
			}
			c, err := gitmodel.ParseConfig(f, b)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := gitmodel.New(c); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestGitBasePresetHasGitBaseShape(t *testing.T) {
	c, err := gitmodel.LoadConfig("git-base.json")
	if err != nil {
		t.Fatal(err)
	}
	m, err := gitmodel.New(c)
	if err != nil {
		t.Fatal(err)
	}
	// HF GitForCausalLM(GitConfig()) has 176,619,066 parameters.
	if n := m.Params.Count(); n != 176619066 {
		t.Errorf("git-base preset has %d parameters, HF's has 176,619,066", n)
	}
}

func TestTrainingConfigsLoad(t *testing.T) {
	files, _ := filepath.Glob("*.yaml")
	if len(files) < 2 {
		t.Fatalf("found only %v", files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if _, err := train.LoadConfig(f); err != nil {
				t.Fatal(err)
			}
		})
	}
}
