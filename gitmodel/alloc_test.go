package gitmodel

import (
	"runtime"
	"testing"

	"github.com/gitcap/gitcap/graph"
)

// TestDecodeStepAllocationDoesNotGrow checks that a steady-state decode step
// allocates the same small amount whether it is the 3rd token or the 30th:
// the graphs, KV cache and op outputs are reused, and nothing grows with
// the sequence.
func TestDecodeStepAllocationDoesNotGrow(t *testing.T) {
	checkDecodeStepAllocation(t, loadTiny(t, "git-tiny"))
}

// TestBF16DecodeStepAllocationDoesNotGrow is the same check with bf16
// weights (LinearBF16's GEMV kernel and EmbedBF16).
func TestBF16DecodeStepAllocationDoesNotGrow(t *testing.T) {
	checkDecodeStepAllocation(t, loadTinyBF16(t))
}

func checkDecodeStepAllocation(t *testing.T, m *Model) {
	g := m.NewGenerator()
	defer g.Close()
	g.maxText = 60
	s := &cachedStepper{m: m, g: g}
	if _, err := s.start(refPixels(t, "cats.png"), 1, []int{101}, 2); err != nil {
		t.Fatal(err)
	}
	tokens := []int{1037, 2048}
	perStep := func(n int) (bytes, allocs float64) {
		var a, b runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		for i := 0; i < n; i++ {
			if _, err := s.step(tokens); err != nil {
				t.Fatal(err)
			}
		}
		runtime.ReadMemStats(&b)
		return float64(b.TotalAlloc-a.TotalAlloc) / float64(n), float64(b.Mallocs-a.Mallocs) / float64(n)
	}
	// MemStats counts the whole process, so a window can catch a stray
	// allocation of the runtime or the test framework (a few kB, seen in CI
	// as one window 15% above its neighbours). The least of three windows
	// filters that out; an allocation that grows with the sequence is in
	// every late window and still shows.
	leastOf3 := func(n int) (bytes, allocs float64) {
		bytes, allocs = perStep(n)
		for i := 0; i < 2; i++ {
			b, a := perStep(n)
			bytes, allocs = min(bytes, b), min(allocs, a)
		}
		return bytes, allocs
	}
	perStep(2) // first steps may still size buffers
	earlyBytes, earlyAllocs := leastOf3(6)
	perStep(10)
	lateBytes, lateAllocs := leastOf3(6)
	t.Logf("per step: %.0f B in %.0f allocations early, %.0f B in %.0f allocations late", earlyBytes, earlyAllocs, lateBytes, lateAllocs)
	if lateBytes > earlyBytes*1.1+256 || lateAllocs > earlyAllocs*1.1+2 {
		t.Errorf("allocation grows with the sequence: %.0f B/%.0f allocs per step early, %.0f B/%.0f late", earlyBytes, earlyAllocs, lateBytes, lateAllocs)
	}
	// The op outputs are reused: what remains is the tape's bookkeeping,
	// far below one logits row (30522 floats = 122 kB). (The pure-Go BLAS
	// (GITCAP_OPENBLAS=off, or no OpenBLAS) allocates inside its own calls.)
	if lateBytes > 64<<10 && graph.BLAS().OpenBLAS {
		t.Errorf("a decode step allocates %.0f bytes; its outputs should be reused", lateBytes)
	}
}
