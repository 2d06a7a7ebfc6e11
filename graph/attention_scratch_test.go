package graph

import (
	"runtime"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestAttentionReusesScratchBetweenRuns checks that the attention kernels'
// probability buffers (Tq·Tk per worker) are recycled from run to run
// instead of allocated by every run of a training step.
func TestAttentionReusesScratchBetweenRuns(t *testing.T) {
	s := AttentionShape{B: 2, Tq: 197, Tk: 197, Heads: 4, HeadDim: 8}
	c := s.Heads * s.HeadDim
	mk := func(rows int) G.Value {
		d := make([]float32, rows*c)
		for i := range d {
			d[i] = float32(i%13) * 0.01
		}
		return tensor.New(tensor.WithBacking(d), tensor.WithShape(rows, c))
	}
	q, k, v, dout := mk(s.B*s.Tq), mk(s.B*s.Tk), mk(s.B*s.Tk), mk(s.B*s.Tq)
	a := attnArgs{dt: tensor.Float32, s: s, scale: 0.35, scratch: new(attnScratch)}
	y := make([]float32, s.B*s.Tq*c)
	g := make([]float32, (s.B*s.Tq+2*s.B*s.Tk)*c)
	run := func() {
		attnForward(a, []G.Value{q, k, v}, y)
		attnBackward(a, []G.Value{q, k, v, dout}, g)
	}
	run()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	const runs = 10
	for i := 0; i < runs; i++ {
		run()
	}
	runtime.ReadMemStats(&m1)
	perRun := (m1.TotalAlloc - m0.TotalAlloc) / runs
	if buf := uint64(s.Tq * s.Tk * 4); perRun >= buf {
		t.Errorf("a forward+backward run allocates %d bytes, want less than one %d-byte probability buffer", perRun, buf)
	}
}
