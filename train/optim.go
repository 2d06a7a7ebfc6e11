// Package train holds the model-independent parts of fine-tuning GIT: the
// AdamW optimiser, the learning-rate schedule, gradient clipping and
// accumulation, the run configuration, the metrics log and the training-curve
// plot.
//
// The model and its gradients are built elsewhere; this package sees the
// parameters as graph.Param: float32 values and gradients plus the metadata
// their layers set.
package train

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/gitcap/gitcap/data/tensorfile"
	"github.com/gitcap/gitcap/graph"
)

// Param is the project's one parameter type (graph.Param): values W,
// gradient G, and the metadata its layer set: Role (which decides weight
// decay and initialisation), Group (the learning-rate group) and Frozen.
type Param = graph.Param

// AdamWConfig holds AdamW's hyper-parameters except the learning rate, which
// is passed to every Step (it comes from the schedule).
type AdamWConfig struct {
	Beta1, Beta2 float64 // moment decay rates; torch's defaults are 0.9 and 0.999
	Eps          float64 // added to the denominator; torch's default is 1e-8
	WeightDecay  float64 // decoupled weight decay; applies to params whose Role is decayed
	// DecayAll decays every parameter (what plain torch.optim.AdamW over
	// model.parameters() does); otherwise only those whose Role.Decayed()
	// (weight matrices: not biases, LayerNorm parameters or embeddings).
	DecayAll bool

	// GroupLR maps a Param.Group to a multiplier of the learning rate given
	// to Step; groups not listed use 1. A key that names no parameter's
	// group is an error (it is almost certainly a typo).
	GroupLR map[string]float64
}

// DefaultAdamWConfig returns torch.optim.AdamW's defaults: betas (0.9,
// 0.999), eps 1e-8, weight_decay 0.01.
func DefaultAdamWConfig() AdamWConfig {
	return AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
}

// Validate checks the hyper-parameters.
func (c AdamWConfig) Validate() error {
	switch {
	case !(c.Beta1 >= 0 && c.Beta1 < 1):
		return fmt.Errorf("adamw: beta1 must be in [0, 1), got %v", c.Beta1)
	case !(c.Beta2 >= 0 && c.Beta2 < 1):
		return fmt.Errorf("adamw: beta2 must be in [0, 1), got %v", c.Beta2)
	case !(c.Eps > 0) || math.IsInf(c.Eps, 0):
		return fmt.Errorf("adamw: eps must be > 0, got %v", c.Eps)
	case !(c.WeightDecay >= 0) || math.IsInf(c.WeightDecay, 0):
		return fmt.Errorf("adamw: weight_decay must be >= 0, got %v", c.WeightDecay)
	}
	for g, m := range c.GroupLR {
		if !(m >= 0) || math.IsInf(m, 0) {
			return fmt.Errorf("adamw: learning-rate multiplier of group %q must be >= 0, got %v", g, m)
		}
	}
	return nil
}

// parallelMin is the number of elements below which a step runs on one
// goroutine: handing work to the helper costs a few microseconds.
const parallelMin = 1 << 16

// AdamW is torch.optim.AdamW (amsgrad=False, maximize=False) over a fixed
// list of parameters, with the element-wise arithmetic done in float32 in
// the same order as torch's CPU float32 kernels (torch 1.13 single-tensor
// path, the default):
//
//	p = p * float32(1 - lr*wd)                         (if decayed)
//	m = fma(g, float32(1-b1), m*float32(b1))           (mul_, then add_ with alpha: AVX2 fmadd)
//	v = v*float32(b2) + (float32(1-b2)*g)*g            (mul_, then addcmul_)
//	denom = sqrt(v)/float32(sqrt(1-b2^t)) + float32(eps)
//	p = p + (float32(-lr/(1-b1^t)) * m) / denom        (addcdiv_)
//
// where the scalars (lr, 1-b1^t, ...) are computed in float64 as Python does
// and rounded to float32 where torch casts them. The step count t is shared by
// all parameters (torch keeps one per parameter, but they advance together).
//
// Step is allocation-free after the first call, and splits the work of large
// models between the calling goroutine and one helper goroutine. Call Close
// when done to stop the helper.
type AdamW struct {
	cfg    AdamWConfig
	params []*Param
	mult   []float64 // per-param lr multiplier
	n      []int     // per-param length, fixed at construction
	step   int

	st      *stepState
	started bool
	closed  bool
	cleanup runtime.Cleanup
}

