package gitmodel

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// demoModel is the configs/demo.json shape (the demo's model) with the
// BERT vocabulary and small random weights.
func demoModel(tb testing.TB) *Model {
	tb.Helper()
	path := filepath.Join("..", "configs", "demo.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	var preset map[string]any
	if err := json.Unmarshal(raw, &preset); err != nil {
		tb.Fatal(err)
	}
	preset["vocab_size"] = 30522 // the demo sets it from its captions
	raw, _ = json.Marshal(preset)
	c, err := ParseConfig(path, raw)
	if err != nil {
		tb.Fatal(err)
	}
	return randomModelOf(tb, c)
}

// cpuTime is the process's user+system CPU time so far. A benchmark
// reports it per op as cpu-ns/op next to ns/op: on a machine shared with
// other work it moves much less than the wall time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timed runs the benchmark loop body b.N times, reporting CPU time per op.
func timed(b *testing.B, body func(i int)) {
	b.ReportAllocs()
	b.ResetTimer()
	t0 := cpuTime()
	for i := 0; i < b.N; i++ {
		body(i)
	}
	b.ReportMetric(float64(cpuTime()-t0)/float64(b.N), "cpu-ns/op")
}

// benchDecodeStep times one KV-cache decode step over rows generations of
// one image (the per-token cost of generation, without the search).
func benchDecodeStep(b *testing.B, m *Model, rows int) {
	g := m.NewGenerator()
	defer g.Close()
	g.maxText = 40
	s := &cachedStepper{m: m, g: g}
	c := m.Config
	img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	if _, err := s.start(randomPixels(img, rand.New(rand.NewSource(1))), 1, []int{c.BosTokenID}, rows); err != nil {
		b.Fatal(err)
	}
	n := s.length[0]
	tokens := make([]int, rows)
	for i := range tokens {
		tokens[i] = 100 + i
	}
	timed(b, func(i int) {
		if i%30 == 0 { // start over before the cache fills
			for r := range s.length {
				s.length[r] = n
			}
		}
		if _, err := s.step(tokens); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkDecodeStepFixture(b *testing.B)  { benchDecodeStep(b, loadTiny(b, "git-tiny"), 1) }
func BenchmarkDecodeStepFixture4(b *testing.B) { benchDecodeStep(b, loadTiny(b, "git-tiny"), 4) }
func BenchmarkDecodeStepDemo(b *testing.B)     { benchDecodeStep(b, demoModel(b), 1) }
func BenchmarkDecodeStepDemo8(b *testing.B)    { benchDecodeStep(b, demoModel(b), 8) }

// benchForward times a full-sequence inference pass (last-position
// logits) of 8 examples of 20 text tokens, the prefix of generation and of
// evaluation.
func benchForward(b *testing.B, m *Model, opts ForwardOptions) {
	const batch, textLen = 8, 20
	f, err := m.NewForward(batch, textLen, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	c := m.Config
	img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	in := Batch{Pixels: randomPixels(batch*img, rand.New(rand.NewSource(1))), IDs: make([]int, batch*textLen),
		AttentionMask: make([]int, batch*textLen), Labels: make([]int, batch*textLen)}
	for i := range in.IDs {
		in.IDs[i], in.Labels[i] = 100+i%500, 100+i%500
		if i%textLen < textLen-2 || i/textLen%2 == 0 { // odd examples end in two pads
			in.AttentionMask[i] = 1
		}
	}
	timed(b, func(int) {
		if err := f.Run(in); err != nil {
			b.Fatal(err)
		}
	})
}

func BenchmarkForwardFixture8(b *testing.B) {
	benchForward(b, loadTiny(b, "git-tiny"), ForwardOptions{Last: true})
}
func BenchmarkForwardDemo8(b *testing.B) { benchForward(b, demoModel(b), ForwardOptions{Last: true}) }
func BenchmarkTrainForwardBackwardDemo8(b *testing.B) {
	benchForward(b, demoModel(b), ForwardOptions{Train: true, Loss: true, Dropout: true})
}

// BenchmarkGitBaseBF16DecodeStep times a git-base decode step of 1 and 16
// rows (serving batches 16) with bf16 weights in one process: "gemv" is
// --dtype bf16 (float32 activations, the AVX-512 GEMV kernel over the
// checkpoint layout), "full" is --dtype bf16-full (on AMX: every product on
// the tiles over the packed-only weights). Compare cpu-ns/op.
func BenchmarkGitBaseBF16DecodeStep(b *testing.B) {
	fp := randomModel(b, "git-base.json")
	models := map[string]*Model{}
	for _, name := range []string{"gemv", "full"} {
		m, err := fp.CloneBF16()
		if err != nil {
			b.Fatal(err)
		}
		m.SetBF16Activations(name == "full")
		models[name] = m
	}
	for _, rows := range []int{1, 16, 36} {
		for _, name := range []string{"gemv", "full"} {
			b.Run(fmt.Sprintf("%s/rows%d", name, rows), func(b *testing.B) { benchDecodeStep(b, models[name], rows) })
		}
	}
}

// BenchmarkGitBaseDecodeStep times a float32 git-base decode step of 1 and
// 16 rows (serving batches 16), whose attention reads each row's KV cache
// (197 image slots and up to 40 text slots) in each of the 6 decoder
// layers. Compare cpu-ns/op.
func BenchmarkGitBaseDecodeStep(b *testing.B) {
	m := randomModel(b, "git-base.json")
	for _, rows := range []int{1, 16, 36} {
		b.Run(fmt.Sprintf("rows%d", rows), func(b *testing.B) { benchDecodeStep(b, m, rows) })
	}
}
