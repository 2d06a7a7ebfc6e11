package graph

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// invariantRows are the row counts the batch-invariance tests try: one and
// few rows, both sides of fewRows (float32) and gemvRows (bf16), and a
// 12-image 3-beam decode step.
var invariantRows = []int{1, 2, 4, fewRows, fewRows + 1, gemvRows, gemvRows + 1, 36}

// TestRowProductsDoNotDependOnTheRowCount: a Linear built under
// Builder.BatchInvariant (rowProducts) gives each of n rows, for any n,
// the bits the same row gets alone, bias or none, for git-base's decoder
// shapes, a LM head-like width, and a weight too small for gemm's few-row
// kernel (which two rows would take to sgemm).
func TestRowProductsDoNotDependOnTheRowCount(t *testing.T) {
	rng := rand.New(rand.NewSource(11))
	const most = 36
	for _, sh := range []struct{ in, out int }{{256, 300}, {768, 768}, {768, 3072}, {256, 30522}, {64, 40}, {32, 37}, {37, 32}, {32, 96}, {32, 32}, {32, 30522}} {
		w := randF32(rng, sh.out*sh.in)
		x := randF32(rng, most*sh.in)
		for _, bias := range [][]float32{nil, randF32(rng, sh.out)} {
			alone := make([]float32, most*sh.out)
			for i := range most { // each row alone in a buffer of its own, as a step of one row has it
				xi := slices.Clone(x[i*sh.in : (i+1)*sh.in])
				linearFwdVia(rowProducts{}, xi, w, bias, alone[i*sh.out:(i+1)*sh.out], 1, sh.in, sh.out)
			}
			for _, n := range invariantRows {
				y := make([]float32, n*sh.out)
				linearFwdVia(rowProducts{}, x[:n*sh.in], w, bias, y, n, sh.in, sh.out)
				if i := firstDiff(y, alone[:n*sh.out]); i >= 0 {
					t.Errorf("%dx%d bias=%v, %d rows: y[%d,%d] = %v, alone %v", sh.out, sh.in, bias != nil, n, i/sh.out, i%sh.out, y[i], alone[i])
				}
			}
			plain := make([]float32, most*sh.out)
			linearFwd(x, w, bias, plain, most, sh.in, sh.out)
			if i := firstDiff(plain, alone); i >= 0 {
				t.Logf("%dx%d bias=%v: without BatchInvariant %d rows differ from the rows alone (first at [%d,%d])", sh.out, sh.in, bias != nil, most, i/sh.out, i%sh.out)
			}
		}
	}
}

// TestBatchInvariantLinearBF16DoesNotDependOnTheRowCount: a LinearBF16
// op built under Builder.BatchInvariant gives each row the bits it gets
// alone, for any row count, with the weight in checkpoint layout (with
// and without bf16 activations, which many rows would otherwise round)
// and packed-only (PackAMX), for shapes the packed GEMV takes and ones it
// does not.
func TestBatchInvariantLinearBF16DoesNotDependOnTheRowCount(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	const most = 36
	for _, sh := range []struct{ in, out int }{{256, 300}, {768, 100}, {37, 40}} {
		ps := NewParams(tensor.Float32)
		p := ps.New("w", sh.out, sh.in)
		copy(p.W, randF32(rng, sh.out*sh.in))
		p.ToBF16()
		x := randF32(rng, most*sh.in)
		b := randF32(rng, sh.out)
		for _, layout := range []string{"checkpoint", "checkpoint+bf16 activations", "packed"} {
			if layout == "packed" {
				if !p.PackAMX() {
					t.Fatal("PackAMX refused a bf16 weight")
				}
			}
			run := func(x, y []float32, n int) {
				linearBF16On(x, p.BF16(), p, b, y, n, sh.in, sh.out, &bf16Scratch{roundX: layout != "checkpoint"}, true)
			}
			alone := make([]float32, most*sh.out)
			for i := range most {
				run(slices.Clone(x[i*sh.in:(i+1)*sh.in]), alone[i*sh.out:(i+1)*sh.out], 1)
			}
			for _, n := range invariantRows {
				y := make([]float32, n*sh.out)
				run(x[:n*sh.in], y, n)
				if i := firstDiff(y, alone[:n*sh.out]); i >= 0 {
					t.Errorf("%s %s, %d rows: y[%d,%d] = %v, alone %v", fmt.Sprintf("%dx%d", sh.out, sh.in), layout, n, i/sh.out, i%sh.out, y[i], alone[i])
				}
			}
		}
	}
}