// stepState is everything the helper goroutine touches. It does not refer
// back to the AdamW, so a forgotten AdamW can still be collected (a cleanup
// then stops the helper).
type stepState struct {
	params []*Param
	m, v   [][]float32
	coef   []coef
	work   [2][]segment // work[0] for the caller, work[1] for the helper
	jobs   chan *stepState
	done   chan struct{}
}

// coef holds one parameter's scalars for the current step.
type coef struct {
	decay    bool
	decayMul float32 // 1 - lr*wd
	b1, omb1 float32 // beta1, 1 - beta1
	b2, omb2 float32 // beta2, 1 - beta2
	bc2sqrt  float32 // sqrt(1 - beta2^t)
	eps      float32
	stepSize float32 // -lr / (1 - beta1^t)
	// clipped says that the gradient is read multiplied by clip (one
	// rounded float32 product, as ScaleGrads would have left it in G).
	clipped bool
	clip    float32
}

// gradScale is the factor the kernels multiply each gradient by: clip, or
// exactly 1.
func (k *coef) gradScale() float32 {
	if k.clipped {
		return k.clip
	}
	return 1
}

// segment is a range of one parameter.
type segment struct{ p, lo, hi int }

// NewAdamW makes an optimiser for params, which must have distinct names and
// len(W) == len(G). The moment buffers are allocated on the first Step (or
// by LoadState).
func NewAdamW(params []*Param, cfg AdamWConfig) (*AdamW, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seen := make(map[string]bool, len(params))
	groups := make(map[string]bool)
	o := &AdamW{cfg: cfg, params: append([]*Param(nil), params...)}
	o.mult = make([]float64, len(params))
	o.n = make([]int, len(params))
	for i, p := range params {
		if p == nil {
			return nil, fmt.Errorf("adamw: parameter %d is nil", i)
		}
		if p.Name == "" {
			return nil, fmt.Errorf("adamw: parameter %d has no name", i)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("adamw: parameter %q listed twice", p.Name)
		}
		if strings.Contains(p.Name, "/") {
			// "/" separates the kind from the name in the state file.
			return nil, fmt.Errorf("adamw: parameter name %q contains '/'", p.Name)
		}
		seen[p.Name] = true
		// G may be nil here and bound before each Step (to a graph's
		// gradient buffer, with no copy).
		if p.G != nil && len(p.W) != len(p.G) {
			return nil, fmt.Errorf("adamw: parameter %q has %d values but %d gradients", p.Name, len(p.W), len(p.G))
		}
		groups[p.Group] = true
		o.mult[i] = 1
		if m, ok := cfg.GroupLR[p.Group]; ok {
			o.mult[i] = m
		}
		o.n[i] = len(p.W)
	}
	for g := range cfg.GroupLR {
		if !groups[g] {
			return nil, fmt.Errorf("adamw: learning-rate multiplier given for group %q, but no parameter is in that group", g)
		}
	}
	o.st = &stepState{params: o.params, coef: make([]coef, len(params))}
	return o, nil
}

// Params returns the parameters the optimiser updates.
func (o *AdamW) Params() []*Param { return o.params }

// Steps is the number of steps taken (torch's state["step"]).
func (o *AdamW) Steps() int { return o.step }

// Config returns the hyper-parameters.
func (o *AdamW) Config() AdamWConfig { return o.cfg }

// Moments returns the first and second moment buffers of the named
// parameter (nil before the first step), for inspection.
func (o *AdamW) Moments(name string) (m, v []float32, ok bool) {
	for i, p := range o.params {
		if p.Name == name {
			if o.st.m == nil {
				return nil, nil, true
			}
			return o.st.m[i], o.st.v[i], true
		}
	}
	return nil, nil, false
}

func (o *AdamW) allocState() {
	if o.st.m != nil {
		return
	}
	o.st.m = make([][]float32, len(o.params))
	o.st.v = make([][]float32, len(o.params))
	for i, n := range o.n {
		o.st.m[i] = make([]float32, n)
		o.st.v[i] = make([]float32, n)
	}
}

