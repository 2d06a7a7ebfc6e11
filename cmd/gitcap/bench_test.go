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
