package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/gitmodel/caption"
	"github.com/gitcap/gitcap/gitmodel/serve"
)

// serveFlags are `gitcap serve`'s options (bench --only serve reuses them).
type serveFlags struct {
	rows, maxEncode, maxGraphs, maxLength, maxImages, maxPixels, queue, reads int
	wait, timeout, uploadGrace                                                time.Duration
	maxBody, minUploadRate, queueBytes                                        int64
	overlap                                                                   bool
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.rows, "batch-size", 16, "sequences decoded together (continuous batching rows; a beam search takes num_beams rows)")
	fs.DurationVar(&f.wait, "batch-wait", 2*time.Millisecond, "how long an idle server waits after a request for others to encode with it")
	fs.IntVar(&f.maxEncode, "max-encode-batch", 8, "most images encoded together in one prefix graph")
	fs.IntVar(&f.maxGraphs, "prefix-graphs", 4, "compiled prefix graphs kept (one per encode batch size and prompt length; the least recently used is dropped)")
	fs.IntVar(&f.maxLength, "max-length-cap", 64, "largest max_length a request may ask for (sets the KV cache size; at most the model's max_position_embeddings)")
	fs.IntVar(&f.maxImages, "max-images", 16, "most images (video frames included) per request")
	fs.IntVar(&f.maxPixels, "max-pixels", 40_000_000, "largest image (width x height), checked from its header before decoding")
	fs.Int64Var(&f.maxBody, "max-body-bytes", 32<<20, "largest request body")
	fs.IntVar(&f.queue, "queue", 0, "images admitted at once (waiting or decoding); more get 429 (default 8 x batch-size, at least --max-images)")
	fs.Int64Var(&f.queueBytes, "queue-bytes", 0, "uploaded bytes admitted requests may hold until their images are decoded; more get 429 (default 8 x --max-body-bytes, at least --max-body-bytes)")
	fs.IntVar(&f.reads, "max-body-reads", 16, "request bodies read at once; more wait for a slot")
	fs.DurationVar(&f.timeout, "timeout", 60*time.Second, "per-request time limit (504 after it)")
	fs.Int64Var(&f.minUploadRate, "min-upload-rate", 4096, "bytes/s a request body must keep arriving at after --upload-grace; slower gets 408 and frees its read slot (0: no minimum)")
	fs.DurationVar(&f.uploadGrace, "upload-grace", 5*time.Second, "how long a request body may arrive at any rate")
	fs.BoolVar(&f.overlap, "encode-overlap", false, "encode new images while the running sequences keep decoding (default false: decoding waits at the token boundary until they are encoded, which measured faster on 2 cores)")
}

func (f *serveFlags) options(p *caption.Pipeline) serve.Options {
	ml := f.maxLength
	if m := p.Model.Config.MaxPositionEmbeddings; ml > m {
		ml = m
	}
	window := f.wait
	if window == 0 {
		window = -1 // --batch-wait 0: no wait (the batcher's 0 means its default)
	}
	minRate := f.minUploadRate
	if minRate == 0 {
		minRate = -1 // --min-upload-rate 0: no minimum (the server's 0 means its default)
	}
	return serve.Options{
		Batch:        gitmodel.BatcherOptions{Rows: f.rows, MaxText: ml, Window: window, MaxEncode: f.maxEncode, MaxGraphs: f.maxGraphs, SerialEncode: !f.overlap},
		MaxBodyBytes: f.maxBody, MaxPixels: f.maxPixels, MaxImages: f.maxImages, QueueImages: f.queue, QueueBytes: f.queueBytes,
		MaxBodyReads: f.reads, RequestTimeout: f.timeout, MinUploadRate: minRate, UploadGrace: f.uploadGrace,
	}
}

