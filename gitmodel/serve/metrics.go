package serve

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus collectors, on its own registry.
type metrics struct {
	reg       *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   prometheus.Histogram
	batchRows prometheus.Histogram
	encode    prometheus.Histogram
	stepTime  prometheus.Histogram
	encTime   prometheus.Histogram
	tokens    prometheus.Counter
	images    prometheus.Counter
	rate      *rateWindow
}

func newMetrics(queueDepth, busyRows func() float64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), rate: &rateWindow{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "gitcap_requests_total", Help: "Caption requests by HTTP status code.",
	}, []string{"code"})
	m.latency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gitcap_request_duration_seconds", Help: "Caption request latency, from arrival to answer.",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
	})
	m.batchRows = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gitcap_batch_rows", Help: "Rows (sequences) decoded together in each decode step.",
		Buckets: prometheus.LinearBuckets(1, 1, 32),
	})
	m.encode = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gitcap_encode_batch_images", Help: "Images encoded together in each prefix batch.",
		Buckets: []float64{1, 2, 4, 8, 16, 32},
	})
	m.stepTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gitcap_decode_step_seconds", Help: "Duration of each batched decode step.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 12),
	})
	m.encTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "gitcap_encode_seconds", Help: "Duration of each prefix batch (vision tower and image prefix), which runs while decoding goes on.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	})
	m.tokens = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitcap_generated_tokens_total", Help: "Tokens generated (all returned sequences, prompt excluded).",
	})
	m.images = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "gitcap_images_total", Help: "Images (samples) captioned.",
	})
	m.reg.MustRegister(m.requests, m.latency, m.batchRows, m.encode, m.stepTime, m.encTime, m.tokens, m.images,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitcap_queue_depth", Help: "Images waiting to join the decode batch.",
		}, queueDepth),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitcap_busy_rows", Help: "Decode rows in use.",
		}, busyRows),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitcap_images_per_second", Help: "Images captioned per second over the last minute.",
		}, func() float64 { return m.rate.perSecond(time.Now()) }),
	)
	return m
}

// rateWindow counts events in one-second buckets over the last minute.
type rateWindow struct {
	mu      sync.Mutex
	buckets [60]float64
	stamps  [60]int64
}

func (w *rateWindow) add(now time.Time, n float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := now.Unix()
	i := s % 60
	if w.stamps[i] != s {
		w.stamps[i], w.buckets[i] = s, 0
	}
	w.buckets[i] += n
}

func (w *rateWindow) perSecond(now time.Time) float64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := now.Unix()
	var sum float64
	for i := range w.buckets {
		if s-w.stamps[i] < 60 {
			sum += w.buckets[i]
		}
	}
	return sum / 60
}
