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
	"slices"
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
	clients   string
	requests  int
	limit     time.Duration
	tokens    int
	rows      int
	maxEncode int
	overlap   string               // "true", "false" or "both"
	dtype     gitmodel.WeightDtype // the served weights (set by runBench's --dtype)
}

func (b *serveBench) register(fs *flag.FlagSet) {
	fs.StringVar(&b.clients, "serve-clients", "1,4,16", "serve workload: concurrent client counts to measure")
	fs.IntVar(&b.requests, "serve-requests", 48, "serve workload: requests (one image each) per client count")
	fs.DurationVar(&b.limit, "serve-time", 3*time.Minute, "serve workload: time limit per client count (requests not started by then are not sent)")
	fs.IntVar(&b.tokens, "serve-tokens", 20, "serve workload: tokens generated per image (EOS banned until then)")
	fs.IntVar(&b.rows, "serve-batch-size", 16, "serve workload: the server's --batch-size")
	fs.IntVar(&b.maxEncode, "serve-max-encode-batch", 8, "serve workload: the server's --max-encode-batch (most images encoded in one prefix graph)")
	fs.StringVar(&b.overlap, "encode-overlap", "false", "serve workload: the server's --encode-overlap: true, false, or both (two servers measured in turn, A B B A, at each client count: an A/B in one run)")
}

// overlapModes are the --encode-overlap settings to measure, in order.
func (b *serveBench) overlapModes() ([]bool, error) {
	switch b.overlap {
	case "", "true":
		return []bool{true}, nil
	case "false":
		return []bool{false}, nil
	case "both":
		return []bool{true, false}, nil
	}
	return nil, usageError{fmt.Errorf("--encode-overlap must be true, false or both, got %q", b.overlap)}
}

// serveRow is one measured client count (of one --encode-overlap mode).
type serveRow struct {
	Clients      int     `json:"clients"`
	Overlap      bool    `json:"encode_overlap"`
	Requests     int     `json:"requests"`
	Errors       int     `json:"errors"`
	Seconds      float64 `json:"seconds"`
	ImagesPerSec float64 `json:"images_per_second"`
	P50ms        float64 `json:"p50_ms"`
	P99ms        float64 `json:"p99_ms"`
	// ImagesPerEncode is the mean number of images the server encoded in
	// one prefix graph during the row's requests (1: one at a time).
	ImagesPerEncode float64 `json:"images_per_encode"`
	// EncodeBusy is the share of the row's time the encoder goroutine spent
	// encoding (the sum of its encode durations over the elapsed time).
	EncodeBusy float64 `json:"encode_busy"`
}

// serveParts are the costs one served image is made of, each measured
// alone (nothing else running in the process), and the ceiling they give.
type serveParts struct {
	Preprocess   float64 `json:"preprocess_s"`             // PNG decode + CLIP preprocessing, one image
	Vision       float64 `json:"vision_s"`                 // vision tower, one image
	Prefix1      float64 `json:"prefix_s"`                 // the prefix graph alone (vision tower + decoder over image tokens and prompt + first logits), one image
	PrefixBatch  float64 `json:"prefix_per_image_s_batch"` // the same per image, EncodeBatch images in one graph (runs alternating with Prefix1's)
	Encode1      float64 `json:"encode_s"`                 // one image's encode in the batcher (the prefix graph, copying its keys/values), compile excluded
	EncodeFull   float64 `json:"encode_per_image_s_batch"` // the same per image, MaxEncode images in one graph
	EncodeBatch  int     `json:"encode_batch"`
	Step1        float64 `json:"decode_step_s_1_row"`
	StepFull     float64 `json:"decode_step_s_most"` // one decode step with StepRows rows busy, the most seen
	StepRows     int     `json:"decode_step_rows"`
	Rows         int     `json:"rows"`
	Tokens       int     `json:"tokens"`
	Alone        float64 `json:"alone_s"`                  // one image through the batcher alone (no HTTP)
	SingleRate   float64 `json:"single_images_per_second"` // 1/(preprocess + alone)
	CeilingRate  float64 `json:"ceiling_images_per_second"`
	CeilingRatio float64 `json:"ceiling_ratio"`
}

