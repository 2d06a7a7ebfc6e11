package train

import (
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

	got, err := ReadMetrics(path)
	if err != nil || len(got) != 1 {
		t.Fatalf("reading a log with a torn last line: %d records, %v", len(got), err)
	}
	w, err = OpenMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(recs[1])
	w.Close()
	got, err = ReadMetrics(path)
	if err != nil || len(got) != 2 || !sameRecord(got[1], recs[1]) {
		t.Fatalf("after reopening: %d records, %v", len(got), err)
	}
}

func TestReadMetricsNamesBadLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	os.WriteFile(path, []byte("{\"step\":1}\nnot json\n{\"step\":2}\n"), 0o644)
	_, err := ReadMetrics(path)
	if err == nil || !strings.Contains(err.Error(), "m.jsonl:2") {
		t.Errorf("error %v, want one naming m.jsonl:2", err)
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

func TestTrimMetricsDropsStepsAfterResumePoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.jsonl")
	w, _ := OpenMetrics(path)
	for s := 1; s <= 10; s++ {
		w.Write(NewRecord(s))
	}
	w.Close()
	if err := TrimMetrics(path, 6); err != nil {
		t.Fatal(err)
	}
	got, _ := ReadMetrics(path)
	if len(got) != 6 || got[5].Step != 6 {
		t.Errorf("after TrimMetrics(6): %d records", len(got))
	}
	if err := TrimMetrics(filepath.Join(t.TempDir(), "none.jsonl"), 3); err != nil {
		t.Errorf("TrimMetrics on a missing log: %v", err)
	}
}
