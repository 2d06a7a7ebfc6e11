package graph

import (
	"runtime"
	"sync"
	"time"
)

// ReadBandwidthGBs measures the machine's memory read bandwidth in GB/s
// (10⁹ bytes per second), the limit of a memory-bound decode step: like
// STREAM's read/sum kernel, GOMAXPROCS goroutines each sum their share of a
// float32 buffer of the given size (choose it far larger than the caches),
// pass after pass for at least minSeconds; the fastest pass is reported.
// The sum uses AVX-512 where the CPU has it (a scalar Go loop cannot keep
// up with memory).
func ReadBandwidthGBs(bytes int, minSeconds float64) float64 {
	w := runtime.GOMAXPROCS(0)
	chunk := max(bytes/4/w/64*64, 64)
	buf := make([]float32, chunk*w)
	for i := range buf { // touch every page, so the passes read memory, not the zero page
		buf[i] = 1
	}
	sums := make([]float32, w)
	pass := func() float64 {
		var wg sync.WaitGroup
		start := time.Now()
		for t := 0; t < w; t++ {
			wg.Add(1)
			go func(t int) {
				defer wg.Done()
				sums[t] = sumF32(buf[t*chunk : (t+1)*chunk])
			}(t)
		}
		wg.Wait()
		return time.Since(start).Seconds()
	}
	pass() // warm-up
	best := 0.0
	for start := time.Now(); best == 0 || time.Since(start).Seconds() < minSeconds; {
		if s := pass(); s > 0 {
			best = max(best, float64(4*len(buf))/s/1e9)
		}
	}
	return best
}

// sumF32 returns the sum of x (the bandwidth probe's read kernel).
func sumF32(x []float32) float32 {
	n := 0
	var s float32
	if hasAVX512 && len(x) >= 64 {
		n = len(x) &^ 63
		s = sumF32AVX512(&x[0], n)
	}
	var a [8]float32
	i := n
	for ; i+8 <= len(x); i += 8 {
		for j := range a {
			a[j] += x[i+j]
		}
	}
	for ; i < len(x); i++ {
		a[0] += x[i]
	}
	for _, v := range a {
		s += v
	}
	return s
}
