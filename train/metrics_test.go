package train

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func sameFloat(a, b float64) bool { return a == b || (math.IsNaN(a) && math.IsNaN(b)) }

func sameRecord(a, b Record) bool {
	return a.Step == b.Step && sameFloat(a.Epoch, b.Epoch) && sameFloat(a.Loss, b.Loss) && sameFloat(a.LR, b.LR) &&
		sameFloat(a.GradNorm, b.GradNorm) && sameFloat(a.ImagesPerS, b.ImagesPerS) && sameFloat(a.ValLoss, b.ValLoss) &&
		sameFloat(a.ValCIDEr, b.ValCIDEr) && a.Time.Equal(b.Time) && a.Note == b.Note
}

func testRecords() []Record {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 123456789, time.UTC)
	r1 := NewRecord(10)
	r1.Epoch, r1.Loss, r1.LR, r1.GradNorm, r1.ImagesPerS, r1.Time = 0.25, 2.5, 1.25e-5, 3.75, 41.5, t0
	r2 := NewRecord(20)
	r2.Epoch, r2.Loss, r2.LR, r2.GradNorm, r2.Time = 0.5, 2.125, 2.5e-5, math.Inf(1), t0.Add(time.Minute)
	r2.Note = `skipped step: non-finite gradient in "output.weight"`
	r3 := NewRecord(20)
	r3.ValLoss, r3.ValCIDEr, r3.Time = 2.4, 0.875, t0.Add(2*time.Minute)
	return []Record{r1, r2, r3}
}

func TestMetricsRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	recs := testRecords()
	w, err := OpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs[:2] {
		if err := w.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening appends.
	w, err = OpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(recs[2])
	w.Close()

	got, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("read %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if !sameRecord(got[i], recs[i]) {
			t.Errorf("record %d:\n got  %+v\n want %+v", i, got[i], recs[i])
		}
	}
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3", len(lines))
	}
	if strings.Contains(lines[2], `"loss"`) || !strings.Contains(lines[2], `"val_cider":0.875`) {
		t.Errorf("unmeasured fields must be left out: %s", lines[2])
	}
	if !strings.Contains(lines[1], `"grad_norm":"+Inf"`) {
		t.Errorf("infinite grad norm not written as \"+Inf\": %s", lines[1])
	}
	if !strings.HasPrefix(lines[0], `{"step":10,"epoch":0.25,"loss":2.5,"lr":1.25e-05,"grad_norm":3.75,"images_per_s":41.5,"time":"2024-05-01T12:00:00.123456789Z"}`) {
		t.Errorf("line 1 = %s", lines[0])
	}
}

// TestMetricsSurviveTornLastLine: a crash in the middle of a write leaves
// a partial last line; readers skip it, a plain open refuses the log, and a
// resume ends the line and marks it without removing a byte.
func TestMetricsSurviveTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "metrics.jsonl")
	recs := testRecords()
	w, _ := OpenMetrics(path)
	w.Write(recs[0])
	w.Close()
	// A crash in the middle of the second write.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"step":20,"epoch":0.`)
	f.Close()
	before, _ := os.ReadFile(path)

	got, err := ReadMetrics(path)
	if err != nil || len(got) != 1 {
		t.Fatalf("reading a log with a torn last line: %d records, %v", len(got), err)
	}
	if _, err := OpenMetrics(path); err == nil || !strings.Contains(err.Error(), "cut short") {
		t.Errorf("OpenMetrics on a torn log: %v", err)
	}
	w, err = ResumeMetrics(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(recs[1])
	w.Close()
	got, err = ReadMetrics(path)
	if err != nil || len(got) != 2 || !sameRecord(got[0], recs[0]) || !sameRecord(got[1], recs[1]) {
		t.Fatalf("after resuming: %d records, %v", len(got), err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.HasPrefix(after, before) {
		t.Errorf("resuming rewrote the log:\nbefore %q\nafter  %q", before, after)
	}
}

// TestResumeMetricsSupersedesLaterSteps: resuming from step 6 appends a
// marker rather than cutting the log; readers see the records of steps 7-10
// written before the kill replaced by the ones written after, as an
// uninterrupted run would have logged them, through several resumes.
func TestResumeMetricsSupersedesLaterSteps(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	write := func(w *MetricsWriter, from, to int, loss float64) {
		for s := from; s <= to; s++ {
			r := NewRecord(s)
			r.Loss = loss
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	w, _ := OpenMetrics(path)
	write(w, 1, 10, 1)
	size := func() int64 { st, _ := os.Stat(path); return st.Size() }
	n0 := size()
	w, err := ResumeMetrics(path, 6)
	if err != nil {
		t.Fatal(err)
	}
	if size() <= n0 {
		t.Fatal("the resume marker is not on disk")
	}
	write(w, 7, 8, 2)
	w, _ = ResumeMetrics(path, 7)
	write(w, 8, 12, 3)
	got, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	var steps []int
	for i, r := range got {
		steps = append(steps, r.Step)
		want := 1.0 // written before the first resume
		switch {
		case r.Step == 7:
			want = 2
		case r.Step >= 8:
			want = 3
		}
		if r.Step != i+1 || r.Loss != want || r.Event != "" {
			t.Errorf("record %d: step %d loss %v event %q, want step %d loss %v", i, r.Step, r.Loss, r.Event, i+1, want)
		}
	}
	if len(got) != 12 {
		t.Errorf("steps %v, want 1..12", steps)
	}
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), `"event":"resume"`); n != 2 || strings.Count(string(b), "\n") != 10+1+2+1+5 {
		t.Errorf("log holds %d resume markers and %d lines, want 2 and 19:\n%s", n, strings.Count(string(b), "\n"), b)
	}
}

func TestReadMetricsNamesBadLine(t *testing.T) {
	for _, c := range []struct {
		log, err string
		n        int
	}{
		{"{\"step\":1}\nnot json\n{\"step\":2}\n", "m.jsonl:2", 0},
		{"{\"step\":1}\nnot json\n", "m.jsonl:2", 0},
		{"{\"step\":1}\nnot json\nnot json either\n{\"step\":1,\"event\":\"resume\"}\n", "m.jsonl:2", 0},
		{"{\"step\":1}\nnot json\n{\"step\":2", "m.jsonl:2", 0},
		// Cut short by a kill: the last line, or the line before a resume marker.
		{"{\"step\":1}\n{\"step\":2,\"lo", "", 1},
		{"{\"step\":1}\n{\"step\":2,\"lo\n{\"step\":1,\"event\":\"resume\"}\n{\"step\":2}\n", "", 2},
		// An event this version does not know is no record.
		{"{\"step\":1}\n{\"step\":1,\"event\":\"future\"}\n", "", 1},
	} {
		path := filepath.Join(t.TempDir(), "m.jsonl")
		os.WriteFile(path, []byte(c.log), 0o644)
		got, err := ReadMetrics(path)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want one naming %s", c.log, err, c.err)
			}
			continue
		}
		if err != nil || len(got) != c.n {
			t.Errorf("%q: %d records, %v; want %d", c.log, len(got), err, c.n)
		}
	}
}

func TestMetricsSyncPeriodically(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	w, _ := OpenMetrics(path)
	defer w.Close()
	w.SyncEvery = 2
	w.Write(NewRecord(1))
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Errorf("record written through before SyncEvery")
	}
	w.Write(NewRecord(2))
	if got, _ := ReadMetrics(path); len(got) != 2 {
		t.Errorf("after SyncEvery records the file holds %d, want 2", len(got))
	}
}
