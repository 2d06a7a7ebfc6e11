package train

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/gitmodel"
	"github.com/gitcap/gitcap/graph"
)

// refAdamW64 is an independent float64 AdamW written from the textbook
// formulas (Loshchilov & Hutter, torch docs): decoupled decay, then Adam with
// bias-corrected moments.
type refAdamW64 struct {
	b1, b2, eps, wd float64
	w, m, v         []float64
	decay           bool
	mult            float64
	t               int
}

func (r *refAdamW64) step(g []float64, lr float64) {
	r.t++
	lr *= r.mult
	for i := range r.w {
		if r.decay {
			r.w[i] -= lr * r.wd * r.w[i]
		}
		r.m[i] = r.b1*r.m[i] + (1-r.b1)*g[i]
		r.v[i] = r.b2*r.v[i] + (1-r.b2)*g[i]*g[i]
		mhat := r.m[i] / (1 - math.Pow(r.b1, float64(r.t)))
		vhat := r.v[i] / (1 - math.Pow(r.b2, float64(r.t)))
		r.w[i] -= lr * mhat / (math.Sqrt(vhat) + r.eps)
	}
}

// testGrad is a deterministic gradient for element i of parameter k at step t.
func testGrad(k, i, t int, scale float64) float64 {
	return scale * math.Sin(0.37*float64(i)+1.3*float64(t)+0.7*float64(k)) * (1 + 0.5*math.Cos(0.11*float64(i*t)))
}

func TestAdamWMatchesFloat64HandComputation(t *testing.T) {
	type pspec struct {
		name  string
		n     int
		decay bool
		group string
		scale float64 // gradient magnitude
	}
	cases := []struct {
		name   string
		cfg    AdamWConfig
		params []pspec
		lrs    []float64 // learning rate of each step
	}{
		{
			name:   "no weight decay",
			cfg:    AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
			params: []pspec{{"a.weight", 64, true, "", 1}},
			lrs:    []float64{1e-3, 1e-3, 1e-3, 1e-3, 1e-3, 1e-3},
		},
		{
			name:   "weight decay on every parameter",
			cfg:    AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1},
			params: []pspec{{"a.weight", 50, true, "", 1}, {"a.bias", 7, true, "", 0.01}},
			lrs:    []float64{1e-2, 1e-2, 1e-2, 1e-2, 1e-2},
		},
		{
			name:   "weight decay skipped where the role is not decayed",
			cfg:    AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.5},
			params: []pspec{{"a.weight", 33, true, "", 1}, {"a.bias", 33, false, "", 1}},
			lrs:    []float64{1e-2, 1e-2, 1e-2, 1e-2},
		},
		{
			name:   "bias correction with uncommon betas and scheduled lr",
			cfg:    AdamWConfig{Beta1: 0.5, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.01},
			params: []pspec{{"w", 40, true, "", 3}},
			lrs:    []float64{0, 2e-3, 4e-3, 6e-3, 5e-3, 2.5e-3, 1e-3},
		},
		{
			name: "per-group learning rate",
			cfg:  AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05, GroupLR: map[string]float64{"vision": 0.1, "text": 2}},
			params: []pspec{
				{"vision.w", 20, true, "vision", 1},
				{"text.w", 20, true, "text", 1},
				{"proj.w", 20, true, "", 1},
			},
			lrs: []float64{1e-3, 1e-3, 1e-3, 1e-3, 1e-3},
		},
		{
			name:   "tiny gradients near eps",
			cfg:    AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01},
			params: []pspec{{"w", 30, true, "", 1e-8}},
			lrs:    []float64{1e-3, 1e-3, 1e-3, 1e-3},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var params []*Param
			var refs []*refAdamW64
			for k, ps := range tc.params {
				p := &Param{Name: ps.name, W: make([]float32, ps.n), G: make([]float32, ps.n), Role: decayRole(ps.decay), Group: ps.group}
				r := &refAdamW64{b1: tc.cfg.Beta1, b2: tc.cfg.Beta2, eps: tc.cfg.Eps, wd: tc.cfg.WeightDecay,
					w: make([]float64, ps.n), m: make([]float64, ps.n), v: make([]float64, ps.n), decay: ps.decay, mult: 1}
				if m, ok := tc.cfg.GroupLR[ps.group]; ok {
					r.mult = m
				}
				for i := range p.W {
					p.W[i] = float32(math.Cos(float64(i+k)) * 0.5)
					r.w[i] = float64(p.W[i])
				}
				params = append(params, p)
				refs = append(refs, r)
			}
			opt, err := NewAdamW(params, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer opt.Close()
			for step, lr := range tc.lrs {
				for k, p := range params {
					g := make([]float64, len(p.G))
					for i := range g {
						p.G[i] = float32(testGrad(k, i, step, tc.params[k].scale))
						g[i] = float64(p.G[i])
					}
					refs[k].step(g, lr)
				}
				if err := opt.Step(lr); err != nil {
					t.Fatal(err)
				}
				for k, p := range params {
					m, v, _ := opt.Moments(p.Name)
					r := refs[k]
					for i := range p.W {
						// float32 rounding: a few ulps of the weight, and of
						// the largest step size (lr) in the update.
						tol := 4e-7*math.Abs(r.w[i]) + 1e-4*lr*refs[k].mult + 1e-9
						if d := math.Abs(float64(p.W[i]) - r.w[i]); d > tol {
							t.Fatalf("step %d %s[%d]: w = %.9g, float64 reference %.9g (diff %.3g > %.3g)", step+1, p.Name, i, p.W[i], r.w[i], d, tol)
						}
						if d := math.Abs(float64(m[i]) - r.m[i]); d > 1e-6*math.Abs(r.m[i])+3e-7*tc.params[k].scale {
							t.Fatalf("step %d %s[%d]: m = %.9g, reference %.9g", step+1, p.Name, i, m[i], r.m[i])
						}
						if d := math.Abs(float64(v[i]) - r.v[i]); d > 1e-6*math.Abs(r.v[i])+3e-7*tc.params[k].scale*tc.params[k].scale {
							t.Fatalf("step %d %s[%d]: v = %.9g, reference %.9g", step+1, p.Name, i, v[i], r.v[i])
						}
					}
				}
			}
			if opt.Steps() != len(tc.lrs) {
				t.Errorf("Steps() = %d, want %d", opt.Steps(), len(tc.lrs))
			}
		})
	}
}

