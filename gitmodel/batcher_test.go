package gitmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// batchCase is one call to run through the batcher, with what it must give.
type batchCase struct {
	name   string
	image  string
	prompt []int
	opts   GenerateOptions
	want   []Sequence // HF's ids where HF recorded them, else Generator alone
}

// batcherCases: for every fixture image HF's greedy, 3-beam and prompted
// results, plus sampled calls (2 sequences each, checked against Generator
// alone with the same seed and offset).
func batcherCases(t *testing.T, m *Model) []batchCase {
	ref := loadGenRef(t)
	g := m.NewGenerator()
	defer g.Close()
	var cs []batchCase
	for i, c := range ref.PerImage {
		ml := ref.Settings.MaxLength
		cs = append(cs,
			batchCase{c.Image + "/greedy", c.Image, []int{101}, GenerateOptions{MaxLength: ml}, []Sequence{{IDs: c.Greedy.IDs}}},
			batchCase{c.Image + "/beam3", c.Image, []int{101}, GenerateOptions{MaxLength: ml, NumBeams: 3}, []Sequence{{IDs: c.Beam3.IDs, Score: c.Beam3.Score}}},
			batchCase{c.Image + "/prompt", c.Image, c.PromptGreedy.PromptIDs, GenerateOptions{MaxLength: ml}, []Sequence{{IDs: c.PromptGreedy.IDs}}},
		)
		if i%3 == 0 {
			o := GenerateOptions{MaxLength: ml, DoSample: true, Temperature: 3, Seed: 7, NumReturnSequences: 2, SampleOffset: i}
			alone, err := g.Generate(context.Background(), refPixels(t, c.Image), 1, []int{101}, o)
			if err != nil {
				t.Fatal(err)
			}
			cs = append(cs, batchCase{c.Image + "/sample", c.Image, []int{101}, o, alone[0]})
		}
	}
	return cs
}

// waitIdle fails unless every row is freed soon after the calls returned
// (a call's leave message reaches the batcher at its next boundary).
func waitIdle(t *testing.T, b *Batcher) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for b.BusyRows() != 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := b.BusyRows(); n != 0 {
		t.Errorf("%d rows still busy after every call returned", n)
	}
}

// generateConcurrently runs every case's call on b at once and checks each
// result against the case's sequences (suffix is added to the case names).
func generateConcurrently(t *testing.T, b *Batcher, cases []batchCase, suffix string) {
	t.Helper()
	var wg sync.WaitGroup
	for _, c := range cases {
		px := refPixels(t, c.image)
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := b.Generate(context.Background(), px, c.prompt, c.opts)
			if err != nil {
				t.Errorf("%s%s: %v", c.name, suffix, err)
				return
			}
			checkSeqs(t, c.name+suffix, got, c.want)
		}()
	}
	wg.Wait()
}

func checkSeqs(t *testing.T, name string, got, want []Sequence) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d sequences, want %d", name, len(got), len(want))
		return
	}
	for i := range got {
		if !reflect.DeepEqual(got[i].IDs, want[i].IDs) || math.Abs(got[i].Score-want[i].Score) > 1e-4 {
			t.Errorf("%s[%d]: got %v (%.6f), want %v (%.6f)", name, i, got[i].IDs, got[i].Score, want[i].IDs, want[i].Score)
		}
	}
}

