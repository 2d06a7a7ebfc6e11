package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/gitcap/gitcap/data/fixtures"
)

// TestBenchRowsCarryTheirOwnPeak runs `gitcap bench --only vision --json`
// on the fixture model: each row carries the sgemm peak measured around
// its own timed runs, and its share is its GFLOP/s over that peak, not
// over the run-start figure.
func TestBenchRowsCarryTheirOwnPeak(t *testing.T) {
	var out, errb bytes.Buffer
	args := []string{"--model", fixtures.Path(t, "git-tiny"), "--only", "vision", "--runs", "1", "--json"}
	if err := runBench(context.Background(), args, &out, &errb); err != nil {
		t.Fatalf("bench: %v\n%s", err, errb.String())
	}
	var got struct {
		Peak    float64    `json:"sgemm_peak_gflops"`
		Results []benchRow `json:"results"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("bench --json: %v\n%s", err, out.String())
	}
	if got.Peak <= 0 || len(got.Results) != 2 {
		t.Fatalf("bench --json: peak %g, %d rows: %s", got.Peak, len(got.Results), out.String())
	}
	for _, r := range got.Results {
		if r.PeakGFLOPS <= 0 || r.GFLOPS <= 0 {
			t.Fatalf("%s: peak %g, GFLOP/s %g", r.Name, r.PeakGFLOPS, r.GFLOPS)
		}
		if want := r.GFLOPS / r.PeakGFLOPS; math.Abs(r.PeakShare-want) > 1e-12*want {
			t.Errorf("%s: share %g, want GFLOP/s ÷ its own peak = %g", r.Name, r.PeakShare, want)
		}
	}
}

// TestBF16RatiosAreTakenWithinARound: a slow round that falls on both the
// float32 and the bf16 run beside it leaves the per-round ratio alone, where
// a ratio of the two medians would move with it.
func TestBF16RatiosAreTakenWithinARound(t *testing.T) {
	fp := []float64{1.0, 3.0, 1.1} // round 2: the machine was busy for both
	bf := []float64{0.5, 1.5, 0.9}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"per-round ratios", medianOf(perRound(bf, fp, ratio)), 0.5},
		{"median of odd count", medianOf([]float64{3, 1, 2}), 2},
		{"upper median of even count", medianOf([]float64{4, 1, 3, 2}), 3},
	} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if medianOf(fp); fp[1] != 3.0 || fp[2] != 1.1 {
		t.Errorf("medianOf reordered its input: %v", fp)
	}
}