// benchServeParts measures what one image costs the service: alone (the
// single-client path: encode one image, then tokens single-row steps) and
// in a full batch (its share of a batched encode and of tokens full steps).
// Encoding and decoding both keep the cores busy, so overlapping them
// gains only the cores' idle moments: 1/(preprocess + encode share +
// decode share) is, to that extent, the throughput ceiling here.
func benchServeParts(ctx context.Context, m *gitmodel.Model, p *caption.Pipeline, b *serveBench, png []byte) (*serveParts, error) {
	c := m.Config
	parts := &serveParts{Rows: b.rows, Tokens: b.tokens}
	median := func(xs []float64) float64 {
		if len(xs) == 0 {
			return 0
		}
		xs = append([]float64(nil), xs...)
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	timeIt := func(runs int, fn func() error) (float64, error) {
		var ts []float64
		for i := range runs + 1 {
			t0 := time.Now()
			if err := fn(); err != nil {
				return 0, err
			}
			if i > 0 { // the first run compiles and warms up
				ts = append(ts, time.Since(t0).Seconds())
			}
		}
		return median(ts), nil
	}
	var err error
	if parts.Preprocess, err = timeIt(5, func() error {
		img, err := imageproc.Decode(png)
		if err != nil {
			return err
		}
		_, err = p.Processor.Preprocess(img)
		return err
	}); err != nil {
		return nil, err
	}
	img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	rng := rand.New(rand.NewSource(5))
	pixels := make([]float32, b.rows*img)
	for i := range pixels {
		pixels[i] = float32(rng.NormFloat64())
	}
	f, err := m.NewForward(1, 1, gitmodel.ForwardOptions{VisionOnly: true})
	if err != nil {
		return nil, err
	}
	parts.Vision, err = timeIt(3, func() error { return f.Run(gitmodel.Batch{Pixels: pixels[:img], IDs: []int{c.BosTokenID}}) })
	f.Close()
	if err != nil {
		return nil, err
	}
	// The prefix graph alone, one image and MaxEncode images per graph,
	// runs alternating (the machine's load falls on both alike): whether
	// encoding waiting images together is cheaper per image than one by
	// one, and what the decoder's prefix pass adds to the vision tower.
	nb := min(b.maxEncode, b.rows)
	if err := benchPrefixes(m, pixels, img, nb, parts); err != nil {
		return nil, err
	}
	// The batcher's own observers time its encodes and steps.
	var mu sync.Mutex
	encodes := map[int][]float64{}
	steps := map[int][]float64{}
	// Serial encoding: no step runs while images are encoded, so every
	// part is timed with nothing else running.
	newBatcher := func(window time.Duration) (*gitmodel.Batcher, error) {
		return m.NewBatcher(gitmodel.BatcherOptions{Rows: b.rows, MaxText: b.tokens + 1, Window: window, MaxEncode: b.maxEncode, SerialEncode: true,
			OnStep: func(rows int, d time.Duration) {
				mu.Lock()
				steps[rows] = append(steps[rows], d.Seconds())
				mu.Unlock()
			},
			OnEncode: func(n int, d time.Duration) {
				mu.Lock()
				encodes[n] = append(encodes[n], d.Seconds())
				mu.Unlock()
			}})
	}
	// One image alone on a batcher with the server's default wait window:
	// a lone call waits the whole window for others, so the full batch's
	// 200 ms window below would be counted in Alone (and leave the cores
	// idle just before the encode).
	bt, err := newBatcher(0)
	if err != nil {
		return nil, err
	}
	o := gitmodel.GenerateOptions{MaxNewTokens: b.tokens, MinNewTokens: b.tokens}
	prompt := []int{c.BosTokenID}
	parts.Alone, err = timeIt(3, func() error {
		_, err := bt.Generate(ctx, pixels[:img], prompt, o)
		return err
	})
	bt.Close()
	if err != nil {
		return nil, err
	}
	if bt, err = newBatcher(200 * time.Millisecond); err != nil {
		return nil, err
	}
	defer bt.Close()
	mu.Lock()
	if e := encodes[1]; len(e) > 1 {
		parts.Encode1 = median(e[1:]) // the first compiled the graph
	}
	parts.Step1 = median(steps[1])
	clear(encodes)
	clear(steps)
	mu.Unlock()
	// A full batch, twice (the first compiles the batched graphs): all
	// calls arrive within the window, are encoded MaxEncode at a time
	// (serially: no step meanwhile) and then decode together, every row
	// busy.
	full := func() error {
		var wg sync.WaitGroup
		errs := make([]error, b.rows)
		for i := range b.rows {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = bt.Generate(ctx, pixels[i*img:(i+1)*img], prompt, o)
			}()
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	for i := range 2 {
		if i == 1 {
			mu.Lock()
			clear(encodes)
			clear(steps)
			mu.Unlock()
		}
		if err := full(); err != nil {
			return nil, err
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for n, ds := range encodes {
		if n > parts.EncodeBatch {
			parts.EncodeBatch = n
			parts.EncodeFull = slices.Min(ds) / float64(n)
		}
	}
	// The step over the most rows seen (all of them, unless a call was
	// late for the window), shared by every row: an image's decode share
	// (a lower bound if fewer rows were seen).
	for r, ds := range steps {
		if r > parts.StepRows {
			parts.StepRows, parts.StepFull = r, median(ds)
		}
	}
	parts.SingleRate = 1 / (parts.Preprocess + parts.Alone)
	perImage := parts.Preprocess + parts.EncodeFull + float64(b.tokens)*parts.StepFull/float64(b.rows)
	parts.CeilingRate = 1 / perImage
	parts.CeilingRatio = parts.CeilingRate / parts.SingleRate
	return parts, nil
}

// benchPrefixes times the batcher's prefix graph (ForwardOptions{Last:
// true}, a one-token prompt) alone for one image and for n images in one
// graph, three runs each after a warm-up, alternating, and stores the
// medians (per image for n) in parts.
func benchPrefixes(m *gitmodel.Model, pixels []float32, img, n int, parts *serveParts) error {
	bos := m.Config.BosTokenID
	var fs []*gitmodel.Forward
	defer func() {
		for _, f := range fs {
			f.Close()
		}
	}()
	for _, batch := range []int{1, n} {
		f, err := m.NewForward(batch, 1, gitmodel.ForwardOptions{Last: true})
		if err != nil {
			return err
		}
		fs = append(fs, f)
	}
	ids := make([]int, n)
	for i := range ids {
		ids[i] = bos
	}
	ts := [2][]float64{}
	for i := range 4 {
		for j, f := range fs {
			batch := f.B
			t0 := time.Now()
			if err := f.Run(gitmodel.Batch{Pixels: pixels[:batch*img], IDs: ids[:batch]}); err != nil {
				return err
			}
			if i > 0 { // the first runs warm up
				ts[j] = append(ts[j], time.Since(t0).Seconds()/float64(batch))
			}
		}
	}
	for j := range ts {
		sort.Float64s(ts[j])
	}
	parts.Prefix1, parts.PrefixBatch = ts[0][len(ts[0])/2], ts[1][len(ts[1])/2]
	return nil
}

// benchServe starts `gitcap serve` in-process on loopback and measures
// caption throughput and latency for each client count, after measuring
// the parts an image costs (benchServeParts). p may be nil: a tokenizer
// and CLIP processor matching m are made up (random git-base).
func benchServe(ctx context.Context, m *gitmodel.Model, p *caption.Pipeline, b *serveBench, stderr io.Writer) ([]serveRow, *serveParts, error) {
	var levels []int
	for _, f := range strings.Split(b.clients, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, nil, usageError{fmt.Errorf("--serve-clients: %q is not a positive count", f)}
		}
		levels = append(levels, n)
	}
	if b.requests < 1 || b.tokens < 1 || b.rows < 1 || b.limit <= 0 {
		return nil, nil, usageError{errors.New("--serve-requests, --serve-tokens, --serve-batch-size and --serve-time must be positive")}
	}
	if p == nil {
		var err error
		if p, err = syntheticPipeline(m); err != nil {
			return nil, nil, err
		}
	}
	bodies, ctype, pngs, err := benchBodies(b.tokens)
	if err != nil {
		return nil, nil, err
	}
	modes, err := b.overlapModes()
	if err != nil {
		return nil, nil, err
	}
	if b.maxEncode < 1 {
		return nil, nil, usageError{errors.New("--serve-max-encode-batch must be at least 1")}
	}
	if m, p, err = servedModel(m, p, b.dtype); err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(stderr, "serve: %s weights; measuring the parts of one image's cost ...\n", b.dtype)
	parts, err := benchServeParts(ctx, m, p, b, pngs[0])
	if err != nil {
		return nil, nil, err
	}
	// One server per --encode-overlap mode, each on its own loopback port;
	// with both, each client count runs them in turn (A B B A, half the
	// requests each time), so drifting load falls on both alike.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	type server struct {
		overlap bool
		one     func(i int) error
		images  atomic.Int64 // encoded, and encodes, and their nanoseconds
		encodes atomic.Int64
		busy    atomic.Int64
	}
	var servers []*server
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	for _, overlap := range modes {
		sv := &server{overlap: overlap}
		s, err := serve.New(p, serve.Options{
			Batch: gitmodel.BatcherOptions{Rows: b.rows, MaxText: b.tokens + 1, MaxEncode: b.maxEncode, SerialEncode: !overlap,
				OnEncode: func(n int, d time.Duration) {
					sv.images.Add(int64(n))
					sv.encodes.Add(1)
					sv.busy.Add(int64(d))
				}},
			QueueImages: 4 * (b.rows + slicesMax(levels)), RequestTimeout: 10 * time.Minute,
		})
		if err != nil {
			return nil, nil, err
		}
		defer s.Close()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, nil, err
		}
		go s.Serve(sctx, ln, time.Minute)
		url := "http://" + ln.Addr().String() + "/v1/captions"
		sv.one = func(i int) error {
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
		fmt.Fprintf(stderr, "serve: encode overlap %v: warm-up with %d concurrent requests ...\n", overlap, warm)
		if _, err := runClients(ctx, warm, warm, b.limit, sv.one); err != nil {
			return nil, nil, err
		}
		servers = append(servers, sv)
	}
	var rows []serveRow
	for _, c := range levels {
		if err := ctx.Err(); err != nil {
			return rows, parts, err
		}
		order := []int{0}
		n := []int{b.requests}
		if len(servers) == 2 {
			order = []int{0, 1, 1, 0}
			r := b.requests // each mode gets them all, in two halves
			n = []int{(r + 1) / 2, (r + 1) / 2, r / 2, r / 2}
		}
		runs := make([]clientRun, len(servers))
		for k, si := range order {
			if n[k] == 0 {
				continue
			}
			sv := servers[si]
			fmt.Fprintf(stderr, "serve: %d clients, %d requests, encode overlap %v ...\n", c, n[k], sv.overlap)
			i0, e0, b0 := sv.images.Load(), sv.encodes.Load(), sv.busy.Load()
			run, err := runClients(ctx, c, n[k], b.limit, sv.one)
			run.images += sv.images.Load() - i0
			run.encodes += sv.encodes.Load() - e0
			run.busy += time.Duration(sv.busy.Load() - b0)
			runs[si].add(run)
			if err != nil {
				return rows, parts, err
			}
		}
		for si, sv := range servers {
			rows = append(rows, runs[si].row(c, sv.overlap))
		}
	}
	return rows, parts, nil
}

// servedModel is m (and p) with the weights in dt: a bf16 copy of an fp32
// model (gitmodel.Model.CloneBF16, with bf16 activations for bf16-full), the
// pipeline sharing its tokenizer and image processor.
func servedModel(m *gitmodel.Model, p *caption.Pipeline, dt gitmodel.WeightDtype) (*gitmodel.Model, *caption.Pipeline, error) {
	if dt == "" || dt == gitmodel.FP32 {
		return m, p, nil
	}
	bf := m
	if !m.IsBF16() {
		var err error
		if bf, err = m.CloneBF16(); err != nil {
			return nil, nil, err
		}
	}
	bf.SetBF16Activations(dt == gitmodel.BF16Full)
	q := *p
	q.Model = bf
	return bf, &q, nil
}

// clientRun is what runClients measured: per-request latencies, errors,
// elapsed time, and (filled in by the caller) the server's encodes meanwhile.
type clientRun struct {
	lat      []float64
	errors   int
	seconds  float64
	images   int64
	encodes  int64
	busy     time.Duration
	firstErr error
}

// add merges another run of the same setting into r.
func (r *clientRun) add(o clientRun) {
	r.lat = append(r.lat, o.lat...)
	r.errors += o.errors
	r.seconds += o.seconds
	r.images += o.images
	r.encodes += o.encodes
	r.busy += o.busy
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
}

// row summarises r for c clients.
func (r *clientRun) row(c int, overlap bool) serveRow {
	row := serveRow{Clients: c, Overlap: overlap, Requests: len(r.lat), Errors: r.errors, Seconds: r.seconds}
	if r.seconds > 0 {
		row.ImagesPerSec = float64(len(r.lat)) / r.seconds
		row.EncodeBusy = r.busy.Seconds() / r.seconds
	}
	if r.encodes > 0 {
		row.ImagesPerEncode = float64(r.images) / float64(r.encodes)
	}
	if len(r.lat) > 0 {
		lat := slices.Clone(r.lat)
		sort.Float64s(lat)
		row.P50ms = 1000 * lat[len(lat)/2]
		row.P99ms = 1000 * lat[min(len(lat)-1, (len(lat)*99+99)/100-1)]
	}
	return row
}

// runClients sends up to n requests from c concurrent clients, starting no
// new one after limit, and measures them. It fails only when every request
// failed (or ctx ended).
func runClients(ctx context.Context, c, n int, limit time.Duration, one func(i int) error) (clientRun, error) {
	var next atomic.Int64
	var mu sync.Mutex
	var run clientRun
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
					run.errors++
					if run.firstErr == nil {
						run.firstErr = err
					}
				} else {
					run.lat = append(run.lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	run.seconds = time.Since(start).Seconds()
	if len(run.lat) == 0 && run.firstErr != nil {
		return run, fmt.Errorf("serve bench: every request failed: %w", run.firstErr)
	}
	return run, ctx.Err()
}

// benchBodies are one-image multipart requests (four different synthetic
// photo-sized PNGs, also returned) asking for exactly `tokens` tokens. The
// server caches nothing, so repeating them costs the same as new images.
func benchBodies(tokens int) (bodies [][]byte, types []string, pngs [][]byte, err error) {
	rng := rand.New(rand.NewSource(3))
	for k := range 4 {
		img := image.NewRGBA(image.Rect(0, 0, 320, 240))
		for y := 0; y < 240; y++ {
			for x := 0; x < 320; x++ {
				img.Set(x, y, color.RGBA{uint8(x + 40*k), uint8(y), uint8(rng.Intn(256)), 255})
			}
		}
		var buf, pb bytes.Buffer
		if err := png.Encode(&pb, img); err != nil {
			return nil, nil, nil, err
		}
		mw := multipart.NewWriter(&buf)
		w, err := mw.CreateFormFile("image", fmt.Sprintf("bench%d.png", k))
		if err != nil {
			return nil, nil, nil, err
		}
		w.Write(pb.Bytes())
		mw.WriteField("max_new_tokens", strconv.Itoa(tokens))
		mw.WriteField("min_new_tokens", strconv.Itoa(tokens))
		mw.Close()
		bodies = append(bodies, buf.Bytes())
		types = append(types, mw.FormDataContentType())
		pngs = append(pngs, pb.Bytes())
	}
	return bodies, types, pngs, nil
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

func printServeRows(w io.Writer, rows []serveRow, parts *serveParts, dtype gitmodel.WeightDtype) {
	if parts != nil {
		pt := parts
		fmt.Fprintf(w, "\nserve (%s weights): one image's parts, each measured alone\n", dtype)
		fmt.Fprintf(w, "  preprocess (PNG decode + CLIP)        %8.1f ms\n", 1000*pt.Preprocess)
		fmt.Fprintf(w, "  vision tower, 1 image                 %8.1f ms\n", 1000*pt.Vision)
		fmt.Fprintf(w, "  prefix graph, 1 image                 %8.1f ms (decoder prefix pass + first logits: %.1f ms)\n", 1000*pt.Prefix1, 1000*(pt.Prefix1-pt.Vision))
		fmt.Fprintf(w, "  prefix graph per image, %2d at once    %8.1f ms (%.2fx the one-image graph, runs alternating)\n", pt.EncodeBatch, 1000*pt.PrefixBatch, pt.PrefixBatch/pt.Prefix1)
		fmt.Fprintf(w, "  encode in the batcher, 1 image        %8.1f ms\n", 1000*pt.Encode1)
		fmt.Fprintf(w, "  encode per image, %2d at once          %8.1f ms\n", pt.EncodeBatch, 1000*pt.EncodeFull)
		fmt.Fprintf(w, "  decode step, 1 row                    %8.1f ms\n", 1000*pt.Step1)
		fmt.Fprintf(w, "  decode step, %2d rows                  %8.1f ms (shared by %d rows: %.1f ms each)\n", pt.StepRows, 1000*pt.StepFull, pt.Rows, 1000*pt.StepFull/float64(pt.Rows))
		fmt.Fprintf(w, "  one image alone (%d tokens, no HTTP)  %8.1f ms\n", pt.Tokens, 1000*pt.Alone)
		fmt.Fprintf(w, "  single client: %.2f images/s; ceiling 1/(preprocess + encode share + %d·step/%d) = %.2f images/s = %.2fx\n",
			pt.SingleRate, pt.Tokens, pt.Rows, pt.CeilingRate, pt.CeilingRatio)
	}
	if len(rows) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%-22s %8s %9s %7s %9s %10s %10s %10s %8s %8s\n", "serve (loopback)", "overlap", "requests", "errors", "seconds", "images/s", "p50 ms", "p99 ms", "img/enc", "enc busy")
	for _, r := range rows {
		fmt.Fprintf(w, "%-22s %8v %9d %7d %9.2f %10.3f %10.1f %10.1f %8.2f %7.0f%%\n", fmt.Sprintf("%d clients", r.Clients), r.Overlap, r.Requests, r.Errors, r.Seconds, r.ImagesPerSec, r.P50ms, r.P99ms, r.ImagesPerEncode, 100*r.EncodeBusy)
	}
	for _, overlap := range []bool{true, false} {
		var first, last *serveRow
		for i := range rows {
			if rows[i].Overlap != overlap {
				continue
			}
			if first == nil {
				first = &rows[i]
			}
			last = &rows[i]
		}
		if first != nil && last != first && first.ImagesPerSec > 0 {
			fmt.Fprintf(w, "encode overlap %v: %d clients / %d client: %.2fx throughput\n", overlap, last.Clients, first.Clients, last.ImagesPerSec/first.ImagesPerSec)
		}
	}
}

func slicesMax(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