// TestBatcherMatchesHFAloneAndUnderLoad runs every case alone, then all of
// them at once through batchers too small to hold them (so calls join and
// leave mid-generation, beams share the step with greedy rows and sampled
// rows): the ids are HF's (and Generator's) every time.
func TestBatcherMatchesHFAloneAndUnderLoad(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	cases := batcherCases(t, m)
	ctx := context.Background()
	for _, cfg := range []struct {
		rows   int
		serial bool // SerialEncode: no decode step while the encoder runs
	}{{3, false}, {8, false}, {8, true}} {
		rows := cfg.rows
		b, err := m.NewBatcher(BatcherOptions{Rows: rows, MaxText: 24, MaxEncode: 4, SerialEncode: cfg.serial})
		if err != nil {
			t.Fatal(err)
		}
		if rows == 8 && !cfg.serial {
			for i, c := range cases {
				if testing.Short() && i%4 != 0 {
					continue // -short: a quarter of the cases alone
				}
				got, err := b.Generate(ctx, refPixels(t, c.image), c.prompt, c.opts)
				if err != nil {
					t.Fatalf("%s alone: %v", c.name, err)
				}
				checkSeqs(t, c.name+" alone", got, c.want)
			}
		}
		generateConcurrently(t, b, cases, fmt.Sprintf(" with %d rows (serial encode %v)", rows, cfg.serial))
		waitIdle(t, b)
		b.Close()
	}
}

