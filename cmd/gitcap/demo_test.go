package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/train"
)

// TestDemoIsDeterministic runs a shortened demo twice and checks that the
// training losses, gradient norms, generated captions and held-out CIDEr-D
// are identical: for a given BLAS (and core count) the demo's figures are
// reproducible.
func TestDemoIsDeterministic(t *testing.T) {
	if testing.Short() {
		t.Skip("trains twice")
	}
	run := func() (string, []string) {
		out := filepath.Join(t.TempDir(), "demo")
		var stdout, stderr bytes.Buffer
		if code := realMain([]string{"demo", "--steps", "12", "--n", "40", "--out", out}, &stdout, &stderr); code != 0 {
			t.Fatalf("demo: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
		}
		var kept []string
		for _, line := range strings.Split(stdout.String(), "\n") {
			if strings.Contains(line, "generated:") || strings.HasPrefix(line, "held-out test CIDEr-D") {
				kept = append(kept, line)
			}
		}
		f, err := os.Open(filepath.Join(out, "run", "metrics.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var steps []string
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var m map[string]any
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				t.Fatal(err)
			}
			delete(m, "time")
			delete(m, "images_per_s")
			b, _ := json.Marshal(m)
			steps = append(steps, string(b))
		}
		return strings.Join(kept, "\n"), steps
	}
	out1, steps1 := run()
	out2, steps2 := run()
	if !strings.Contains(out1, "held-out test CIDEr-D") || len(steps1) == 0 {
		t.Fatalf("demo printed no score or logged no steps:\n%s", out1)
	}
	if out1 != out2 {
		t.Errorf("two demo runs differ:\n%s\n---\n%s", out1, out2)
	}
	if strings.Join(steps1, "\n") != strings.Join(steps2, "\n") {
		t.Errorf("two demo runs' training metrics differ:\n%s\n---\n%s", strings.Join(steps1, "\n"), strings.Join(steps2, "\n"))
	}
}

// TestDemoSCSTRunsBothStages: --scst fine-tunes stage 1's checkpoint with
// SCST in the same command and reports both stages' CIDEr-D and BLEU-4.
func TestDemoSCSTRunsBothStages(t *testing.T) {
	if testing.Short() {
		t.Skip("trains two stages")
	}
	out := filepath.Join(t.TempDir(), "demo")
	var stdout, stderr bytes.Buffer
	if code := realMain([]string{"demo", "--steps", "12", "--n", "40", "--scst", "--scst-steps", "3", "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("demo --scst: exit %d\n%s\n%s", code, stdout.String(), stderr.String())
	}
	s := stdout.String()
	for _, want := range []string{"self-critical sequence training from " + filepath.Join(out, "run", "checkpoint-"), "sample_cider", "  CIDEr-D  ", "  BLEU-4   ", "SCST: 3 steps"} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "run-scst", "checkpoint-last", "model.safetensors")); err != nil {
		t.Error(err)
	}
	// The reward is logged with the loss: metrics.jsonl and metrics.csv.
	recs, err := train.ReadMetrics(filepath.Join(out, "run-scst", train.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	logged := 0
	for _, r := range recs {
		if !math.IsNaN(r.Loss) {
			if r.SampleCIDEr < 0 || math.IsNaN(r.SampleCIDEr) {
				t.Errorf("step %d: loss %v logged with sample_cider %v", r.Step, r.Loss, r.SampleCIDEr)
			}
			logged++
		}
	}
	if logged == 0 {
		t.Errorf("run-scst/%s has no training record", train.MetricsFile)
	}
	csv, err := os.ReadFile(filepath.Join(out, "run-scst", train.MetricsCSVFile))
	if err != nil || !strings.Contains(string(csv), ",sample_cider,") {
		t.Errorf("metrics.csv has no sample_cider column (%v):\n%s", err, csv)
	}
}