// plan splits the parameters into two contiguous halves of about equal
// element count (none for the helper when the model is small).
func (o *AdamW) plan() {
	total := 0
	for _, n := range o.n {
		total += n
	}
	var w [2][]segment
	if total < parallelMin {
		for i, n := range o.n {
			if n > 0 {
				w[0] = append(w[0], segment{i, 0, n})
			}
		}
		o.st.work = w
		return
	}
	half := total / 2
	acc := 0
	for i, n := range o.n {
		if n == 0 {
			continue
		}
		switch {
		case acc >= half:
			w[1] = append(w[1], segment{i, 0, n})
		case acc+n <= half:
			w[0] = append(w[0], segment{i, 0, n})
		default:
			cut := half - acc
			w[0] = append(w[0], segment{i, 0, cut})
			w[1] = append(w[1], segment{i, cut, n})
		}
		acc += n
	}
	o.st.work = w
	o.st.jobs = make(chan *stepState)
	o.st.done = make(chan struct{})
	go helper(o.st.jobs, o.st.done)
	o.cleanup = runtime.AddCleanup(o, func(jobs chan *stepState) { close(jobs) }, o.st.jobs)
}

func helper(jobs <-chan *stepState, done chan<- struct{}) {
	for st := range jobs {
		st.run(1)
		done <- struct{}{}
	}
}

func (st *stepState) run(w int) {
	for _, s := range st.work[w] {
		p := st.params[s.p]
		adamKernel(p.W[s.lo:s.hi], p.G[s.lo:s.hi], st.m[s.p][s.lo:s.hi], st.v[s.p][s.lo:s.hi], &st.coef[s.p])
	}
}

// Step applies one AdamW update with base learning rate lr (each
// parameter's group multiplier applies on top) using the gradients in G.
func (o *AdamW) Step(lr float64) error { return o.step1(lr, false, 1) }

// StepClipped is ScaleGrads(params, clip) followed by Step(lr), with the
// same bits, in one pass: each gradient is multiplied by clip as the
// update reads it, so the gradients are not streamed through memory once
// more; G itself is left unscaled.
func (o *AdamW) StepClipped(lr float64, clip float32) error { return o.step1(lr, true, clip) }

func (o *AdamW) step1(lr float64, clipped bool, clip float32) error {
	if o.closed {
		return errors.New("adamw: Step after Close")
	}
	if !(lr >= 0) || math.IsInf(lr, 0) {
		return fmt.Errorf("adamw: learning rate must be finite and >= 0, got %v", lr)
	}
	for i, p := range o.params {
		if len(p.W) != o.n[i] || len(p.G) != o.n[i] {
			return fmt.Errorf("adamw: parameter %q changed size: %d values, %d gradients, want %d", p.Name, len(p.W), len(p.G), o.n[i])
		}
	}
	o.allocState()
	if !o.started {
		o.plan()
		o.started = true
	}
	o.step++
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	bc1 := 1 - powInt(b1, o.step)
	bc2sqrt := math.Sqrt(1 - powInt(b2, o.step))
	for i, p := range o.params {
		glr := lr * o.mult[i]
		o.st.coef[i] = coef{
			decay:    (o.cfg.DecayAll || p.Role.Decayed()) && o.cfg.WeightDecay != 0,
			decayMul: float32(1 - float64(glr*o.cfg.WeightDecay)),
			b1:       float32(b1),
			omb1:     float32(1 - b1),
			b2:       float32(b2),
			omb2:     float32(1 - b2),
			bc2sqrt:  float32(bc2sqrt),
			eps:      float32(o.cfg.Eps),
			stepSize: float32(-(glr / bc1)),
			clipped:  clipped,
			clip:     clip,
		}
	}
	if len(o.st.work[1]) > 0 {
		o.st.jobs <- o.st
		o.st.run(0)
		<-o.st.done
	} else {
		o.st.run(0)
	}
	return nil
}

// powInt returns b^n for n >= 0, correctly rounded in all but vanishingly
// rare cases, like the C library's pow that Python's beta**step calls (Go's
// math.Pow is off by up to thousands of ulps for 0.999^t, which would change
// the float32 bias corrections now and then). It multiplies by squaring in
// double-double arithmetic.
func powInt(b float64, n int) float64 {
	rh, rl := 1.0, 0.0
	xh, xl := b, 0.0
	for ; n > 0; n >>= 1 {
		if n&1 == 1 {
			rh, rl = ddMul(rh, rl, xh, xl)
		}
		if n > 1 {
			xh, xl = ddMul(xh, xl, xh, xl)
		}
	}
	return rh + rl
}

