package train

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"time"
)

// Record is one line of the metrics log. A float field that is NaN was not
// measured at this step and is left out of the JSON line (JSON has no NaN);
// ±Inf is written as the string "+Inf" / "-Inf". A non-finite training loss
// is therefore best reported in Note.
type Record struct {
	Step       int     // optimiser steps taken
	Epoch      float64 // fractional epoch
	Loss       float64 // training loss (mean over the steps since the last record)
	LR         float64 // learning rate of the last step
	GradNorm   float64 // pre-clip global gradient norm
	ImagesPerS float64 // training throughput
	ValLoss    float64 // validation loss
	ValCIDEr   float64 // validation CIDEr-D
	// SampleCIDEr is SCST's mean CIDEr-D reward of the sampled training
	// captions since the last record (under mpirun, rank 0's samples).
	SampleCIDEr float64
	Time        time.Time // wall-clock time of the record
	Note        string    // free text (events such as "skipped step: non-finite gradient")
	// Event marks a record that is not a measurement: EventResume. Readers
	// see no such record; ReadMetrics applies them.
	Event string
}

// EventResume is the Event of the record a resumed run appends first: the
// run went back to its checkpoint at Step, so records before this one with
// a larger step are superseded (those steps are redone and logged again
// after it), and a line just before it that does not parse is a write that
// the kill cut short.
const EventResume = "resume"

// NewRecord returns a record for step with every metric unset (NaN) and
// Time now.
func NewRecord(step int) Record {
	nan := math.NaN()
	return Record{Step: step, Epoch: nan, Loss: nan, LR: nan, GradNorm: nan, ImagesPerS: nan, ValLoss: nan, ValCIDEr: nan, SampleCIDEr: nan, Time: time.Now()}
}

// recordFields lists the float fields in JSON order.
func (r *Record) floatFields() [8]struct {
	key string
	p   *float64
} {
	return [8]struct {
		key string
		p   *float64
	}{
		{"epoch", &r.Epoch}, {"loss", &r.Loss}, {"lr", &r.LR}, {"grad_norm", &r.GradNorm},
		{"images_per_s", &r.ImagesPerS}, {"val_loss", &r.ValLoss}, {"val_cider", &r.ValCIDEr},
		{"sample_cider", &r.SampleCIDEr},
	}
}

// MarshalJSON writes the record as one JSON object with keys step, event,
// epoch, loss, lr, grad_norm, images_per_s, val_loss, val_cider,
// sample_cider, time
// (RFC 3339) and note, leaving out an empty event, NaN metrics, a zero time
// and an empty note.
func (r Record) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 256)
	b = append(b, `{"step":`...)
	b = strconv.AppendInt(b, int64(r.Step), 10)
	if r.Event != "" {
		eb, err := json.Marshal(r.Event)
		if err != nil {
			return nil, err
		}
		b = append(b, `,"event":`...)
		b = append(b, eb...)
	}
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
	if e, ok := raw["event"]; ok {
		if err := json.Unmarshal(e, &r.Event); err != nil {
			return fmt.Errorf("event: %w", err)
		}
	}
	return nil
}

// MetricsWriter appends records to a JSON Lines file. It syncs the file to
// disk every SyncEvery records or SyncInterval, whichever comes first, and
// on Close.
//
// The log is only ever appended to, never truncated or rewritten, so that a
// reader (or a second writer, had the run directory's lock been bypassed)
// never sees records vanish. A run that resumes from its checkpoint at step
// S appends an EventResume record for S instead of cutting the log back:
// the rule for readers is that such a record supersedes the records before
// it whose step is above S, and excuses a line just before it that does not
// parse (a write cut short by the kill). ReadMetrics applies the rule.
type MetricsWriter struct {
	f            *os.File
	w            *bufio.Writer
	path         string
	SyncEvery    int           // records between syncs; default 50
	SyncInterval time.Duration // time between syncs; default 30s
	pending      int
	lastSync     time.Time
}

// OpenMetrics opens path for appending, creating it if needed. A log that
// ends in a line cut short by a crash is refused: that is a resumed run's
// log, opened with ResumeMetrics.
func OpenMetrics(path string) (*MetricsWriter, error) {
	m, torn, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	if torn {
		m.f.Close()
		return nil, fmt.Errorf("%s ends in a record cut short by a crash: resume the run (gitcap train --resume), which marks it", path)
	}
	return m, nil
}

// ResumeMetrics opens path for appending (creating it if needed) for a run
// resumed from its checkpoint at step, and appends the EventResume record
// for step, ending a line cut short by the crash first. The record is on
// disk when it returns.
func ResumeMetrics(path string, step int) (*MetricsWriter, error) {
	m, torn, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	r := NewRecord(step)
	r.Event = EventResume
	r.Note = fmt.Sprintf("resumed from the checkpoint at step %d: earlier records of later steps are superseded", step)
	b, err := r.MarshalJSON()
	if err != nil {
		m.f.Close()
		return nil, err
	}
	if torn {
		m.w.WriteByte('\n')
	}
	m.w.Write(b)
	m.w.WriteByte('\n')
	if err := m.Sync(); err != nil {
		m.f.Close()
		return nil, err
	}
	return m, nil
}

// openRunMetrics opens the log of a run: a new one (resumeDir "") or one
// resumed from its checkpoint at step.
func openRunMetrics(path, resumeDir string, step int) (*MetricsWriter, error) {
	if resumeDir == "" {
		return OpenMetrics(path)
	}
	return ResumeMetrics(path, step)
}

// openAppend opens path with O_APPEND and reports whether its last line
// lacks a newline.
func openAppend(path string) (*MetricsWriter, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, err
	}
	torn := false
	st, err := f.Stat()
	if err == nil && st.Size() > 0 {
		var last [1]byte
		if _, err = f.ReadAt(last[:], st.Size()-1); err == nil {
			torn = last[0] != '\n'
		}
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	return &MetricsWriter{f: f, w: bufio.NewWriter(f), path: path, SyncEvery: 50, SyncInterval: 30 * time.Second, lastSync: time.Now()}, torn, nil
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

// ReadMetrics reads a metrics log as the run's records, with the rule of
// MetricsWriter applied: the records an EventResume record supersedes are
// dropped, and event records themselves are not returned, so that a run
// killed and resumed reads like the uninterrupted run. A line that does not
// parse is an error naming the file and line, unless it is the last line
// without a newline, or is followed by an EventResume record: both are
// writes cut short by a crash.
func ReadMetrics(path string) ([]Record, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []Record
	line, badLine := 0, 0 // badLine: a line that did not parse, unless excused by what follows
	var badErr error
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
		perr := r.UnmarshalJSON(l)
		if badLine != 0 && (perr != nil || r.Event != EventResume) {
			return nil, fmt.Errorf("%s:%d: bad metrics record: %v", path, badLine, badErr)
		}
		badLine = 0
		if perr != nil {
			if !complete {
				break
			}
			badLine, badErr = line, perr
			continue
		}
		switch r.Event {
		case "":
			out = append(out, r)
		case EventResume:
			kept := out[:0]
			for _, o := range out {
				if o.Step <= r.Step {
					kept = append(kept, o)
				}
			}
			out = kept
		}
		// Other events (from newer versions) carry no measurement.
	}
	if badLine != 0 {
		return nil, fmt.Errorf("%s:%d: bad metrics record: %v", path, badLine, badErr)
	}
	return out, nil
}
