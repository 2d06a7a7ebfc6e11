package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/gitcap/gitcap/configs"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/train"
)

// TestServeBenchRunsOnATinyRandomModel runs the serve workload end to end
// on configs/tiny.json with random weights (the path `gitcap bench --only
// serve` takes for the git-base shape): every request succeeds and each
// client count gets a row per --encode-overlap mode, with fp32 and with a
// bf16 copy of the model (--dtype).
func TestServeBenchRunsOnATinyRandomModel(t *testing.T) {
	b, err := configs.Read("tiny.json")
	if err != nil {
		t.Fatal(err)
	}
	c, err := gitmodel.ParseConfig("tiny.json", b)
	if err != nil {
		t.Fatal(err)
	}
	m, err := gitmodel.New(c)
	if err != nil {
		t.Fatal(err)
	}
	train.Init(m, 0)
	for _, tc := range []struct {
		overlap string
		dtype   gitmodel.WeightDtype
		modes   []bool
	}{
		{"true", gitmodel.FP32, []bool{true}},
		{"false", gitmodel.BF16, []bool{false}},
		{"both", gitmodel.BF16Full, []bool{true, false}},
	} {
		name := tc.overlap + "/" + string(tc.dtype)
		sb := &serveBench{clients: "1,3", requests: 6, limit: time.Minute, tokens: 4, rows: 4, maxEncode: 4, overlap: tc.overlap, dtype: tc.dtype}
		rows, parts, err := benchServe(context.Background(), m, nil, sb, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(rows) != 2*len(tc.modes) {
			t.Fatalf("%s: rows %+v", name, rows)
		}
		for i, r := range rows {
			if want := []int{1, 3}[i/len(tc.modes)]; r.Clients != want || r.Overlap != tc.modes[i%len(tc.modes)] {
				t.Errorf("%s: row %d is %d clients, overlap %v; want %d clients, overlap %v", name, i, r.Clients, r.Overlap, want, tc.modes[i%len(tc.modes)])
			}
			if r.Errors != 0 || r.Requests != 6 || r.ImagesPerSec <= 0 || r.P99ms < r.P50ms || r.ImagesPerEncode < 1 || r.EncodeBusy <= 0 {
				t.Errorf("%s: row %+v", name, r)
			}
		}
		if parts == nil || parts.Prefix1 <= 0 || parts.PrefixBatch <= 0 || parts.Encode1 <= 0 || parts.EncodeBatch != 4 || parts.Step1 <= 0 || parts.StepFull <= 0 || parts.StepRows < 1 || parts.CeilingRate <= 0 {
			t.Errorf("%s: parts %+v", name, parts)
		}
	}
	if m.IsBF16() {
		t.Error("the bf16 runs narrowed the caller's model")
	}
}