// ddMul multiplies two double-double numbers.
func ddMul(ah, al, bh, bl float64) (float64, float64) {
	p := ah * bh
	e := math.FMA(ah, bh, -p) // the rounding error of p, exactly
	e += float64(ah*bl) + float64(al*bh)
	h := p + e
	return h, e - (h - p)
}

// adamKernel updates one range: the AVX-512 kernel (optim_amd64.s) over
// whole 16-element blocks where the CPU has it, adamKernelGo over the rest.
// Both give the same bits (TestAdamKernelAVX512MatchesGo): the AVX-512
// kernel is the same sequence of float32 operations, 16 lanes at a time,
// about 20x faster than the pure-Go loop, whose fused multiply-add is
// emulated in float64.
func adamKernel(w, g, m, v []float32, k *coef) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	if b := n &^ 15; hasAVX512 && b > 0 {
		ks := [9]float32{k.decayMul, k.b1, k.omb1, k.b2, k.omb2, k.bc2sqrt, k.eps, k.stepSize, k.gradScale()}
		adamAVX512(&w[0], &g[0], &m[0], &v[0], b, &ks, k.decay)
		w, g, m, v = w[b:], g[b:], m[b:], v[b:]
	}
	adamKernelGo(w, g, m, v, k)
}

// adamKernelGo updates one range. Every float32 operation is rounded on its
// own (explicit conversions stop the compiler from fusing), except the
// first-moment update, which torch's vectorised add_(alpha) does with a
// fused multiply-add.
func adamKernelGo(w, g, m, v []float32, k *coef) {
	n := len(w)
	g, m, v = g[:n], m[:n], v[:n]
	decay := k.decay
	dm, b1, omb1, b2, omb2 := k.decayMul, k.b1, k.omb1, k.b2, k.omb2
	bc2, eps, ss, gs := k.bc2sqrt, k.eps, k.stepSize, k.gradScale()
	for i := range w {
		p := w[i]
		if decay {
			p = float32(p * dm)
		}
		gi := float32(g[i] * gs) // exactly g[i] when gs is 1
		// mi := fma32(gi, omb1, m[i]*b1), with fma32's fast path inlined.
		mb := float32(m[i] * b1)
		fs := float64(gi)*float64(omb1) + float64(mb)
		mi := float32(fs)
		if bits := math.Float64bits(fs); bits&(1<<29-1) == 1<<28 || (bits&(0x7ff<<52) < (1023-126)<<52 && fs != 0) {
			mi = fma32Slow(gi, omb1, mb)
		}
		vi := float32(v[i]*b2) + float32(float32(omb2*gi)*gi)
		m[i] = mi
		v[i] = vi
		denom := float32(float32(math.Sqrt(float64(vi)))/bc2) + eps
		w[i] = p + float32(ss*mi)/denom
	}
}

// fma32 returns a*b+c rounded once to float32, like a hardware fused
// multiply-add. a*b is exact in float64; the sum is rounded to float64 and
// then to float32, which can only differ from a single rounding when the
// float64 sum lies exactly halfway between two float32 values (its 29 low
// mantissa bits are 1 followed by zeros) or below float32's normal range:
// those rare cases take the slow path.
func fma32(a, b, c float32) float32 {
	s := float64(a)*float64(b) + float64(c)
	if bits := math.Float64bits(s); bits&(1<<29-1) != 1<<28 && (bits&(0x7ff<<52) >= (1023-126)<<52 || s == 0) {
		return float32(s)
	}
	return fma32Slow(a, b, c)
}

func fma32Slow(a, b, c float32) float32 {
	p := float64(a) * float64(b)
	s := p + float64(c)
	r := float32(s)
	rs := float64(r)
	if rs == s || math.IsInf(rs, 0) || math.IsNaN(s) {
		return r
	}
	var o float32
	if rs < s {
		o = math.Nextafter32(r, float32(math.Inf(1)))
	} else {
		o = math.Nextafter32(r, float32(math.Inf(-1)))
	}
	if s != (rs+float64(o))/2 {
		return r
	}
	// s is a tie: the rounding error of s decides.
	bb := s - p
	e := (p - (s - bb)) + (float64(c) - bb)
	switch {
	case e > 0:
		return max(r, o)
	case e < 0:
		return min(r, o)
	}
	return r
}