func (f *serveFlags) check() error {
	switch {
	case f.rows < 1:
		return usageError{errors.New("--batch-size must be at least 1")}
	case f.maxEncode < 1 || f.maxGraphs < 1 || f.reads < 1:
		return usageError{errors.New("--max-encode-batch, --prefix-graphs and --max-body-reads must be at least 1")}
	case f.maxLength < 2:
		return usageError{errors.New("--max-length-cap must be at least 2")}
	case f.maxImages < 1 || f.maxPixels < 1 || f.maxBody < 1 || f.queue < 0:
		return usageError{errors.New("--max-images, --max-pixels and --max-body-bytes must be positive, --queue not negative")}
	case f.queueBytes < 0:
		return usageError{errors.New("--queue-bytes must not be negative (0: 8 x --max-body-bytes)")}
	case f.queueBytes > 0 && f.queueBytes < f.maxBody:
		return usageError{fmt.Errorf("--queue-bytes (%d) must hold a request body of --max-body-bytes (%d): such a request would get 429 on every retry", f.queueBytes, f.maxBody)}
	case f.queue > 0 && f.queue < f.maxImages:
		return usageError{fmt.Errorf("--queue (%d images) must hold a request of --max-images (%d): such a request would get 429 on every retry", f.queue, f.maxImages)}
	case f.timeout <= 0 || f.wait < 0:
		return usageError{errors.New("--timeout must be positive and --batch-wait not negative")}
	case f.minUploadRate < 0 || f.uploadGrace <= 0:
		return usageError{errors.New("--min-upload-rate must not be negative (0: no minimum) and --upload-grace must be positive")}
	}
	return nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	model := fs.String("model", "", "checkpoint directory or HuggingFace model id (required)")
	dtype := fs.dtypeFlag()
	addr := fs.String("addr", "127.0.0.1:8080", "listen address (0.0.0.0:8080 in a container)")
	keyFile := fs.String("api-key-file", "", "file holding a bearer token that /v1/ requests must send (Authorization: Bearer TOKEN)")
	grace := fs.Duration("grace", 30*time.Second, "on SIGTERM/Ctrl-C, how long in-flight requests get to finish")
	drainDelay := fs.Duration("drain-delay", 0, "on SIGTERM/Ctrl-C, how long to keep the port open answering 503 (and /readyz failing) before closing it, so a load balancer stops sending first (0: close at once)")
	logFormat := fs.String("log-format", "text", "request log format on stderr: text or json")
	var sf serveFlags
	sf.register(fs.FlagSet)
	fs.Usage = func() { fs.header("gitcap serve --model DIR [--addr HOST:PORT] [flags]", "") }
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	if *model == "" {
		return usageError{errors.New("--model is required")}
	}
	if err := sf.check(); err != nil {
		return err
	}
	if *drainDelay < 0 || *grace < 0 {
		return usageError{errors.New("--drain-delay and --grace must not be negative")}
	}
	var handler slog.Handler
	switch *logFormat {
	case "text":
		handler = slog.NewTextHandler(stderr, nil)
	case "json":
		handler = slog.NewJSONHandler(stderr, nil)
	default:
		return usageError{fmt.Errorf("--log-format must be text or json, got %q", *logFormat)}
	}
	log := slog.New(handler)
	var key string
	if *keyFile != "" {
		b, err := os.ReadFile(*keyFile)
		if err != nil {
			return fmt.Errorf("--api-key-file: %w", err)
		}
		if key = strings.TrimSpace(string(b)); key == "" {
			return fmt.Errorf("--api-key-file %s is empty", *keyFile)
		}
	}
	p, err := loadPipelineDtype(ctx, *model, *dtype, stderr)
	if err != nil {
		return err
	}
	o := sf.options(p)
	o.APIKey, o.Logger, o.DrainDelay = key, log, *drainDelay
	s, err := serve.New(p, o)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	log.Info("listening", "addr", ln.Addr().String(), "model", *model, "batch_size", o.Batch.Rows, "max_length_cap", o.Batch.MaxText, "auth", key != "")
	return s.Serve(ctx, ln, *grace)
}
