package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"time"

	"github.com/gitcap/gitcap/data/tensorfile"
)

// Record is one line of the metrics log. A float field that is NaN was not
// measured at this step and is left out of the JSON line (JSON has no NaN);
// ±Inf is written as the string "+Inf" / "-Inf". A non-finite training loss
// is therefore best reported in Note.
type Record struct {
	Step       int       // optimiser steps taken
	Epoch      float64   // fractional epoch
	Loss       float64   // training loss (mean over the steps since the last record)
	LR         float64   // learning rate of the last step
	GradNorm   float64   // pre-clip global gradient norm
	ImagesPerS float64   // training throughput
	ValLoss    float64   // validation loss
	ValCIDEr   float64   // validation CIDEr-D
	Time       time.Time // wall-clock time of the record
	Note       string    // free text (events such as "skipped step: non-finite gradient")
}

// NewRecord returns a record for step with every metric unset (NaN) and
// Time now.
func NewRecord(step int) Record {
	nan := math.NaN()
	return Record{Step: step, Epoch: nan, Loss: nan, LR: nan, GradNorm: nan, ImagesPerS: nan, ValLoss: nan, ValCIDEr: nan, Time: time.Now()}
}

// recordFields lists the float fields in JSON order.
func (r *Record) floatFields() [7]struct {
	key string
	p   *float64
} {
	return [7]struct {
		key string
		p   *float64
	}{
		{"epoch", &r.Epoch}, {"loss", &r.Loss}, {"lr", &r.LR}, {"grad_norm", &r.GradNorm},
		{"images_per_s", &r.ImagesPerS}, {"val_loss", &r.ValLoss}, {"val_cider", &r.ValCIDEr},
	}
}

// MarshalJSON writes the record as one JSON object with keys step, epoch,
// loss, lr, grad_norm, images_per_s, val_loss, val_cider, time (RFC 3339)
// and note, leaving out NaN metrics, a zero time and an empty note.
func (r Record) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"step":`...)
	b = strconv.AppendInt(b, int64(r.Step), 10)
	for _, f := range r.floatFields() {
		v := *f.p
		if math.IsNaN(v) {
			continue
		}
		b = append(b, ',', '"')
		b = append(b, f.key...)
		b = append(b, '"', ':')
		switch {
		case math.IsInf(v, 1):
			b = append(b, `"+Inf"`...)
		case math.IsInf(v, -1):
			b = append(b, `"-Inf"`...)
		default:
			b = strconv.AppendFloat(b, v, 'g', -1, 64)
		}
	}
	if !r.Time.IsZero() {
		b = append(b, `,"time":"`...)
		b = r.Time.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	if r.Note != "" {
		nb, err := json.Marshal(r.Note)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"note":`...)
		b = append(b, nb...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes; missing metrics become NaN.
// Unknown keys are ignored, so that newer logs stay readable.
func (r *Record) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*r = NewRecord(0)
	r.Time = time.Time{}
	s, ok := raw["step"]
	if !ok {
		return errors.New("no step")
	}
	if err := json.Unmarshal(s, &r.Step); err != nil {
		return fmt.Errorf("step: %w", err)
	}
	for _, f := range r.floatFields() {
		m, ok := raw[f.key]
		if !ok || string(m) == "null" {
			continue
		}
		var x float64
		if err := json.Unmarshal(m, &x); err != nil {
			var str string
			if json.Unmarshal(m, &str) != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
			switch str {
			case "+Inf", "Inf", "Infinity":
				x = math.Inf(1)
			case "-Inf", "-Infinity":
				x = math.Inf(-1)
			case "NaN":
				x = math.NaN()
			default:
				return fmt.Errorf("%s: want a number, got %q", f.key, str)
			}
		}
		*f.p = x
	}
	if t, ok := raw["time"]; ok {
		if err := json.Unmarshal(t, &r.Time); err != nil {
			return fmt.Errorf("time: %w", err)
		}
	}
	if n, ok := raw["note"]; ok {
		if err := json.Unmarshal(n, &r.Note); err != nil {
			return fmt.Errorf("note: %w", err)
		}
	}
	return nil
}

// MetricsWriter appends records to a JSON Lines file. It syncs the file to
// disk every SyncEvery records or SyncInterval, whichever comes first, and
// on Close.
type MetricsWriter struct {
	f            *os.File
	w            *bufio.Writer
	path         string
	SyncEvery    int           // records between syncs; default 50
	SyncInterval time.Duration // time between syncs; default 30s
	pending      int
	lastSync     time.Time
}

// OpenMetrics opens path for appending, creating it if needed. A partial
// last line (left by a crash in the middle of a write) is cut off first so
// that the next record starts on a line of its own.
func OpenMetrics(path string) (*MetricsWriter, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := dropPartialLine(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &MetricsWriter{f: f, w: bufio.NewWriter(f), path: path, SyncEvery: 50, SyncInterval: 30 * time.Second, lastSync: time.Now()}, nil
}

// dropPartialLine truncates f after its last newline and leaves the offset
// at the end.
func dropPartialLine(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	end := size
	buf := make([]byte, 4096)
	for end > 0 {
		n := int64(len(buf))
		if end < n {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end != size {
		if err := f.Truncate(end); err != nil {
			return err
		}
	}
	_, err = f.Seek(end, io.SeekStart)
	return err
}

// Write appends one record.
func (m *MetricsWriter) Write(r Record) error {
	b, err := r.MarshalJSON()
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if _, err := m.w.Write(b); err != nil {
		return fmt.Errorf("%s: %w", m.path, err)
	}
	m.pending++
	if (m.SyncEvery > 0 && m.pending >= m.SyncEvery) || time.Since(m.lastSync) >= m.SyncInterval {
		return m.Sync()
	}
	return nil
}

// Sync flushes buffered records and syncs the file to disk.
func (m *MetricsWriter) Sync() error {
	if err := m.w.Flush(); err != nil {
		return fmt.Errorf("%s: %w", m.path, err)
	}
	if err := m.f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", m.path, err)
	}
	m.pending = 0
	m.lastSync = time.Now()
	return nil
}

// Close syncs and closes the file.
func (m *MetricsWriter) Close() error {
	err := m.Sync()
	if cerr := m.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", m.path, cerr)
	}
	return err
}

// ReadMetrics reads a metrics log. A malformed line is an error naming the
// file and line, except a last line without a newline, which is a write cut
// short by a crash and is ignored.
func ReadMetrics(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Record
	line := 0
	for len(b) > 0 {
		line++
		i := bytes.IndexByte(b, '\n')
		var l []byte
		complete := i >= 0
		if complete {
			l, b = b[:i], b[i+1:]
		} else {
			l, b = b, nil
		}
		l = bytes.TrimSpace(l)
		if len(l) == 0 {
			continue
		}
		var r Record
		if err := r.UnmarshalJSON(l); err != nil {
			if !complete {
				break
			}
			return nil, fmt.Errorf("%s:%d: bad metrics record: %v", path, line, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// TrimMetrics rewrites the log (atomically) without the records whose step
// is above maxStep: used when a run resumes from a checkpoint taken at
// maxStep, so that the steps redone are not logged twice.
func TrimMetrics(path string, maxStep int) error {
	recs, err := ReadMetrics(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	return tensorfile.WriteAtomic(path, func(f *os.File) error {
		w := bufio.NewWriter(f)
		for _, r := range recs {
			if r.Step > maxStep {
				continue
			}
			b, err := r.MarshalJSON()
			if err != nil {
				return err
			}
			w.Write(b)
			w.WriteByte('\n')
		}
		return w.Flush()
	})
}
