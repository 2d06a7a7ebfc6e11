package graph

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestRunSharesRunsEveryShareOnce: each share index runs exactly once and
// runShares returns only after all of them, for share counts below, at
// and above the helper count.
func TestRunSharesRunsEveryShareOnce(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 7} {
		counts := make([]atomic.Int32, n)
		var done atomic.Int32
		runShares(n, func(i int) {
			counts[i].Add(1)
			done.Add(1)
		})
		if got := int(done.Load()); got != n {
			t.Fatalf("n=%d: %d shares done when runShares returned", n, got)
		}
		for i := range counts {
			if c := counts[i].Load(); c != 1 {
				t.Errorf("n=%d: share %d ran %d times", n, i, c)
			}
		}
	}
}

// TestRunSharesFromManyGoroutinesAndNested: callers on many goroutines at
// once, each share itself calling runShares (the helpers busy, so shares
// fall back to new goroutines), all complete with every share run once.
func TestRunSharesFromManyGoroutinesAndNested(t *testing.T) {
	const callers, calls = 8, 200
	var inner, outer atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range calls {
				runShares(2, func(int) {
					outer.Add(1)
					runShares(3, func(int) { inner.Add(1) })
				})
			}
		}()
	}
	wg.Wait()
	if o, i := outer.Load(), inner.Load(); o != callers*calls*2 || i != callers*calls*2*3 {
		t.Fatalf("outer shares %d (want %d), inner %d (want %d)", o, callers*calls*2, i, callers*calls*2*3)
	}
}

// TestRunSharesAllocatesNoCallRecord: once warm, a runShares call whose
// share function is allocated once reuses a pooled call record, tasks and
// signal channel: it allocates nothing, on helpers or not.
func TestRunSharesAllocatesNoCallRecord(t *testing.T) {
	var sum atomic.Int64
	share := func(i int) { sum.Add(int64(i)) }
	n := len(helpers()) + 1 // one share per core: none falls back to a new goroutine
	if n < 2 {
		t.Skip("one core: runShares has no helpers")
	}
	runShares(n, share)
	if a := testing.AllocsPerRun(200, func() { runShares(n, share) }); a > 0 {
		t.Errorf("%.1f allocations per call of %d shares", a, n)
	}
}

// TestRunSharesWaitsForSlowSharesAfterReuse: with call records reused, a
// caller whose spin runs out waits for its own shares' signal, not one
// left by an earlier call: every share of every call has finished when its
// runShares returns, for shares shorter and longer than the spin.
func TestRunSharesWaitsForSlowSharesAfterReuse(t *testing.T) {
	for round := range 300 {
		var done atomic.Int32
		slow := round%3 == 0
		runShares(3, func(i int) {
			if i > 0 && slow {
				for k := 0; k < 20000; k++ {
					runtime.Gosched()
				}
			}
			done.Add(1)
		})
		if d := done.Load(); d != 3 {
			t.Fatalf("round %d: runShares returned with %d of 3 shares done", round, d)
		}
	}
}
