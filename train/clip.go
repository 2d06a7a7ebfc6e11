package train

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
)

// GradNorm is the global L2 norm of all gradients, sqrt(sum g^2), summed in
// float64.
func GradNorm(params []*Param) float64 {
	if !parallelGrads(params) { // without a closure or scratch: no allocation
		var s float64
		for _, p := range params {
			s += sumSquares(p.G)
		}
		return math.Sqrt(s)
	}
	return gradNorm(params, make([]float64, len(params)))
}

// gradNorm is GradNorm with one float64 of scratch per parameter. Each
// parameter's Σ g² is computed on its own (in parallel for large models,
// forEachParam) and the sums are added in parameter order, so the result
// has the same bits as the sequential s += sumSquares(p.G) over params.
func gradNorm(params []*Param, sums []float64) float64 {
	sums = sums[:len(params)]
	forEachParam(params, func(i int) { sums[i] = sumSquares(params[i].G) })
	var s float64
	for _, v := range sums {
		s += v
	}
	return math.Sqrt(s)
}

// parallelGradMin is the number of gradient values below which
// forEachParam stays on the calling goroutine (a hand-off costs a few
// microseconds).
const parallelGradMin = 1 << 16

// parallelGrads says whether forEachParam splits the work: more than one
// CPU and parameter, and at least parallelGradMin gradient values.
func parallelGrads(params []*Param) bool {
	if runtime.GOMAXPROCS(0) < 2 || len(params) < 2 {
		return false
	}
	total := 0
	for _, p := range params {
		total += len(p.G)
	}
	return total >= parallelGradMin
}