// TestBatcherDropsCancelledCalls: a call whose context ends leaves the
// batch (its rows are freed) while the others finish with HF's ids.
func TestBatcherDropsCancelledCalls(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	ref := loadGenRef(t)
	b, err := m.NewBatcher(BatcherOptions{Rows: 4, MaxText: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// A long call: EOS banned for 55 tokens.
	long, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.Generate(long, refPixels(t, "cats.png"), []int{101}, GenerateOptions{MaxLength: 60, MinNewTokens: 55, NumBeams: 2})
		errc <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.BusyRows() < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if b.BusyRows() < 2 {
		t.Fatal("the long call never joined the batch")
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled call returned %v, want context.Canceled", err)
	}
	c := ref.PerImage[1]
	got, err := b.Generate(context.Background(), refPixels(t, c.Image), []int{101}, GenerateOptions{MaxLength: ref.Settings.MaxLength})
	if err != nil {
		t.Fatal(err)
	}
	checkSeqs(t, c.Image, got, []Sequence{{IDs: c.Greedy.IDs}})
	waitIdle(t, b)
	// A call cancelled before it starts never joins.
	dead, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := b.Generate(dead, refPixels(t, "cats.png"), []int{101}, GenerateOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("call with a cancelled context returned %v", err)
	}
}

// TestBatcherRejectsWhatItCannotHold: lengths over its cache, more
// sequences than rows, bad options and calls after Close are errors.
func TestBatcherRejectsWhatItCannotHold(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	b, err := m.NewBatcher(BatcherOptions{Rows: 4, MaxText: 20})
	if err != nil {
		t.Fatal(err)
	}
	px := refPixels(t, "cats.png")
	for _, c := range []struct {
		opts GenerateOptions
		want string
	}{
		{GenerateOptions{MaxLength: 21}, "limit of 20"},
		{GenerateOptions{MaxNewTokens: 20}, "limit of 20"},
		{GenerateOptions{NumBeams: 5}, "exceed the batch's 4 rows"},
		{GenerateOptions{DoSample: true, NumReturnSequences: 5}, "exceed the batch's 4 rows"},
		{GenerateOptions{NumBeams: 2, NumReturnSequences: 3}, "cannot exceed num_beams"},
		{GenerateOptions{NoCache: true}, "KV cache"},
	} {
		if _, err := b.Generate(context.Background(), px, []int{101}, c.opts); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: got %v, want an error containing %q", c.opts, err, c.want)
		}
	}
	if _, err := b.Generate(context.Background(), px[:10], []int{101}, GenerateOptions{}); err == nil {
		t.Error("short pixels accepted")
	}
	if _, err := m.NewBatcher(BatcherOptions{MaxText: 65}); err == nil {
		t.Error("a cache longer than max_position_embeddings accepted")
	}
	b.Close()
	b.Close() // harmless
	if _, err := b.Generate(context.Background(), px, []int{101}, GenerateOptions{}); !errors.Is(err, ErrBatcherClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestBatcherTokenCostDoesNotGrow: 30 more tokens of a greedy call cost no
// more allocations than the graph's own per-step bookkeeping (the batcher's
// bookkeeping and the hand-off between goroutines allocate nothing).
func TestBatcherTokenCostDoesNotGrow(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	b, err := m.NewBatcher(BatcherOptions{Rows: 2, MaxText: 60})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	px := refPixels(t, "cats.png")
	run := func(tokens int) (bytes, allocs uint64) {
		var a, z runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&a)
		if _, err := b.Generate(context.Background(), px, []int{101}, GenerateOptions{MaxNewTokens: tokens, MinNewTokens: tokens}); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&z)
		return z.TotalAlloc - a.TotalAlloc, z.Mallocs - a.Mallocs
	}
	run(20) // compile and size everything
	// The least of three measurements: a one-off allocation elsewhere in the
	// process (the runtime, another goroutine) lands in one of them, a cost
	// per token in all.
	perB, perA := math.Inf(1), math.Inf(1)
	for range 3 {
		shortB, shortA := run(20)
		longB, longA := run(50)
		perB = min(perB, float64(longB-shortB)/30)
		perA = min(perA, float64(longA-shortA)/30)
	}
	t.Logf("per extra token: %.0f B in %.1f allocations", perB, perA)
	// The step graph alone: what TestDecodeStepAllocationDoesNotGrow allows.
	g := m.NewGenerator()
	defer g.Close()
	g.maxText = 60
	s := &cachedStepper{m: m, g: g}
	if _, err := s.start(px, 1, []int{101}, 2); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.step([]int{1037, 1037}); err != nil {
			t.Fatal(err)
		}
	}
	var a, z runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	for range 10 {
		if _, err := s.step([]int{1037, 1037}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&z)
	stepB, stepA := float64(z.TotalAlloc-a.TotalAlloc)/10, float64(z.Mallocs-a.Mallocs)/10
	t.Logf("decode step graph alone: %.0f B in %.1f allocations", stepB, stepA)
	if perA > stepA+1 || perB > stepB+256 {
		t.Errorf("a batched token costs %.0f B / %.1f allocations, the step graph alone %.0f B / %.1f", perB, perA, stepB, stepA)
	}
}

// TestBatcherLetsShortCallsPassLongOnes: a short call that arrives while a
// long one decodes joins it at a token boundary (they share decode steps)
// and returns while the long one is still running.
func TestBatcherLetsShortCallsPassLongOnes(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	ref := loadGenRef(t)
	var mu sync.Mutex
	most := 0
	b, err := m.NewBatcher(BatcherOptions{Rows: 4, MaxText: 60, OnStep: func(rows int, _ time.Duration) {
		mu.Lock()
		most = max(most, rows)
		mu.Unlock()
		time.Sleep(time.Millisecond) // the long call takes 58 ms at least, the short one 9
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	c := ref.PerImage[2]
	longPx, shortPx := refPixels(t, "cats.png"), refPixels(t, c.Image)
	longDone := make(chan error, 1)
	go func() {
		_, err := b.Generate(context.Background(), longPx, []int{101}, GenerateOptions{MaxLength: 60, MinNewTokens: 58})
		longDone <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.BusyRows() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	got, err := b.Generate(context.Background(), shortPx, []int{101}, GenerateOptions{MaxLength: ref.Settings.MaxLength})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-longDone:
		t.Fatal("the long call finished first: the short one waited for it")
	default:
	}
	checkSeqs(t, c.Image, got, []Sequence{{IDs: c.Greedy.IDs}})
	if err := <-longDone; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if most < 2 {
		t.Errorf("at most %d rows decoded together; the calls never shared a step", most)
	}
}

// TestBatcherDecodesWhileItEncodes: a call that arrives while another
// decodes is encoded on the encoder goroutine; the running call keeps
// taking decode steps until the new one is ready to join. With
// SerialEncode it takes none meanwhile (and both still finish with HF's
// ids).
func TestBatcherDecodesWhileItEncodes(t *testing.T) {
	for _, serial := range []bool{false, true} {
		t.Run(fmt.Sprintf("serial=%v", serial), func(t *testing.T) { checkStepsWhileEncoding(t, serial) })
	}
}

// checkStepsWhileEncoding holds the encoder on a second call while a long
// one decodes and counts the long one's steps meanwhile.
func checkStepsWhileEncoding(t *testing.T, serial bool) {
	m := loadTiny(t, "git-tiny")
	ref := loadGenRef(t)
	var steps atomic.Int64
	var hold atomic.Bool
	inEncode := make(chan struct{}, 1)
	release := make(chan struct{})
	b, err := m.NewBatcher(BatcherOptions{Rows: 4, MaxText: 60, SerialEncode: serial,
		OnStep: func(int, time.Duration) {
			steps.Add(1)
			time.Sleep(time.Millisecond) // the long call takes 58 ms at least
		},
		OnEncode: func(int, time.Duration) {
			if hold.Load() {
				inEncode <- struct{}{}
				<-release // the encoder is "still encoding"
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var once sync.Once
	unhold := func() { once.Do(func() { hold.Store(false); close(release) }) }
	defer unhold() // before Close
	longDone := make(chan error, 1)
	go func() {
		_, err := b.Generate(context.Background(), refPixels(t, "cats.png"), []int{101}, GenerateOptions{MaxLength: 60, MinNewTokens: 58})
		longDone <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for b.BusyRows() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	hold.Store(true)
	c := ref.PerImage[2]
	shortDone := make(chan error, 1)
	go func() {
		got, err := b.Generate(context.Background(), refPixels(t, c.Image), []int{101}, GenerateOptions{MaxLength: ref.Settings.MaxLength})
		if err == nil {
			checkSeqs(t, c.Image, got, []Sequence{{IDs: c.Greedy.IDs}})
		}
		shortDone <- err
	}()
	select {
	case <-inEncode:
	case <-time.After(10 * time.Second):
		t.Fatal("the second call was never encoded")
	}
	// While the encoder holds the second call, the first keeps stepping
	// (possibly to its end); a batcher that encodes between steps would
	// take none.
	s0 := steps.Load()
	if serial {
		// Serial encoding: no step at all while the encoder holds the
		// call (20 ms is twenty steps of the overlapping batcher).
		time.Sleep(20 * time.Millisecond)
		if n := steps.Load() - s0; n != 0 {
			t.Errorf("serial encode: %d decode steps while the second call was encoding", n)
		}
		unhold()
		if err := <-shortDone; err != nil {
			t.Fatal(err)
		}
		if err := <-longDone; err != nil {
			t.Fatal(err)
		}
		return
	}
	var longErr error
	ended := false
	for !ended && steps.Load() < s0+5 && time.Now().Before(deadline.Add(10*time.Second)) {
		select {
		case longErr = <-longDone:
			ended = true
		default:
			time.Sleep(100 * time.Microsecond)
		}
	}
	if n := steps.Load() - s0; n < 1 || (!ended && n < 5) {
		t.Errorf("%d decode steps while the second call was encoding (the first ended: %v)", n, ended)
	}
	unhold()
	if err := <-shortDone; err != nil {
		t.Fatal(err)
	}
	if !ended {
		longErr = <-longDone
	}
	if longErr != nil {
		t.Fatal(longErr)
	}
}

// TestBatcherBoundsItsPrefixGraphs: with room for one compiled prefix
// graph, calls of every prompt length and encode batch size, alone and
// all at once, still give HF's ids, and no more than one graph is ever
// kept.
func TestBatcherBoundsItsPrefixGraphs(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	cases := batcherCases(t, m)
	var most atomic.Int64
	var b *Batcher
	b, err := m.NewBatcher(BatcherOptions{Rows: 6, MaxText: 24, MaxEncode: 4, MaxGraphs: 1,
		OnEncode: func(int, time.Duration) {
			if n := b.graphs.Load(); n > most.Load() {
				most.Store(n)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	generateConcurrently(t, b, cases, "")
	if n := most.Load(); n != 1 {
		t.Errorf("at most %d prefix graphs compiled at once, want 1", n)
	}
}
