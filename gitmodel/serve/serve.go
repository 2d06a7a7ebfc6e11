// Package serve is gitcap's caption service: an HTTP JSON API over a GIT
// checkpoint with continuous batching (gitmodel.Batcher), request limits,
// optional bearer-token auth, Prometheus metrics, structured request logs
// and a small embedded web page. It holds no state between requests, so
// replicas scale horizontally. `gitcap serve` runs it.
package serve

import (
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
)

//go:embed web/index.html
var web embed.FS

// Options configure a Server. Zero values take the defaults noted.
type Options struct {
	Batch          gitmodel.BatcherOptions // rows, wait window, max text length (the max_length cap)
	MaxBodyBytes   int64                   // default 32 MiB
	MaxPixels      int                     // per image, default 40 Mpx
	MaxImages      int                     // per request (frames included), default 16
	QueueImages    int                     // images admitted at once (waiting + decoding), default max(8·rows, MaxImages); more get 429
	QueueBytes     int64                   // uploaded bytes admitted requests hold until their images are decoded, default 8·MaxBodyBytes; more get 429
	MaxBodyReads   int                     // request bodies read at once, default 16; more wait (within the request timeout)
	RequestTimeout time.Duration           // default 60 s
	MinUploadRate  int64                   // bytes/s a body must keep arriving at after UploadGrace (408 below it), default 4096; negative: no minimum
	UploadGrace    time.Duration           // how long a body may arrive at any rate, default 5 s
	DrainDelay     time.Duration           // on shutdown, how long the listener stays open answering 503 before it closes (0: closes at once)
	APIKey         string                  // if set, /v1/ requests need "Authorization: Bearer KEY"
	Logger         *slog.Logger            // default: discard
}

func (o Options) withDefaults() Options {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 32 << 20
	}
	if o.MaxPixels <= 0 {
		o.MaxPixels = 40_000_000
	}
	if o.MaxImages <= 0 {
		o.MaxImages = 16
		if o.QueueImages > 0 {
			o.MaxImages = min(o.MaxImages, o.QueueImages) // a request must fit in the queue
		}
	}
	if o.Batch.Rows <= 0 {
		o.Batch.Rows = 16
	}
	if o.QueueImages <= 0 {
		o.QueueImages = max(8*o.Batch.Rows, o.MaxImages)
	}
	if o.MaxBodyReads <= 0 {
		o.MaxBodyReads = 16
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 8 * o.MaxBodyBytes
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 60 * time.Second
	}
	if o.MinUploadRate == 0 {
		o.MinUploadRate = 4096
	}
	if o.UploadGrace <= 0 {
		o.UploadGrace = 5 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server serves one checkpoint.
type Server struct {
	p        *caption.Pipeline
	b        *gitmodel.Batcher
	o        Options
	lim      Limits
	m        *metrics
	log      *slog.Logger
	draining atomic.Bool
	ids      atomic.Uint64
	reads    chan struct{} // a slot per body being read
	decodes  chan struct{} // a slot per image being decoded at full size
	mu       sync.Mutex
	inFlight int   // images admitted
	held     int64 // uploaded bytes of admitted requests not yet decoded
}

// New starts a server's batcher for the pipeline (Close stops it).
func New(p *caption.Pipeline, opts Options) (*Server, error) {
	o := opts.withDefaults()
	if o.QueueImages < o.MaxImages {
		// A request of MaxImages images would get 429 on every retry.
		return nil, fmt.Errorf("serve: the queue (%d images) must hold a request of the most images allowed (%d)", o.QueueImages, o.MaxImages)
	}
	if o.QueueBytes < o.MaxBodyBytes {
		return nil, fmt.Errorf("serve: the queue's bytes (%d) must hold a request body of the largest size allowed (%d bytes)", o.QueueBytes, o.MaxBodyBytes)
	}
	s := &Server{p: p, o: o, log: o.Logger, reads: make(chan struct{}, o.MaxBodyReads),
		decodes: make(chan struct{}, runtime.GOMAXPROCS(0))}
	s.m = newMetrics(func() float64 { return float64(s.b.Waiting()) }, func() float64 { return float64(s.b.BusyRows()) })
	// The metrics observe every step and encode; observers the caller set
	// in o.Batch (a benchmark's) are called after them.
	bo := o.Batch
	onStep, onEncode := bo.OnStep, bo.OnEncode
	bo.OnStep = func(rows int, d time.Duration) {
		s.m.batchRows.Observe(float64(rows))
		s.m.stepTime.Observe(d.Seconds())
		if onStep != nil {
			onStep(rows, d)
		}
	}
	bo.OnEncode = func(n int, d time.Duration) {
		s.m.encode.Observe(float64(n))
		s.m.encTime.Observe(d.Seconds())
		if onEncode != nil {
			onEncode(n, d)
		}
	}
	b, err := p.Model.NewBatcher(bo)
	if err != nil {
		return nil, err
	}
	s.b = b
	s.lim = Limits{MaxBodyBytes: o.MaxBodyBytes, MaxPixels: o.MaxPixels, MaxImages: o.MaxImages,
		MaxLength: b.MaxText(), Frames: p.Model.Config.Frames()}
	return s, nil
}

// Close stops the batcher (after the calls in it finish).
func (s *Server) Close() { s.b.Close() }

// Handler routes the API, probes, metrics and the web page.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", s.page)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/readyz", s.ready)
	mux.Handle("/metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/v1/captions", s.captions)
	mux.HandleFunc("/v1/model", s.model)
	return mux
}

