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
// client count gets a row.
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
	rows, parts, err := benchServe(context.Background(), m, nil, &serveBench{clients: "1,3", requests: 6, limit: time.Minute, tokens: 4, rows: 4}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Clients != 1 || rows[1].Clients != 3 {
		t.Fatalf("rows %+v", rows)
	}
	if parts == nil || parts.Encode1 <= 0 || parts.EncodeBatch != 4 || parts.Step1 <= 0 || parts.StepFull <= 0 || parts.StepRows < 1 || parts.CeilingRate <= 0 {
		t.Errorf("parts %+v", parts)
	}
	for _, r := range rows {
		if r.Errors != 0 || r.Requests != 6 || r.ImagesPerSec <= 0 || r.P99ms < r.P50ms {
			t.Errorf("row %+v", r)
		}
	}
}