func TestAdamWFirstStepMovesEachWeightByLR(t *testing.T) {
	// With bias correction, m̂ = g and v̂ = g² after one step, so every
	// element with |g| >> eps moves by lr against the sign of its gradient.
	p := &Param{Name: "w", W: []float32{1, 1, 1, 1}, G: []float32{3, -0.5, 1e-3, -200}}
	opt, err := NewAdamW([]*Param{p}, AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	const lr = 0.01
	if err := opt.Step(lr); err != nil {
		t.Fatal(err)
	}
	for i, g := range []float64{3, -0.5, 1e-3, -200} {
		want := 1 - lr*math.Copysign(1, g)
		if d := math.Abs(float64(p.W[i]) - want); d > 1e-6 {
			t.Errorf("w[%d] = %v after one step with g=%v, want %v", i, p.W[i], g, want)
		}
	}
}

func TestAdamWParallelStepIsBitIdenticalToSerial(t *testing.T) {
	// A model above the parallel threshold is split across two goroutines;
	// stepping each tensor on its own (below the threshold) must give the
	// very same bits.
	sizes := []int{parallelMin/2 + 17, 3, parallelMin + 5, 1000, parallelMin / 3}
	mk := func() []*Param {
		var ps []*Param
		for k, n := range sizes {
			p := &Param{Name: fmt.Sprintf("p%d", k), W: make([]float32, n), G: make([]float32, n), Role: decayRole(k%2 == 0), Group: []string{"vision", "text"}[k%2]}
			for i := range p.W {
				p.W[i] = float32(math.Sin(float64(i*(k+1)) * 0.01))
			}
			ps = append(ps, p)
		}
		return ps
	}
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, GroupLR: map[string]float64{"vision": 0.5}}
	big := mk()
	whole, err := NewAdamW(big, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer whole.Close()
	if len(whole.st.work[1]) != 0 {
		t.Fatal("plan made before the first step")
	}
	small := mk()
	var singles []*AdamW
	for _, p := range small {
		c := cfg
		c.GroupLR = nil
		if p.Group == "vision" {
			c.GroupLR = map[string]float64{"vision": 0.5}
		}
		o, err := NewAdamW([]*Param{p}, c)
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		singles = append(singles, o)
	}
	for step := 0; step < 3; step++ {
		for _, ps := range [][]*Param{big, small} {
			for k, p := range ps {
				for i := range p.G {
					p.G[i] = float32(testGrad(k, i, step, 1))
				}
			}
		}
		if err := whole.Step(1e-3); err != nil {
			t.Fatal(err)
		}
		for _, o := range singles {
			if err := o.Step(1e-3); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(whole.st.work[1]) == 0 {
		t.Fatal("large model was not split across two goroutines")
	}
	for k := range big {
		for i := range big[k].W {
			if math.Float32bits(big[k].W[i]) != math.Float32bits(small[k].W[i]) {
				t.Fatalf("%s[%d]: parallel %v, serial %v", big[k].Name, i, big[k].W[i], small[k].W[i])
			}
		}
	}
}

func TestAdamWStepDoesNotAllocate(t *testing.T) {
	ps := []*Param{
		{Name: "a", W: make([]float32, parallelMin), G: make([]float32, parallelMin), Role: graph.RoleBias},
		{Name: "b", W: make([]float32, parallelMin), G: make([]float32, parallelMin), Role: graph.RoleBias},
	}
	for _, p := range ps {
		for i := range p.G {
			p.G[i] = 0.1
		}
	}
	opt, err := NewAdamW(ps, DefaultAdamWConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer opt.Close()
	if err := opt.Step(1e-3); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() { opt.Step(1e-3) }); n != 0 {
		t.Errorf("Step allocates %v times per call after the first", n)
	}
}

func TestAdamWRejectsBadParameters(t *testing.T) {
	cases := []struct {
		name   string
		params []*Param
		cfg    AdamWConfig
		want   string
	}{
		{"duplicate name", []*Param{{Name: "x"}, {Name: "x"}}, DefaultAdamWConfig(), `"x" listed twice`},
		{"gradient length", []*Param{{Name: "x", W: make([]float32, 3), G: make([]float32, 2)}}, DefaultAdamWConfig(), `"x" has 3 values but 2 gradients`},
		{"unknown group", []*Param{{Name: "x", Group: "text"}}, AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, GroupLR: map[string]float64{"visoin": 0.1}}, `group "visoin"`},
		{"beta out of range", []*Param{{Name: "x"}}, AdamWConfig{Beta1: 1, Beta2: 0.999, Eps: 1e-8}, "beta1"},
		{"zero eps", []*Param{{Name: "x"}}, AdamWConfig{Beta1: 0.9, Beta2: 0.999}, "eps"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAdamW(tc.params, tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestAdamWResumedFromSavedStateMatchesUninterruptedRun(t *testing.T) {
	mk := func() []*Param {
		ps := []*Param{
			{Name: "vision.w", W: make([]float32, 300), G: make([]float32, 300), Group: "vision"},
			{Name: "text.bias", W: make([]float32, 10), G: make([]float32, 10), Role: graph.RoleBias, Group: "text"},
		}
		for k, p := range ps {
			for i := range p.W {
				p.W[i] = float32(math.Cos(float64(i + 3*k)))
			}
		}
		return ps
	}
	grads := func(ps []*Param, step int) {
		for k, p := range ps {
			for i := range p.G {
				p.G[i] = float32(testGrad(k, i, step, 1))
			}
		}
	}
	cfg := AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, GroupLR: map[string]float64{"vision": 0.1}}
	sched := Schedule{Kind: ScheduleCosine, BaseLR: 1e-3, WarmupSteps: 2, TotalSteps: 10}

	full := mk()
	o1, _ := NewAdamW(full, cfg)
	defer o1.Close()
	for s := 0; s < 10; s++ {
		grads(full, s)
		if err := o1.Step(sched.LR(s)); err != nil {
			t.Fatal(err)
		}
	}

	first := mk()
	o2, _ := NewAdamW(first, cfg)
	for s := 0; s < 4; s++ {
		grads(first, s)
		o2.Step(sched.LR(s))
	}
	path := filepath.Join(t.TempDir(), "optim.safetensors")
	if err := o2.SaveState(path); err != nil {
		t.Fatal(err)
	}
	o2.Close()

	// A new process: weights from the checkpoint, optimiser from its state.
	resumed := mk()
	for k := range resumed {
		copy(resumed[k].W, first[k].W)
	}
	o3, _ := NewAdamW(resumed, cfg)
	defer o3.Close()
	if err := o3.LoadState(path); err != nil {
		t.Fatal(err)
	}
	if o3.Steps() != 4 {
		t.Fatalf("restored step count %d, want 4", o3.Steps())
	}
	for s := o3.Steps(); s < 10; s++ {
		grads(resumed, s)
		o3.Step(sched.LR(s))
	}
	for k := range full {
		m1, v1, _ := o1.Moments(full[k].Name)
		m3, v3, _ := o3.Moments(full[k].Name)
		for i := range full[k].W {
			if full[k].W[i] != resumed[k].W[i] || m1[i] != m3[i] || v1[i] != v3[i] {
				t.Fatalf("%s[%d]: uninterrupted (w %v m %v v %v), resumed (w %v m %v v %v)",
					full[k].Name, i, full[k].W[i], m1[i], v1[i], resumed[k].W[i], m3[i], v3[i])
			}
		}
	}
}

func TestAdamWLoadStateNamesMismatchedParameter(t *testing.T) {
	dir := t.TempDir()
	save := func(ps []*Param) string {
		o, err := NewAdamW(ps, DefaultAdamWConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		o.Step(1e-3)
		path := filepath.Join(dir, fmt.Sprintf("s%d.safetensors", len(ps)*100+len(ps[0].W)))
		if err := o.SaveState(path); err != nil {
			t.Fatal(err)
		}
		return path
	}
	p := func(name string, n int) *Param {
		return &Param{Name: name, W: make([]float32, n), G: make([]float32, n)}
	}
	cases := []struct {
		name  string
		saved []*Param
		model []*Param
		want  string
	}{
		{"parameter missing from the state", []*Param{p("a", 4)}, []*Param{p("a", 4), p("b", 2)}, `no "exp_avg/b" for parameter "b"`},
		{"parameter of another size", []*Param{p("a", 4), p("b", 3)}, []*Param{p("a", 4), p("b", 2)}, `parameter "b" has 2 values but its optimizer state "exp_avg/b" has 3`},
		{"state for a parameter the model lacks", []*Param{p("a", 5), p("zz", 2)}, []*Param{p("a", 5)}, `parameter "zz", which the model does not have`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := save(tc.saved)
			o, _ := NewAdamW(tc.model, DefaultAdamWConfig())
			defer o.Close()
			err := o.LoadState(path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if o.Steps() != 0 {
				t.Errorf("failed load changed the step count to %d", o.Steps())
			}
		})
	}
}

func TestFMA32RoundsOnce(t *testing.T) {
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(300).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(300).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(300).SetFloat64(float64(c)))
		f, _ := x.Float32()
		return f
	}
	one := float32(1)
	ulp := float32(math.Ldexp(1, -23))
	cases := []struct{ a, b, c float32 }{
		// a*b+c = 1 + 1.5 ulp - 2^-70: float64 rounds it to the tie 1 + 1.5 ulp,
		// which ties-to-even would send up; the true value rounds down.
		{1 + ulp, (1 - ulp) * float32(math.Ldexp(1, -24)), one + ulp},
		{-(1 + ulp), (1 - ulp) * float32(math.Ldexp(1, -24)), -(one + ulp)},
		{1 + ulp, float32(math.Ldexp(1, -24)), 1},
		{3, 0.1, -0.3},
		{1e-30, 1e-10, 1e-45},
		{float32(math.Inf(1)), 1, 1},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 100000; i++ {
		cases = append(cases, struct{ a, b, c float32 }{
			float32(rng.NormFloat64()), float32(rng.NormFloat64() * math.Pow(2, float64(rng.IntN(60)-30))), float32(rng.NormFloat64()),
		})
	}
	for _, tc := range cases {
		got, want := fma32(tc.a, tc.b, tc.c), exact(tc.a, tc.b, tc.c)
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Fatalf("fma32(%v, %v, %v) = %v, want %v", tc.a, tc.b, tc.c, got, want)
		}
	}
}

// decayRole is a role whose default weight decay is decay.
func decayRole(decay bool) graph.Role {
	if decay {
		return graph.RoleWeight
	}
	return graph.RoleBias
}

// TestLayersDeclareWeightDecay checks the roles GIT's layers give their
// parameters against the usual convention, written out by hand: no decay for
// biases, LayerNorm parameters and embeddings (CLIP's class and patch
// embeddings included), decay for everything else; DecayAll decays all.
func TestLayersDeclareWeightDecay(t *testing.T) {
	for _, tied := range []bool{false, true} {
		c := tinyModelConfig()
		c.TieWordEmbeddings = tied
		m, err := gitmodel.New(c)
		if err != nil {
			t.Fatal(err)
		}
		cases := []struct {
			name string
			want bool
		}{
			{"git.encoder.layer.0.attention.self.query.weight", true},
			{"git.encoder.layer.0.attention.self.query.bias", false},
			{"git.encoder.layer.0.output.LayerNorm.weight", false},
			{"git.image_encoder.vision_model.encoder.layers.0.layer_norm1.weight", false},
			{"git.image_encoder.vision_model.pre_layrnorm.weight", false},
			{"git.image_encoder.vision_model.post_layernorm.weight", false},
			{"git.visual_projection.visual_projection.0.weight", true},
			{"git.visual_projection.visual_projection.1.weight", false},
			{"git.embeddings.word_embeddings.weight", false},
			{"git.embeddings.position_embeddings.weight", false},
			{"git.image_encoder.vision_model.embeddings.class_embedding", false},
			{"git.image_encoder.vision_model.embeddings.patch_embedding.weight", false},
			{"git.image_encoder.vision_model.embeddings.position_embedding.weight", false},
			{"output.weight", true},
			{"output.bias", false},
		}
		for _, tc := range cases {
			p := m.Params.Get(tc.name)
			if p == nil {
				if tied && tc.name == "output.weight" {
					continue // the word embeddings serve as the LM head
				}
				t.Fatalf("tied=%v: no parameter %s", tied, tc.name)
			}
			if got := p.Role.Decayed(); got != tc.want {
				t.Errorf("tied=%v: %s (role %v) decayed %v, want %v", tied, tc.name, p.Role, got, tc.want)
			}
		}
		if tied && m.Params.Get("output.weight") != nil {
			t.Error("tied model has its own output.weight")
		}
	}
	// DecayAll decays a bias; without it a bias is left alone.
	for _, all := range []bool{false, true} {
		p := &Param{Name: "b", Role: graph.RoleBias, W: []float32{1}, G: []float32{0}}
		o, err := NewAdamW([]*Param{p}, AdamWConfig{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.5, DecayAll: all})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.Step(0.1); err != nil {
			t.Fatal(err)
		}
		o.Close()
		if want := map[bool]float32{false: 1, true: 0.95}[all]; p.W[0] != want {
			t.Errorf("DecayAll=%v: bias moved to %v, want %v", all, p.W[0], want)
		}
	}
}

// BenchmarkAdamWStep10M steps 10M parameters (GIT-base has 176M: scale by
// 17.6 for its step time).
func BenchmarkAdamWStep10M(b *testing.B) {
	const total = 10_000_000
	var ps []*Param
	for k, n := 0, 0; n < total; k++ {
		sz := min(total-n, 589_824) // a 768x768 matrix
		p := &Param{Name: fmt.Sprintf("p%d", k), W: make([]float32, sz), G: make([]float32, sz)}
		for i := range p.G {
			p.G[i] = float32(i%7) * 0.01
		}
		ps = append(ps, p)
		n += sz
	}
	opt, err := NewAdamW(ps, DefaultAdamWConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer opt.Close()
	opt.Step(1e-4)
	b.SetBytes(total * 4 * 5) // read w, g, m, v; write w, m, v (counted as 5 streams)
	b.ResetTimer()
	for range b.N {
		opt.Step(1e-4)
	}
}

func TestPowIntIsCorrectlyRounded(t *testing.T) {
	exact := func(b float64, n int) float64 {
		x := new(big.Float).SetPrec(600).SetFloat64(b)
		r := new(big.Float).SetPrec(600).SetFloat64(1)
		for ; n > 0; n >>= 1 {
			if n&1 == 1 {
				r.Mul(r, x)
			}
			x.Mul(x, x)
		}
		f, _ := r.Float64()
		return f
	}
	for _, b := range []float64{0.9, 0.999, 0.98, 0.5, 0.95, 0.9999} {
		for n := 0; n <= 3000; n++ {
			if got, want := powInt(b, n), exact(b, n); got != want {
				t.Fatalf("powInt(%v, %d) = %v, want %v", b, n, got, want)
			}
		}
		for _, n := range []int{10000, 65537, 1 << 20} {
			if got, want := powInt(b, n), exact(b, n); math.Abs(got-want) > 1e-300 && got != want {
				t.Fatalf("powInt(%v, %d) = %v, want %v", b, n, got, want)
			}
		}
	}
}

// tinyModelConfig is configs/tiny.json, a model small enough to build in a
// unit test.
func tinyModelConfig() gitmodel.Config {
	c, err := gitmodel.LoadConfig(filepath.Join("..", "configs", "tiny.json"))
	if err != nil {
		panic(err)
	}
	return c
}
