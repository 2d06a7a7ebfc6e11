package graph

import (
	"math/rand"
	"slices"
	"testing"
)

// TestAMXPanels16MatchesAMXPanel: a product of at most 16 rows on
// amxPanels16 (one A tile, double-buffered B) is bit for bit the product on
// amxPanel (the 32×32 kernel, k in chunks of amxKChunk steps), for random
// shapes (m 1-16, odd and even n with narrow last panels, k from one step
// to past a chunk), from zero, from a bias and accumulating into C, on one
// worker and on several.
func TestAMXPanels16MatchesAMXPanel(t *testing.T) {
	if !amxOn() {
		t.Skip("AMX does not run here: " + amxProbe().reason)
	}
	rng := rand.New(rand.NewSource(16))
	for trial := range 60 {
		m := 1 + rng.Intn(16)
		n := 1 + rng.Intn(200)
		k := 1 + rng.Intn(700)
		if trial < 16 {
			m = trial + 1
		}
		o := newAMXOperands(rng, m, n, k)
		for _, mode := range amxModes {
			for _, workers := range []int{1, 3} {
				run := func(no16 bool) []float32 { return o.run(&amxScratch{no16: no16}, mode, workers) }
				want, got := run(true), run(false)
				if i := firstDiff(got, want); i >= 0 {
					t.Fatalf("m=%d n=%d k=%d %s workers=%d: c[%d,%d] = %v on amxPanels16, %v on amxPanel", m, n, k, mode, workers, i/n, i%n, got[i], want[i])
				}
			}
		}
	}
}

// TestAMXPassesOverKKeepEveryRowsSums: a product whose k is longer than
// amxKPass steps, computed in passes over ranges of k (more rows of A per
// pass), is bit for bit the product computed in one pass over all of k:
// each element still takes k's chunks in the same order. Shapes have k
// past one and several passes (also off a chunk and off a step), full and
// partial row blocks and panels, from zero, from a bias and accumulating,
// on one worker and on several; the float64 tests above bound both.
func TestAMXPassesOverKKeepEveryRowsSums(t *testing.T) {
	if !amxOn() {
		t.Skip("AMX does not run here: " + amxProbe().reason)
	}
	rng := rand.New(rand.NewSource(17))
	for _, sh := range []struct{ m, n, k int }{
		{64, 64, amxKPass*32 + 32}, {97, 70, 2*amxKPass*32 + 200}, {200, 33, 3072}, {33, 96, amxKPass*32 + 1},
	} {
		m, n, k := sh.m, sh.n, sh.k
		o := newAMXOperands(rng, m, n, k)
		for _, mode := range amxModes {
			for _, workers := range []int{1, 3} {
				run := func(kPass int) []float32 { return o.run(&amxScratch{kPass: kPass}, mode, workers) }
				want, got := run(ceil32(k)/32), run(0)
				if i := firstDiff(got, want); i >= 0 {
					t.Fatalf("%+v %s workers=%d: c[%d,%d] = %v in passes over k, %v in one pass", sh, mode, workers, i/n, i%n, got[i], want[i])
				}
			}
		}
	}
}

// amxOperands is a random m×k by k×n product packed for amxProduct (A
// rounded and row-packed, B in VNNI panels), a bias and a starting C.
type amxOperands struct {
	m, n, kp int
	a, wp    []uint16
	bias, c0 []float32
}

func newAMXOperands(rng *rand.Rand, m, n, k int) amxOperands {
	kp := ceil32(k)
	x := randF32(rng, m*k)
	w := make([]uint16, n*k)
	for i, v := range randF32(rng, n*k) {
		w[i] = BF16FromF32(v)
	}
	o := amxOperands{m: m, n: n, kp: kp, wp: make([]uint16, amxWeightsLen(k, n)), a: make([]uint16, ceil32(m)*kp)}
	packWeightsVNNI(o.wp, w, k, n, 0, ceil32(n)/32)
	packRowsBF16(o.a, make([]uint16, kp), x, k, m, k, kp, 0, ceil32(m))
	o.bias, o.c0 = randF32(rng, n), randF32(rng, m*n)
	return o
}

// amxModes are the ways a product starts: from zero, from a bias, or
// accumulating into C.
var amxModes = []string{"zero", "bias", "accum"}

// run computes the product on s, starting as mode says.
func (o amxOperands) run(s *amxScratch, mode string, workers int) []float32 {
	c := make([]float32, o.m*o.n)
	var b []float32
	switch mode {
	case "bias":
		b = o.bias
	case "accum":
		copy(c, o.c0)
	}
	amxProduct(s, o.a, o.m, o.kp, o.wp, o.n, c, o.n, b, mode == "accum", workers, false)
	return c
}

// TestFastVNNIPackMatchesScalarPack: the gather-based weight packing writes
// exactly the scalar packing's layout, for every panel range.
func TestFastVNNIPackMatchesScalarPack(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	for _, c := range []struct{ in, out int }{{32, 32}, {64, 96}, {768, 64}, {3072, 32}, {96, 3072}} {
		w := randBF16(rng, c.out*c.in)
		want := make([]uint16, amxWeightsLen(c.in, c.out))
		packWeightsVNNI(want, w, c.in, c.out, 0, c.out/32)
		got := make([]uint16, len(want))
		for i := range got {
			got[i] = 0xffff // every element must be written
		}
		mid := c.out / 64
		packWeightsVNNIFast(got, w, c.in, c.out, 0, mid)
		packWeightsVNNIFast(got, w, c.in, c.out, mid, c.out/32)
		if !slices.Equal(got, want) {
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("%+v: element %d = %#x, scalar pack %#x", c, i, got[i], want[i])
				}
			}
		}
	}
}
