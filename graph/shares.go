package graph

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Parallel kernels split their work into shares, one per core: the calling
// goroutine computes share 0 and helpers the others (runShares). A helper
// started with go for every share costs a wake-up of the idle core each
// time: traces of the git-base vision tower and decode steps on the 2-core
// VMs showed the helper starting 20–90 µs after its caller (handOff
// explains the 90), against shares of 0.1–1 ms; a bf16-full decode step
// of one row went from ~8 to ~5 ms with the pool
// (BenchmarkGitBaseBF16DecodeStep). The helpers here are goroutines that
// stay: after a share each one spins for a while (yielding its core to
// anything else runnable on every turn) waiting for the next, so the next
// kernel's share starts within a microsecond, and only then parks. The
// pool is created on first use, one helper per core beyond the first,
// and lives with the process, like the runtime's own worker threads; it
// holds no data, only the share being handed over. A caller that finds
// every helper busy (another goroutine's kernel, or a share that is itself
// parallel) starts a goroutine for the share, as before.

// helperSpins is how many scheduler turns an idle helper waits for its
// next share before it parks (about 100–300 µs on the development
// machine: longer than the gaps between a graph's kernels, short enough
// that an idle process stops spinning at once).
const helperSpins = 2000

// helper is one pooled goroutine.
type helper struct {
	next   atomic.Pointer[shareTask] // the share handed over; nil when idle
	parked atomic.Bool
	wake   chan struct{} // one token wakes a parked helper
}

// shareTask is one share of a runShares call.
type shareTask struct {
	share func(int)
	i     int
	call  *shareCall
}

// shareCall is what a runShares call's shares report to: the count not yet
// done, and a channel the last one signals. The caller always takes that
// signal before it returns, so once it has, no share touches the call, its
// tasks or its channel again, and the call goes back to callPool for the
// next runShares: a kernel inside a decode step's loop allocates nothing
// for its shares (TestRunSharesAllocatesNoCallRecord).
type shareCall struct {
	left  atomic.Int32
	fin   chan struct{} // buffered: the signal never blocks
	tasks []shareTask   // shares 1..n-1
}

// callPool holds the shareCalls of finished runShares calls.
var callPool = sync.Pool{New: func() any { return &shareCall{fin: make(chan struct{}, 1)} }}

// done marks one share done.
func (c *shareCall) done() {
	if c.left.Add(-1) == 0 {
		c.fin <- struct{}{}
	}
}

var helpers = sync.OnceValue(func() []*helper {
	hs := make([]*helper, max(runtime.GOMAXPROCS(0)-1, 0))
	for k := range hs {
		h := &helper{wake: make(chan struct{}, 1)}
		hs[k] = h
		go h.loop()
	}
	return hs
})

func (h *helper) loop() {
	for {
		t := h.next.Load()
		for n := 0; t == nil && n < helperSpins; n++ {
			runtime.Gosched()
			t = h.next.Load()
		}
		if t == nil {
			h.parked.Store(true)
			if t = h.next.Load(); t == nil {
				<-h.wake
				h.parked.Store(false)
				continue
			}
			h.parked.Store(false)
		}
		t.share(t.i)
		h.next.Store(nil)
		t.call.done()
	}
}

// give hands t to h if h is idle and reports whether it did.
func (h *helper) give(t *shareTask) bool {
	if !h.next.CompareAndSwap(nil, t) {
		return false
	}
	if h.parked.Load() {
		select {
		case h.wake <- struct{}{}:
		default:
		}
		handOff()
	}
	return true
}

// runChunks cuts [0, n) into chunks of chunk items (the last shorter) and
// runs fn(i, lo, hi) for the i-th chunk [lo, hi) through runShares.
func runChunks(n, chunk int, fn func(i, lo, hi int)) {
	runShares((n+chunk-1)/chunk, func(i int) { fn(i, i*chunk, min((i+1)*chunk, n)) })
}

// runShares runs share(i) for every i in [0, n) concurrently: share 0 on
// the calling goroutine, the others on idle pool helpers or, when none is
// idle, on new goroutines; it returns when all are done.
func runShares(n int, share func(i int)) {
	if n <= 1 {
		if n == 1 {
			share(0)
		}
		return
	}
	call := callPool.Get().(*shareCall)
	call.left.Store(int32(n - 1))
	call.tasks = resize(call.tasks, n-1)
	tasks := call.tasks
	hs := helpers()
	spawned := false
	for i := 1; i < n; i++ {
		t := &tasks[i-1]
		*t = shareTask{share: share, i: i, call: call}
		given := false
		for _, h := range hs {
			if h.give(t) {
				given = true
				break
			}
		}
		if !given {
			spawned = true
			go func() {
				t.share(t.i)
				t.call.done()
			}()
		}
	}
	if spawned {
		handOff()
	}
	share(0)
	// Spin while the other shares are likely to end soon (a kernel's
	// shares take about as long as each other), then block, so that a
	// long share does not keep this core busy. The last share sends the
	// signal just after its count reaches zero: take it either way.
	for k := 0; k < helperSpins && call.left.Load() != 0; k++ {
		runtime.Gosched()
	}
	<-call.fin
	clear(tasks) // no hold on the shares' closures
	callPool.Put(call)
}