// Close stops the helper goroutine. The optimiser cannot step afterwards,
// but its state can still be saved.
func (o *AdamW) Close() {
	if o.closed {
		return
	}
	o.closed = true
	if o.st.jobs != nil {
		o.cleanup.Stop()
		close(o.st.jobs)
		o.st.jobs = nil
	}
}

// State file layout.
const (
	stateFormat   = "gitcap-adamw-v1"
	expAvgPrefix  = "exp_avg/"
	expAvgSqPrefx = "exp_avg_sq/"
)

// SaveState writes the step count and both moment buffers of every
// parameter to a safetensors file (atomically): tensors "exp_avg/<name>" and
// "exp_avg_sq/<name>" (1-D float32), metadata "step", "format" and the
// hyper-parameters for reference.
func (o *AdamW) SaveState(path string) error {
	o.allocState()
	ts := make(map[string]tensorfile.Tensor, 2*len(o.params))
	for i, p := range o.params {
		shape := []int{o.n[i]}
		ts[expAvgPrefix+p.Name] = tensorfile.Tensor{Shape: shape, F32: o.st.m[i]}
		ts[expAvgSqPrefx+p.Name] = tensorfile.Tensor{Shape: shape, F32: o.st.v[i]}
	}
	md := map[string]string{
		"format":       stateFormat,
		"step":         strconv.Itoa(o.step),
		"beta1":        strconv.FormatFloat(o.cfg.Beta1, 'g', -1, 64),
		"beta2":        strconv.FormatFloat(o.cfg.Beta2, 'g', -1, 64),
		"eps":          strconv.FormatFloat(o.cfg.Eps, 'g', -1, 64),
		"weight_decay": strconv.FormatFloat(o.cfg.WeightDecay, 'g', -1, 64),
	}
	if err := tensorfile.Write(path, ts, md); err != nil {
		return fmt.Errorf("saving optimizer state: %w", err)
	}
	return nil
}

// LoadState restores what SaveState wrote. Every parameter must have both
// moment tensors, of its length, and the file must hold no tensors for
// parameters the optimiser does not have; otherwise the error names the
// parameter and nothing is changed.
func (o *AdamW) LoadState(path string) error {
	f, err := tensorfile.Open(path)
	if err != nil {
		return fmt.Errorf("loading optimizer state: %w", err)
	}
	if fm := f.Metadata["format"]; fm != stateFormat {
		return fmt.Errorf("%s: not an AdamW state file (format %q, want %q)", path, fm, stateFormat)
	}
	step, err := strconv.Atoi(f.Metadata["step"])
	if err != nil || step < 0 {
		return fmt.Errorf("%s: bad step count %q in metadata", path, f.Metadata["step"])
	}
	known := make(map[string]bool, len(o.params))
	for _, p := range o.params {
		known[p.Name] = true
	}
	var extra []string
	for _, name := range f.Names() {
		var pn string
		switch {
		case strings.HasPrefix(name, expAvgSqPrefx):
			pn = strings.TrimPrefix(name, expAvgSqPrefx)
		case strings.HasPrefix(name, expAvgPrefix):
			pn = strings.TrimPrefix(name, expAvgPrefix)
		default:
			return fmt.Errorf("%s: unexpected tensor %q in optimizer state", path, name)
		}
		if !known[pn] {
			extra = append(extra, pn)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		extra = dedupe(extra)
		return fmt.Errorf("%s: optimizer state has parameter %q, which the model does not have (%d such)", path, extra[0], len(extra))
	}
	m := make([][]float32, len(o.params))
	v := make([][]float32, len(o.params))
	for i, p := range o.params {
		for k, dst := range []*[]float32{&m[i], &v[i]} {
			name := expAvgPrefix + p.Name
			if k == 1 {
				name = expAvgSqPrefx + p.Name
			}
			if !f.Has(name) {
				return fmt.Errorf("%s: optimizer state has no %q for parameter %q", path, name, p.Name)
			}
			vals, _, err := f.F32(name)
			if err != nil {
				return err
			}
			if len(vals) != o.n[i] {
				return fmt.Errorf("%s: parameter %q has %d values but its optimizer state %q has %d", path, p.Name, o.n[i], name, len(vals))
			}
			*dst = vals
		}
	}
	if o.st.m == nil {
		o.st.m, o.st.v = m, v
	} else {
		for i := range m {
			copy(o.st.m[i], m[i])
			copy(o.st.v[i], v[i])
		}
	}
	o.step = step
	return nil
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}
