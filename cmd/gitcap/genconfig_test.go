package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// copyCheckpoint copies the git-tiny fixture into a temporary directory
// with its generation_config.json replaced by gen.
func copyCheckpoint(t *testing.T, gen string) string {
	t.Helper()
	src := fixtures.Path(t, "git-tiny")
	dst := filepath.Join(t.TempDir(), "git-tiny")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if e.Name() == GenerationConfigFile {
			b = []byte(gen)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// TestCaptionTakesGenerationDefaultsFromTheCheckpoint: num_beams and
// max_length in generation_config.json apply when no flag is given (beam
// results carry a score, ids stop at max_length); flags override them; a
// malformed file or a bad value in it is an error naming the file.
func TestCaptionTakesGenerationDefaultsFromTheCheckpoint(t *testing.T) {
	img := fixtures.Path(t, "images", "cats.png")
	model := copyCheckpoint(t, `{"bos_token_id": 101, "eos_token_id": 102, "pad_token_id": 0, "num_beams": 3, "max_length": 4, "min_length": 4}`)
	caption := func(args ...string) map[string]any {
		t.Helper()
		var so, se bytes.Buffer
		if err := runCaption(context.Background(), append([]string{"--model", model, "--json", img}, args...), &so, &se); err != nil {
			t.Fatal(err, se.String())
		}
		var got map[string]any
		if err := json.Unmarshal(so.Bytes(), &got); err != nil {
			t.Fatalf("%q: %v", so.String(), err)
		}
		return got
	}
	got := caption()
	if _, beam := got["score"]; !beam || len(got["ids"].([]any)) != 4 {
		t.Errorf("with num_beams 3, max_length 4 from the file: %v", got)
	}
	got = caption("--num-beams", "1", "--max-length", "6", "--min-length", "6")
	if _, beam := got["score"]; beam || len(got["ids"].([]any)) != 6 {
		t.Errorf("flags --num-beams 1 --max-length 6 did not override the file: %v", got)
	}
	for _, bad := range []struct{ gen, want string }{
		{`{"num_beams": `, "generation_config.json"},
		{`{"num_beams": 0}`, "num-beams"},
		{`{"top_p": 2, "do_sample": true}`, "top-p"},
		{`{"early_stopping": "sometimes"}`, "early_stopping"},
	} {
		m := copyCheckpoint(t, bad.gen)
		var so, se bytes.Buffer
		err := runCaption(context.Background(), []string{"--model", m, img}, &so, &se)
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), GenerationConfigFile) {
			t.Errorf("generation_config.json %s: error %v, want one naming the file and %q", bad.gen, err, bad.want)
		}
	}
}