// Serve answers on ln until ctx ends, then drains: /readyz fails and new
// caption requests get 503 with Retry-After (connections are no longer
// kept alive); after DrainDelay, time for a load balancer to see the
// failing readiness and stop sending, the listener closes and in-flight
// requests get up to grace to finish. It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener, grace time.Duration) error {
	// Slow clients cannot hold a connection forever: the headers within
	// 10 s, a caption request's body within its request timeout (the
	// handler sets that deadline: a server-wide ReadTimeout would run from
	// the moment the connection is read, before the request arrives).
	hs := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.draining.Store(true)
	hs.SetKeepAlivesEnabled(false)
	s.log.Info("draining", "grace", grace.String(), "drain_delay", s.o.DrainDelay.String())
	if s.o.DrainDelay > 0 {
		select {
		case err := <-errc:
			return err
		case <-time.After(s.o.DrainDelay):
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := hs.Shutdown(sctx)
	<-errc
	if err != nil {
		hs.Close()
		return fmt.Errorf("in-flight requests did not finish within the %s grace period", grace)
	}
	s.log.Info("drained")
	return nil
}

// Drain marks the server as draining (readiness fails, captions get 503).
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) page(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "not found: "+r.URL.Path)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	b, _ := web.ReadFile("web/index.html")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src 'self' blob: data:")
	w.Write(b)
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "draining")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) model(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(w, r) {
		return
	}
	c := s.p.Model.Config
	writeJSON(w, http.StatusOK, map[string]any{"frames": c.Frames(), "max_length": s.b.MaxText(), "rows": s.b.Rows(),
		"max_images": s.lim.MaxImages, "max_pixels": s.lim.MaxPixels, "max_body_bytes": s.lim.MaxBodyBytes})
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	if s.o.APIKey == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if ok && subtle.ConstantTimeCompare([]byte(tok), []byte(s.o.APIKey)) == 1 {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="gitcap"`)
	writeError(w, http.StatusUnauthorized, "missing or wrong API key (send Authorization: Bearer KEY)")
	return false
}

// Result is one returned sequence.
type Result struct {
	Caption string   `json:"caption"`
	IDs     []int    `json:"ids"`
	Score   *float64 `json:"score,omitempty"` // beam search only; left out when not finite (JSON has no -Inf)
}

// statusWriter records the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (s *Server) captions(rw http.ResponseWriter, r *http.Request) {
	start := time.Now()
	id := s.ids.Add(1)
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	w.Header().Set("X-Request-Id", strconv.FormatUint(id, 10))
	images, tokens := 0, 0
	var failure string
	defer func() {
		status := w.status
		if r.Context().Err() != nil && status == http.StatusOK {
			status = 499 // the client went away; nothing was written
		}
		s.m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
		s.m.latency.Observe(time.Since(start).Seconds())
		attrs := []any{"id", id, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr,
			"status", status, "images", images, "tokens", tokens, "duration_ms", time.Since(start).Milliseconds()}
		if failure != "" {
			attrs = append(attrs, "error", failure)
		}
		s.log.Info("request", attrs...)
	}()
	fail := func(status int, msg string) {
		failure = msg
		writeError(w, status, msg)
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		fail(http.StatusMethodNotAllowed, "use POST")
		return
	}
	if !s.authorized(w, r) {
		failure = "unauthorized"
		return
	}
	if s.draining.Load() {
		w.Header().Set("Retry-After", "5")
		fail(http.StatusServiceUnavailable, "the server is shutting down")
		return
	}
	if r.ContentLength > s.lim.MaxBodyBytes {
		fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, s.lim.MaxBodyBytes))
		return
	}
	// The image count is in the body; a queue without room for one image,
	// or for a body of the announced length, refuses before paying for the
	// upload.
	if s.full(r.ContentLength) {
		w.Header().Set("Retry-After", "1")
		fail(http.StatusTooManyRequests, "the queue is full; retry later")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.o.RequestTimeout)
	defer cancel()
	// stopped answers a request whose context ended: nothing to a client
	// that went away, 504 past the timeout.
	stopped := func() bool {
		switch {
		case r.Context().Err() != nil:
			failure = "client disconnected"
		case ctx.Err() != nil:
			fail(http.StatusGatewayTimeout, fmt.Sprintf("the request took longer than %s", s.o.RequestTimeout))
		default:
			return false
		}
		return true
	}
	if stopped() { // a timeout shorter than getting here: 504, the body unread
		return
	}
	// At most MaxBodyReads bodies are read (and held) at once.
	select {
	case s.reads <- struct{}{}:
	case <-ctx.Done():
		stopped()
		return
	}
	// The body must arrive within the request's time, and, after the grace,
	// at the minimum rate (a read past either is a 408); once it is read, the
	// connection has no deadline again. A ResponseWriter without deadlines
	// (a test recorder) has none.
	rc := http.NewResponseController(rw)
	deadline, _ := ctx.Deadline()
	r.Body = &uploadReader{r: http.MaxBytesReader(w, r.Body, s.lim.MaxBodyBytes), rc: rc, hard: deadline,
		start: time.Now(), grace: s.o.UploadGrace, rate: s.o.MinUploadRate}
	req, err := ParseRequest(r, s.lim)
	<-s.reads
	if err == nil {
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			fail(ae.status, ae.msg)
		} else {
			fail(http.StatusBadRequest, err.Error())
		}
		return
	}
	prompt := []int{s.p.Tokenizer.CLS()}
	if req.Prompt != "" {
		prompt = s.p.Tokenizer.EncodePrompt(req.Prompt)
	}
	if err := s.b.Check(prompt, req.Options); err != nil {
		fail(http.StatusBadRequest, strings.TrimPrefix(err.Error(), "generate: "))
		return
	}
	n, size := len(req.Samples), req.bytes()
	if !s.admit(n, size) {
		w.Header().Set("Retry-After", "1")
		fail(http.StatusTooManyRequests, "the queue is full; retry later")
		return
	}
	defer s.release(n, 0)
	images = n
	pixels, err := s.preprocess(ctx, req)
	req.Samples = nil // the uploaded bytes are not held while the request generates
	s.release(0, size)
	if err != nil {
		if !stopped() {
			fail(http.StatusBadRequest, err.Error())
		}
		return
	}
	seqs := make([][]gitmodel.Sequence, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := req.Options
			o.SampleOffset = i // the image's sampling stream: as `gitcap caption` gives image i
			seqs[i], errs[i] = s.b.Generate(ctx, pixels[i], prompt, o)
			if errs[i] != nil {
				cancel() // one failure fails the request: free the others' rows
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err == nil {
			continue
		}
		switch {
		case r.Context().Err() != nil:
			failure = "client disconnected"
		case errors.Is(err, context.DeadlineExceeded):
			fail(http.StatusGatewayTimeout, fmt.Sprintf("the request took longer than %s", s.o.RequestTimeout))
		case errors.Is(err, gitmodel.ErrBatcherClosed):
			w.Header().Set("Retry-After", "5")
			fail(http.StatusServiceUnavailable, "the server is shutting down")
		case errors.Is(err, context.Canceled):
			continue // cancelled because another image failed: that one is reported
		default:
			fail(http.StatusInternalServerError, "generation failed: "+err.Error())
		}
		return
	}
	for _, err := range errs { // only cancellations, with nothing that caused them: never a 200
		if err != nil {
			fail(http.StatusInternalServerError, "generation was cancelled: "+err.Error())
			return
		}
	}
	out := struct {
		Results []Result `json:"results"`
	}{Results: []Result{}}
	beam := req.Options.NumBeams > 1
	for _, ss := range seqs {
		for _, q := range ss {
			res := Result{Caption: s.p.Tokenizer.Decode(q.IDs[len(prompt):], true), IDs: q.IDs}
			if beam && !math.IsInf(q.Score, 0) && !math.IsNaN(q.Score) {
				sc := q.Score // JSON has no -Inf: an extreme length_penalty's score is left out
				res.Score = &sc
			}
			tokens += generated(q.IDs[len(prompt):], s.p.Model.Config.EosTokenID)
			out.Results = append(out.Results, res)
		}
	}
	s.m.tokens.Add(float64(tokens))
	s.m.images.Add(float64(n))
	s.m.rate.add(time.Now(), float64(n))
	writeJSON(w, http.StatusOK, out)
}

// full reports whether the queue has no room for even one image, or for
// a body of contentLength bytes (-1: unknown, counted as 0).
func (s *Server) full(contentLength int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight >= s.o.QueueImages || s.held+max(contentLength, 0) > s.o.QueueBytes
}

// admit takes n image slots and size bytes of the bounded queue, or
// reports it is full: the images until the request ends, the bytes (its
// uploaded files) until its images are decoded, so that requests waiting
// for a decode slot hold at most QueueBytes of uploads between them.
func (s *Server) admit(n int, size int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight+n > s.o.QueueImages || s.held+size > s.o.QueueBytes {
		return false
	}
	s.inFlight += n
	s.held += size
	return true
}

// release gives back n image slots and size bytes.
func (s *Server) release(n int, size int64) {
	s.mu.Lock()
	s.inFlight -= n
	s.held -= size
	s.mu.Unlock()
}

// preprocess decodes each frame (already size-checked from its header)
// and runs the checkpoint's image processor. At most one image per core
// is decoded at full size at a time, whatever the number of requests: a
// decoded image can take hundreds of MB (40 Mpx of 16-bit RGBA is 320 MB)
// where its file took a few hundred KB.
func (s *Server) preprocess(ctx context.Context, req *Request) ([][]float32, error) {
	c := s.p.Model.Config
	per := c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	lim := imageproc.Limits{MaxPixels: int64(s.o.MaxPixels), MaxBytes: s.o.MaxBodyBytes}
	out := make([][]float32, len(req.Samples))
	for i, frames := range req.Samples {
		px := make([]float32, len(frames)*per)
		for j, data := range frames {
			select {
			case s.decodes <- struct{}{}:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			img, err := lim.Decode(data)
			var v []float32
			if err == nil {
				v, err = s.p.Processor.Preprocess(img)
			}
			<-s.decodes
			if err != nil {
				return nil, fmt.Errorf("images[%d]: %v", i, err)
			}
			if len(v) != per {
				return nil, fmt.Errorf("images[%d]: preprocessing gave %d values, the model takes %d", i, len(v), per)
			}
			copy(px[j*per:], v)
		}
		out[i] = px
	}
	return out, nil
}

// writeJSON answers v with the status. v is encoded before anything is
// written, so an answer that cannot be encoded is a 500 with a JSON error,
// never a 200 with an empty or cut-off body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(map[string]any{"error": map[string]any{"message": "encoding the answer: " + err.Error(), "status": status}})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// generated is the number of tokens a sequence generated: up to and with
// its first EOS (sampled sequences that end early are padded to the
// longest, as HF pads them).
func generated(ids []int, eos int) int {
	for i, id := range ids {
		if id == eos {
			return i + 1
		}
	}
	return len(ids)
}

// writeError answers {"error": {"message", "status"}}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"message": msg, "status": status}})
}

// uploadReader reads a request body under a read deadline that moves with
// the bytes received: the grace after the read started plus the time the
// bytes so far take at the minimum rate, and never past hard (the
// request's own deadline). A body that falls behind the rate fails with a
// 408 that says so, and frees its read slot instead of holding it to the
// request timeout (16 clients trickling a few bytes a second held every
// slot for a minute).
type uploadReader struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	hard  time.Time
	start time.Time
	grace time.Duration
	rate  int64 // bytes/s; ≤ 0: no minimum
	n     int64
}

func (u *uploadReader) Read(p []byte) (int, error) {
	d, slow := u.hard, false
	if u.rate > 0 {
		if r := u.start.Add(u.grace + time.Duration(float64(u.n)/float64(u.rate)*float64(time.Second))); r.Before(d) {
			d, slow = r, true
		}
	}
	if !d.IsZero() {
		_ = u.rc.SetReadDeadline(d)
	}
	n, err := u.r.Read(p)
	u.n += int64(n)
	if err != nil && slow && errors.Is(err, os.ErrDeadlineExceeded) { // the rate's deadline, not the request's
		return n, errorf(http.StatusRequestTimeout, "the request body arrived slower than %d bytes/s (after the first %s): %d bytes in %s", u.rate, u.grace, u.n, time.Since(u.start).Round(time.Millisecond))
	}
	return n, err
}

func (u *uploadReader) Close() error { return u.r.Close() }
