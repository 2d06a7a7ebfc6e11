package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeTrainFromScratchCommands runs the commands of the README's
// "Train from scratch on your own captions" section exactly as written,
// each with flags appended that make it tiny (a later flag wins).
func TestReadmeTrainFromScratchCommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	cmds := readmeCommands(t, string(b), "## Train from scratch on your own captions")
	tiny := map[string][]string{
		"synth":     {"--n", "20", "--size", "32"},
		"tokenizer": nil,
		"train":     {"--steps", "2", "--warmup-steps", "0", "--batch-size", "4", "--workers", "1", "--log-every", "1"},
		"eval":      {"--batch-size", "4", "--max-length", "6"},
	}
	var seen []string
	t.Chdir(t.TempDir())
	for _, c := range cmds {
		extra, ok := tiny[c[0]]
		if !ok {
			t.Fatalf("README runs gitcap %s, which this test has no tiny flags for", c[0])
		}
		seen = append(seen, c[0])
		var so, se bytes.Buffer
		if code := realMain(append(c, extra...), &so, &se); code != 0 {
			t.Fatalf("gitcap %s: exit %d\n%s\n%s", strings.Join(c, " "), code, so.String(), se.String())
		}
		if c[0] == "eval" && !strings.Contains(so.String(), "CIDEr") {
			t.Errorf("eval printed no scores:\n%s", so.String())
		}
	}
	if strings.Join(seen, " ") != "synth tokenizer train eval" {
		t.Errorf("README section runs %v, want synth, tokenizer, train, eval", seen)
	}
}

// readmeCommands returns the "bin/gitcap ..." lines of the first sh block
// after heading, split into arguments (comments dropped).
func readmeCommands(t *testing.T, readme, heading string) [][]string {
	t.Helper()
	_, sec, ok := strings.Cut(readme, heading+"\n")
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	_, block, _ := strings.Cut(sec, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var out [][]string
	for _, line := range strings.Split(block, "\n") {
		line, _, _ = strings.Cut(line, "#")
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "bin/gitcap" {
			out = append(out, f[1:])
		}
	}
	if len(out) == 0 {
		t.Fatal("no commands in the section")
	}
	return out
}
