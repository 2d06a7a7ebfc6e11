package train

import (
	"context"
	"errors"
	"flag"
	"math"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/graph"
)

// TestBF16StepRunsBF16ProductsNearFP32 checks that TrainerOptions.Precision
// reaches the training graph: one step's loss at bf16 differs from the
// float32 one (the products are rounded), by about what bf16 rounding of the
// products' inputs gives (well under 1% of the loss), and the step updates
// the float32 weights.
func TestBF16StepRunsBF16ProductsNearFP32(t *testing.T) {
	loss := map[graph.Precision]float64{}
	for _, p := range []graph.Precision{graph.FP32, graph.BF16} {
		m := tinyModel(t)
		tr, err := NewTrainer(m, TrainerOptions{AdamW: DefaultAdamWConfig(), LR: func(int) float64 { return 1e-3 }, Precision: p})
		if err != nil {
			t.Fatal(err)
		}
		before := snapshot(m)
		r, err := tr.Step(context.Background(), tinyBatch(m, 2, 6, 1))
		tr.Close()
		if err != nil {
			t.Fatal(err)
		}
		loss[p] = r.Loss
		changed := false
		for _, q := range m.Params.All() {
			for i, v := range q.F32() {
				changed = changed || v != before[q.Name][i]
			}
		}
		if !changed {
			t.Fatalf("%v: the step changed no weight", p)
		}
	}
	f, b := loss[graph.FP32], loss[graph.BF16]
	t.Logf("loss fp32 %.7f, bf16 %.7f", f, b)
	if f == b || math.Abs(b-f) > 0.01*f {
		t.Fatalf("bf16 loss %v vs fp32 %v: want a difference, below 1%%", b, f)
	}
}

// TestPrecisionOption checks the precision option: YAML and --precision
// (which overrides the file) set it, fp32 is the default, an unknown name is
// refused by Validate, and the setup check refuses bf16 on a CPU that
// cannot run it with a message naming the option and the way out.
func TestPrecisionOption(t *testing.T) {
	if d := DefaultConfig(); d.Precision != "fp32" {
		t.Fatalf("default precision %q, want fp32", d.Precision)
	}
	for _, tc := range []struct {
		yaml, flag, want string
		bad              bool
	}{
		{"", "", "fp32", false},
		{"precision: bf16\n", "", "bf16", false},
		{"precision: bf16\n", "--precision=fp32", "fp32", false},
		{"", "--precision=bf16", "bf16", false},
		{"precision: fp16\n", "", "", true},
	} {
		path := writeFile(t, "c.yaml", "model_config: m.json\ntrain:\n  path: x.json\n"+tc.yaml)
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		f := NewFlags(fs)
		args := []string{"--config", path}
		if tc.flag != "" {
			args = append(args, tc.flag)
		}
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		c, err := f.Config(fs, "")
		if tc.bad {
			if err == nil || !strings.Contains(err.Error(), "precision") {
				t.Fatalf("%q: got %v, want an error naming precision", tc.yaml, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q %q: %v", tc.yaml, tc.flag, err)
		}
		if c.Precision != tc.want {
			t.Fatalf("%q %q: precision %q, want %q", tc.yaml, tc.flag, c.Precision, tc.want)
		}
	}
	js, err := ParseConfig([]byte(`{"model_config": "m.json", "train": {"path": "x.json"}, "precision": "bf16"}`))
	if err != nil || js.Precision != "bf16" {
		t.Fatalf("JSON run config: %v, %v", js, err)
	}
	cfg := DefaultConfig()
	cfg.Precision = "bf16"
	noBF16 := func(p graph.Precision) error {
		if p == graph.BF16 {
			return errors.New("no AVX512_BF16")
		}
		return nil
	}
	_, err = checkPrecision(&cfg, noBF16)
	if err == nil {
		t.Fatal("bf16 accepted on a CPU without AVX512_BF16")
	}
	for _, s := range []string{"precision bf16", "--precision bf16", "no AVX512_BF16", "precision: fp32"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("refusal %q does not say %q", err, s)
		}
	}
	cfg.Precision = "fp32"
	if p, err := checkPrecision(&cfg, noBF16); err != nil || p != graph.FP32 {
		t.Fatalf("fp32: %v, %v", p, err)
	}
}
