package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math/rand"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/data/tokenizer"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/gitmodel/serve"
)

// serveBench holds `gitcap bench --only serve`'s options.
type serveBench struct {
	clients  string
	requests int
	limit    time.Duration
	tokens   int
	rows     int
}

func (b *serveBench) register(fs *flag.FlagSet) {
	fs.StringVar(&b.clients, "serve-clients", "1,4,16", "serve workload: concurrent client counts to measure")
	fs.IntVar(&b.requests, "serve-requests", 48, "serve workload: requests (one image each) per client count")
	fs.DurationVar(&b.limit, "serve-time", 3*time.Minute, "serve workload: time limit per client count (requests not started by then are not sent)")
	fs.IntVar(&b.tokens, "serve-tokens", 20, "serve workload: tokens generated per image (EOS banned until then)")
	fs.IntVar(&b.rows, "serve-batch-size", 16, "serve workload: the server's --batch-size")
}

// serveRow is one measured client count.
type serveRow struct {
	Clients      int     `json:"clients"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_second"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
}

// benchServe starts `gitcap serve` in-process on loopback and measures
// caption throughput and latency for each client count. p may be nil: a
// tokenizer and CLIP processor matching m are made up (random git-base).
func benchServe(ctx context.Context, m *gitmodel.Model, p *caption.Pipeline, b *serveBench, stderr io.Writer) ([]serveRow, error) {
	var levels []int
	for _, f := range strings.Split(b.clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, usageError{fmt.Errorf("--serve-clients: %q is not a positive count", f)}
		}
		levels = append(levels, n)
	}
	if b.requests < 1 || b.tokens < 1 || b.rows < 1 || b.limit <= 0 {
		return nil, usageError{errors.New("--serve-requests, --serve-tokens, --serve-batch-size and --serve-time must be positive")}
	}
	if p == nil {
		var err error
		if p, err = syntheticPipeline(m); err != nil {
			return nil, err
		}
	}
	s, err := serve.New(p, serve.Options{
		Batch:       gitmodel.BatcherOptions{Rows: b.rows, MaxText: b.tokens + 1},
		QueueImages: 4 * (b.rows + slicesMax(levels)), RequestTimeout: 10 * time.Minute,
	})
	if err != nil {
		return nil, err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	go s.Serve(sctx, ln, time.Minute)
	url := "http://" + ln.Addr().String() + "/v1/captions"
	bodies, ctype, err := benchBodies(b.tokens)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	one := func(i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[i%len(bodies)]))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", ctype[i%len(ctype)])
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
		}
		return nil
	}
	// Warm-up: compile the prefix graphs for every encode batch size.
	warm := slicesMax(levels)
	fmt.Fprintf(stderr, "serve: warm-up with %d concurrent requests ...\n", warm)
	if _, err := runClients(ctx, warm, warm, b.limit, one); err != nil {
		return nil, err
	}
	var rows []serveRow
	for _, c := range levels {
		if err := ctx.Err(); err != nil {
			return rows, err
		}
		fmt.Fprintf(stderr, "serve: %d clients, %d requests ...\n", c, b.requests)
		row, err := runClients(ctx, c, b.requests, b.limit, one)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// runClients sends up to n requests from c concurrent clients, starting no
// new one after limit, and measures them.
func runClients(ctx context.Context, c, n int, limit time.Duration, one func(i int) error) (serveRow, error) {
	var next, errs atomic.Int64
	var mu sync.Mutex
	var lat []float64
	var firstErr error
	start := time.Now()
	var wg sync.WaitGroup
	for range c {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && time.Since(start) < limit {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				t0 := time.Now()
				err := one(i)
				d := time.Since(t0).Seconds()
				mu.Lock()
				if err != nil {
					errs.Add(1)
					if firstErr == nil {
						firstErr = err
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	row := serveRow{Clients: c, Requests: len(lat), Errors: int(errs.Load()), Seconds: el, ImagesPerSec: float64(len(lat)) / el}
	if len(lat) > 0 {
		sort.Float64s(lat)
		row.P50ms = 1000 * lat[len(lat)/2]
		row.P99ms = 1000 * lat[min(len(lat)-1, (len(lat)*99+99)/100-1)]
	}
	if len(lat) == 0 && firstErr != nil {
		return row, fmt.Errorf("serve bench: every request failed: %w", firstErr)
	}
	return row, ctx.Err()
}

// benchBodies are one-image multipart requests (four different synthetic
// photos-sized PNGs) asking for exactly `tokens` tokens.
func benchBodies(tokens int) ([][]byte, []string, error) {
	rng := rand.New(rand.NewSource(3))
	var bodies [][]byte
	var types []string
	for k := range 4 {
		img := image.NewRGBA(image.Rect(0, 0, 320, 240))
		for y := 0; y < 240; y++ {
			for x := 0; x < 320; x++ {
				img.Set(x, y, color.RGBA{uint8(x + 40*k), uint8(y), uint8(rng.Intn(256)), 255})
			}
		}
		var buf, pb bytes.Buffer
		if err := png.Encode(&pb, img); err != nil {
			return nil, nil, err
		}
		mw := multipart.NewWriter(&buf)
		w, err := mw.CreateFormFile("image", fmt.Sprintf("bench%d.png", k))
		if err != nil {
			return nil, nil, err
		}
		w.Write(pb.Bytes())
		mw.WriteField("max_new_tokens", strconv.Itoa(tokens))
		mw.WriteField("min_new_tokens", strconv.Itoa(tokens))
		mw.Close()
		bodies = append(bodies, buf.Bytes())
		types = append(types, mw.FormDataContentType())
	}
	return bodies, types, nil
}

// syntheticPipeline pairs a model without a checkpoint directory with a
// made-up tokenizer of its vocabulary size and a CLIP processor of its
// image size.
func syntheticPipeline(m *gitmodel.Model) (*caption.Pipeline, error) {
	c := m.Config
	vocab := tokenizer.SpecialTokens()
	for i := len(vocab); i < c.VocabSize; i++ {
		vocab = append(vocab, "tok"+strconv.Itoa(i))
	}
	dir, err := os.MkdirTemp("", "gitcap-bench-tokenizer-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := tokenizer.WriteFiles(dir, vocab); err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return nil, err
	}
	pc := imageproc.DefaultConfig()
	s := c.Vision.ImageSize
	pc.Size, pc.CropHeight, pc.CropWidth = imageproc.Size{ShortestEdge: s}, s, s
	proc, err := imageproc.New(pc)
	if err != nil {
		return nil, err
	}
	return &caption.Pipeline{Model: m, Tokenizer: tok, Processor: proc}, nil
}

func printServeRows(w io.Writer, rows []serveRow) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-22s %9s %7s %9s %10s %10s %10s\n", "serve (loopback)", "requests", "errors", "seconds", "images/s", "p50 ms", "p99 ms")
	for _, r := range rows {
		fmt.Fprintf(w, "%-22s %9d %7d %9.2f %10.3f %10.1f %10.1f\n", fmt.Sprintf("%d clients", r.Clients), r.Requests, r.Errors, r.Seconds, r.ImagesPerSec, r.P50ms, r.P99ms)
	}
	if len(rows) > 1 && rows[0].ImagesPerSec > 0 {
		last := rows[len(rows)-1]
		fmt.Fprintf(w, "%d clients / %d client: %.2fx throughput\n", last.Clients, rows[0].Clients, last.ImagesPerSec/rows[0].ImagesPerSec)
	}
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
