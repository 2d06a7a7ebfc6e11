package hub

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cheggaaa/pb/v3"
	"golang.org/x/term"
)

const defaultLogInterval = 5 * time.Second

// progress reports the bytes of one Resolve's downloads, which run one file
// after another.
type progress interface {
	begin(total int64, files int)
	// file says name (size bytes, -1 if unknown) is being fetched and that
	// have bytes of it are already on disk.
	file(name string, size, have int64)
	add(n int64)
	end(err error)
}

type nopProgress struct{}

func (nopProgress) begin(int64, int)          {}
func (nopProgress) file(string, int64, int64) {}
func (nopProgress) add(int64)                 {}
func (nopProgress) end(error)                 {}

// newProgress picks a progress bar for a terminal, log lines otherwise.
func newProgress(w io.Writer, label string, interval time.Duration) progress {
	if w == nil {
		return nopProgress{}
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		width := 0
		if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
			width = cols
		}
		return &barProgress{w: w, label: label, width: width}
	}
	if interval <= 0 {
		interval = defaultLogInterval
	}
	return &logProgress{w: w, label: label, interval: interval, now: time.Now}
}

// counter tracks overall bytes: finished files plus the current one.
type counter struct {
	name          string
	finished, cur int64
}

func (c *counter) file(name string, have int64) {
	if name != c.name {
		c.finished += c.cur
		c.name = name
	}
	c.cur = have
}

func (c *counter) done() int64 { return c.finished + c.cur }

// barProgress draws a pb/v3 bar: bytes, percent, speed and ETA.
type barProgress struct {
	w     io.Writer
	label string
	width int
	bar   *pb.ProgressBar
	c     counter
}

func (p *barProgress) begin(total int64, files int) {
	p.bar = pb.New64(total)
	p.bar.SetTemplate(pb.Full)
	p.bar.SetWriter(p.w)
	p.bar.Set(pb.Bytes, true)
	p.bar.Set("prefix", fmt.Sprintf("%s (%s)", p.label, plural(files, "file")))
	if p.width > 0 {
		p.bar.SetWidth(p.width)
	}
	p.bar.Start()
}

func (p *barProgress) file(name string, size, have int64) {
	p.c.file(name, have)
	p.bar.Set("suffix", name)
	p.bar.SetCurrent(p.c.done())
}

func (p *barProgress) add(n int64) {
	p.c.cur += n
	p.bar.Add64(n)
}

func (p *barProgress) end(err error) {
	if p.bar == nil {
		return
	}
	if err != nil {
		p.bar.Set("suffix", "stopped: rerun to resume")
	} else {
		p.bar.Set("suffix", "done")
	}
	p.bar.Finish()
}

// logProgress writes a line at the start, at most one per interval while
// downloading, and one at the end.
type logProgress struct {
	w        io.Writer
	label    string
	interval time.Duration
	now      func() time.Time

	total       int64
	files       int
	c           counter
	transferred int64 // bytes received in this run (for the speed)
	start, last time.Time
}

func (p *logProgress) begin(total int64, files int) {
	p.total, p.files = total, files
	p.start = p.now()
	p.last = p.start
	fmt.Fprintf(p.w, "hub: downloading %s: %s, %s\n", p.label, plural(files, "file"), formatBytes(total))
}

func (p *logProgress) file(name string, size, have int64) {
	p.c.file(name, have)
}

func (p *logProgress) add(n int64) {
	p.c.cur += n
	p.transferred += n
	now := p.now()
	if now.Sub(p.last) < p.interval {
		return
	}
	p.last = now
	done := p.c.done()
	line := fmt.Sprintf("hub: %s: %s", p.label, formatBytes(done))
	if p.total > 0 {
		line += fmt.Sprintf(" / %s (%.0f%%)", formatBytes(p.total), 100*float64(done)/float64(p.total))
	}
	if el := now.Sub(p.start).Seconds(); el > 0 {
		rate := float64(p.transferred) / el
		line += fmt.Sprintf(", %s/s", formatBytes(int64(rate)))
		if p.total > done && rate > 0 {
			eta := time.Duration(float64(p.total-done) / rate * float64(time.Second))
			line += fmt.Sprintf(", ETA %v", eta.Round(time.Second))
		}
	}
	fmt.Fprintln(p.w, line+", "+p.c.name)
}

func (p *logProgress) end(err error) {
	el := p.now().Sub(p.start)
	if err != nil {
		fmt.Fprintf(p.w, "hub: %s: stopped after %s (rerun to resume)\n", p.label, formatBytes(p.c.done()))
		return
	}
	rate := ""
	if s := el.Seconds(); s > 0 {
		rate = fmt.Sprintf(", %s/s", formatBytes(int64(float64(p.transferred)/s)))
	}
	fmt.Fprintf(p.w, "hub: downloaded %s: %s, %s in %v%s\n", p.label, plural(p.files, "file"), formatBytes(p.c.done()), el.Round(time.Millisecond), rate)
}

// formatBytes writes n with a binary unit.
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