// forEachParam calls fn(i) once for every index of params: on the calling
// goroutine and, when the gradients are large and there is more than one
// CPU, GOMAXPROCS-1 helpers, each claiming the next unclaimed index. The
// norm and the scaling of a large model's gradients stream ~0.7 GB each, far
// more than one core's share of the memory bandwidth; fn must only touch
// parameter i.
func forEachParam(params []*Param, fn func(i int)) {
	if !parallelGrads(params) {
		for i := range params {
			fn(i)
		}
		return
	}
	workers := min(runtime.GOMAXPROCS(0), len(params))
	var next atomic.Int64
	work := func() {
		for i := int(next.Add(1) - 1); i < len(params); i = int(next.Add(1) - 1) {
			fn(i)
		}
	}
	var wg sync.WaitGroup
	for range workers - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// sumSquares is Σ g², in float64 with four accumulators (element i goes to
// accumulator i mod 4, the tail to the first): the AVX2 kernel holds the
// four in one register's lanes and gives the same bits as sumSquaresGo.
func sumSquares(g []float32) float64 {
	if b := len(g) &^ 3; hasAVX2 && b > 0 {
		s0, s1, s2, s3 := sumSquaresAVX2(&g[0], b)
		for _, x := range g[b:] {
			a := float64(x)
			s0 += a * a
		}
		return (s0 + s1) + (s2 + s3)
	}
	return sumSquaresGo(g)
}

func sumSquaresGo(g []float32) float64 {
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(g); i += 4 {
		a, b, c, d := float64(g[i]), float64(g[i+1]), float64(g[i+2]), float64(g[i+3])
		s0 += a * a
		s1 += b * b
		s2 += c * c
		s3 += d * d
	}
	for ; i < len(g); i++ {
		a := float64(g[i])
		s0 += a * a
	}
	return (s0 + s1) + (s2 + s3)
}

// ClipGradNorm scales all gradients so that their global L2 norm is at most
// maxNorm, like torch.nn.utils.clip_grad_norm_: with total the norm before
// clipping, the gradients are multiplied by maxNorm/(total+1e-6) when that
// is below 1. It returns total. maxNorm <= 0 disables clipping (the norm is
// still returned). When total is NaN or infinite the gradients are left
// untouched (torch would multiply them by NaN): check the returned norm with
// IsFinite and skip the step.
func ClipGradNorm(params []*Param, maxNorm float64) float64 {
	total := GradNorm(params)
	if c, ok := clipCoef(total, maxNorm); ok {
		ScaleGrads(params, c)
	}
	return total
}

// clipCoef is ClipGradNorm's factor for gradients of norm total: maxNorm /
// (total + 1e-6) in float32, and whether to scale by it at all (clipping
// on, total finite, factor below 1).
func clipCoef(total, maxNorm float64) (float32, bool) {
	if maxNorm <= 0 || !IsFinite(total) {
		return 1, false
	}
	coef := maxNorm / (total + 1e-6)
	return float32(coef), coef < 1
}

// ScaleGrads multiplies every gradient by s (parameters in parallel for a
// large model: element-wise, so the same bits either way).
func ScaleGrads(params []*Param, s float32) {
	if !parallelGrads(params) { // no closure: no allocation
		for _, p := range params {
			scale(p.G, s)
		}
		return
	}
	forEachParam(params, func(i int) { scale(params[i].G, s) })
}

// scale multiplies g by s in place (AVX-512 over whole 16-element blocks
// where the CPU has it: one rounded product per element either way).
func scale(g []float32, s float32) {
	if b := len(g) &^ 15; hasAVX512 && b > 0 {
		scaleAVX512(&g[0], b, s)
		g = g[b:]
	}
	for i := range g {
		g[i] *= s
	}
}

// ZeroGrads sets every gradient to 0.
func ZeroGrads(params []*Param) {
	for _, p := range params {
		clear(p.G)
	}
}

// IsFinite reports whether x is neither NaN nor infinite.
func IsFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// NonFiniteError says where the first NaN or infinity was found.
type NonFiniteError struct {
	Param string  // parameter name
	Index int     // element index within the parameter
	Value float32 // the value found
	Grad  bool    // true for a gradient, false for a weight
}

func (e *NonFiniteError) Error() string {
	what := "weight"
	if e.Grad {
		what = "gradient"
	}
	return fmt.Sprintf("non-finite %s %v in parameter %q at index %d", what, e.Value, e.Param, e.Index)
}

// CheckGrads returns a *NonFiniteError for the first NaN or infinite
// gradient, or nil when all are finite.
func CheckGrads(params []*Param) error { return checkFinite(params, true) }

// CheckWeights returns a *NonFiniteError for the first NaN or infinite
// weight, or nil when all are finite.
func CheckWeights(params []*Param) error { return checkFinite(params, false) }

func checkFinite(params []*Param, grad bool) error {
	for _, p := range params {
		x := p.W
		if grad {
			x = p.G
		}
		if i := firstNonFinite(x); i >= 0 {
			return &NonFiniteError{Param: p.Name, Index: i, Value: x[i], Grad: grad}
		}
	}
	return nil
}

// firstNonFinite returns the index of the first NaN or ±Inf in x, or -1.
func firstNonFinite(x []float32) int {
	// x - x is 0 for finite x and NaN for NaN and ±Inf; summing a block
	// first keeps the common all-finite case fast.
	const block = 256
	for lo := 0; lo < len(x); lo += block {
		hi := min(lo+block, len(x))
		var s float32
		for _, v := range x[lo:hi] {
			s += v - v
		}
		if s != 0 || s != s {
			for i := lo; i < hi; i++ {
				if v := x[i]; v-v != 0 || v != v {
					return i
				}
			}
		}
	}
	return -1
}

// Accumulator sums gradients over micro-batches: after each micro-batch's
// backward pass call Add (which reads every Param.G), and after the last one
// call Average, which writes sum/count back into Param.G ready for clipping
// and the optimiser step, and starts a new sum. It owns one float32 buffer
// per parameter, allocated once; Add and Average do not allocate.
type Accumulator struct {
	params []*Param
	sum    [][]float32
	count  int
}

// NewAccumulator makes an accumulator for params.
func NewAccumulator(params []*Param) *Accumulator {
	a := &Accumulator{params: append([]*Param(nil), params...), sum: make([][]float32, len(params))}
	for i, p := range params {
		a.sum[i] = make([]float32, len(p.W)) // G may not be bound yet
	}
	return a
}

// Count is the number of micro-batches added since the last Average or Reset.
func (a *Accumulator) Count() int { return a.count }

// Add adds the current gradients to the sum.
func (a *Accumulator) Add() error {
	for i, p := range a.params {
		s := a.sum[i]
		if len(p.G) != len(s) {
			return fmt.Errorf("accumulate: parameter %q has %d gradients, want %d", p.Name, len(p.G), len(s))
		}
		if a.count == 0 {
			copy(s, p.G)
			continue
		}
		g := p.G[:len(s)]
		for j := range s {
			s[j] += g[j]
		}
	}
	a.count++
	return nil
}

// Average writes the mean of the added gradients (sum / count, divided in
// float32) into every Param.G and resets the sum.
func (a *Accumulator) Average() error {
	if a.count == 0 {
		return errors.New("accumulate: Average with no gradients added")
	}
	n := float32(a.count)
	for i, p := range a.params {
		s := a.sum[i]
		if len(p.G) != len(s) {
			return fmt.Errorf("accumulate: parameter %q has %d gradients, want %d", p.Name, len(p.G), len(s))
		}
		g := p.G[:len(s)]
		if a.count == 1 {
			copy(g, s)
			continue
		}
		for j := range s {
			g[j] = s[j] / n
		}
	}
	a.count = 0
	return nil
}

// Reset drops the sum (for example after a micro-batch with non-finite
// gradients).
func (a *Accumulator) Reset() { a.count = 0 }
