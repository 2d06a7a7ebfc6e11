package gitmodel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrBatcherClosed is returned by Batcher.Generate once Close was called.
var ErrBatcherClosed = errors.New("the batcher is closed")

// BatcherOptions configure continuous batching.
type BatcherOptions struct {
	Rows      int           // sequences decoded together in one step graph (default 16)
	MaxText   int           // largest max_length accepted: the KV cache holds image tokens + MaxText per row (default 40)
	Window    time.Duration // an idle batcher waits this long after a request for others to encode with it (default 2ms; negative: none)
	MaxEncode int           // most images encoded in one prefix graph (default 8)

	// Optional observers, called from the batcher's goroutine (keep them
	// cheap): OnStep after every decode step with the rows in use, OnEncode
	// after each prefix batch with its image count.
	OnStep   func(rows int)
	OnEncode func(images int)
}

func (o BatcherOptions) withDefaults() BatcherOptions {
	if o.Rows <= 0 {
		o.Rows = 16
	}
	if o.MaxText <= 0 {
		o.MaxText = 40
	}
	if o.Window == 0 {
		o.Window = 2 * time.Millisecond
	}
	if o.MaxEncode <= 0 {
		o.MaxEncode = 8
	}
	return o
}

// Batcher runs many generate calls at once over one KV cache of a fixed
// number of rows (continuous batching); each token is one decode step for
// every call, run by the smallest of its step graphs (1, 2, 4, ... rows)
// that covers the rows in use. Each call takes one row
// (greedy search), NumReturnSequences rows (sampling) or NumBeams rows
// (beam search, reordered within its own rows). A call joins the batch at a
// token boundary once its prefix (image encoding and prompt, encoded
// together with other calls that wait at the same time) has been computed
// and its keys/values copied into free rows, and it leaves as soon as it
// finishes or its context ends, freeing its rows for the next one. A long
// caption therefore never holds short ones back.
//
// The search itself (logits processors, sampling, beam bookkeeping) is the
// one Generator uses, run in the caller's goroutine: each row's result is
// the one Generate gives for that sample alone. Batcher is safe for
// concurrent use; the graphs belong to its own goroutine.
type Batcher struct {
	m    *Model
	o    BatcherOptions
	tmax int

	joins     chan *member
	quit      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	waiting   atomic.Int64
	busy      atomic.Int64
	zeroPix   []float32 // for validating options

	// Loop state, owned by the batcher's goroutine.
	kc, vc   [][]float32   // per layer, the KV cache of every row (Rows·tmax·hidden)
	steps    []*decodeStep // step graphs over the first 1, 2, 4, ..., Rows rows of the cache
	prefixes map[[2]int]*Forward
	free     []int // free row indices, highest first (the lowest is taken next)
	length   []int // filled cache positions per row
	members  []*member
	queue    []*member
	tmp      []float32 // reorder scratch
	tmpLen   []int
	pix      []float32 // prefix pixels
	ids      []int     // prefix ids
}

// member is one generate call inside the batcher.
type member struct {
	ctx    context.Context
	pixels []float32
	prompt []int
	k      int
	rows   []int     // its rows in the step graph
	logits []float32 // (k, vocab), written by the batcher before each reply
	tokens []int     // next tokens, written by the caller before a step message
	src    []int     // pending reorder (local row indices)
	order  bool      // src is pending
	in     chan bool // step (false) or leave (true)
	out    chan error
}

// NewBatcher compiles the decode-step graph and starts the batcher's
// goroutine; Close stops it.
func (m *Model) NewBatcher(opts BatcherOptions) (*Batcher, error) {
	o := opts.withDefaults()
	c := m.Config
	if o.MaxText > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("batcher: max text length %d exceeds the model's max_position_embeddings %d", o.MaxText, c.MaxPositionEmbeddings)
	}
	b := &Batcher{
		m: m, o: o, tmax: c.ImageTokens() + o.MaxText,
		joins: make(chan *member), quit: make(chan struct{}), done: make(chan struct{}),
		prefixes: map[[2]int]*Forward{},
		length:   make([]int, o.Rows),
		tmpLen:   make([]int, o.Rows),
		zeroPix:  make([]float32, c.Frames()*c.Vision.NumChannels*c.Vision.ImageSize*c.Vision.ImageSize),
	}
	per := b.tmax * c.HiddenSize
	for range c.NumHiddenLayers {
		b.kc = append(b.kc, make([]float32, o.Rows*per))
		b.vc = append(b.vc, make([]float32, o.Rows*per))
	}
	// A step runs the smallest graph that covers the highest busy row:
	// a lone caption does not pay for 16 rows (and its single-row products
	// use gemv).
	for n := 1; ; n *= 2 {
		n = min(n, o.Rows)
		st, err := m.newDecodeStepOn(n, b.tmax, b.kc, b.vc)
		if err != nil {
			for _, s := range b.steps {
				s.vm.Close()
			}
			return nil, err
		}
		b.steps = append(b.steps, st)
		if n == o.Rows {
			break
		}
	}
	b.tmp = make([]float32, o.Rows*per)
	for r := o.Rows - 1; r >= 0; r-- {
		b.free = append(b.free, r)
	}
	go b.loop()
	return b, nil
}

// Rows is the number of decode rows; MaxText the largest max_length.
func (b *Batcher) Rows() int    { return b.o.Rows }
func (b *Batcher) MaxText() int { return b.o.MaxText }

// Waiting is the number of calls waiting to join the batch.
func (b *Batcher) Waiting() int { return int(b.waiting.Load()) }

// BusyRows is the number of rows in use.
func (b *Batcher) BusyRows() int { return int(b.busy.Load()) }

// rowsFor is how many rows a call with these (defaulted) options takes.
func rowsFor(o GenerateOptions) int {
	switch {
	case o.NumBeams > 1:
		return o.NumBeams
	case o.DoSample:
		return o.NumReturnSequences
	}
	return 1
}

// Check reports whether Generate would accept prompt and opts: the errors
// Generator.Generate gives, plus this batcher's length and row limits.
func (b *Batcher) Check(prompt []int, opts GenerateOptions) error {
	run, err := b.m.newSearch(b.zeroPix, 1, prompt, opts)
	if err != nil {
		return err
	}
	if run.maxLen > b.o.MaxText {
		return fmt.Errorf("generate: max_length %d exceeds this batcher's limit of %d", run.maxLen, b.o.MaxText)
	}
	if k := rowsFor(run.o); k > b.o.Rows {
		return fmt.Errorf("generate: %d sequences (num_beams or num_return_sequences) exceed the batch's %d rows", k, b.o.Rows)
	}
	if opts.NoCache {
		return errors.New("generate: the batcher always uses the KV cache")
	}
	return nil
}

// Generate generates for one sample (pixels (Frames, C, H, W),
// preprocessed) and returns its NumReturnSequences sequences, exactly as
// Generator.Generate does for a batch of that sample alone (SampleOffset
// selects its sampling stream). It blocks until done or ctx ends; a call
// whose context ends leaves the batch at the next token boundary.
func (b *Batcher) Generate(ctx context.Context, pixels []float32, prompt []int, opts GenerateOptions) ([]Sequence, error) {
	if err := b.Check(prompt, opts); err != nil {
		return nil, err
	}
	run, err := b.m.newSearch(pixels, 1, prompt, opts)
	if err != nil {
		return nil, err
	}
	run.s = &batchStepper{b: b, ctx: ctx}
	seqs, err := run.run(ctx, pixels, 1)
	if err != nil {
		return nil, err
	}
	return seqs[0], nil
}

// Close stops accepting calls, waits for the running ones to finish and
// releases the graphs. Calls still waiting to join get ErrBatcherClosed.
func (b *Batcher) Close() {
	b.closeOnce.Do(func() {
		close(b.quit)
		<-b.done
		for _, st := range b.steps {
			st.vm.Close()
		}
		for _, f := range b.prefixes {
			f.Close()
		}
	})
}

// batchStepper is the stepper a search runs with inside the batcher.
type batchStepper struct {
	b   *Batcher
	ctx context.Context
	m   *member
}

func (s *batchStepper) start(pixels []float32, batch int, prompt []int, expand int) ([]float32, error) {
	if batch != 1 {
		return nil, fmt.Errorf("batcher: one sample per call, got %d", batch)
	}
	m := &member{
		ctx: s.ctx, pixels: pixels, prompt: prompt, k: expand,
		logits: make([]float32, expand*s.b.m.Config.VocabSize),
		tokens: make([]int, expand), src: make([]int, expand),
		in: make(chan bool, 1), out: make(chan error, 1),
	}
	s.b.waiting.Add(1)
	defer s.b.waiting.Add(-1)
	select {
	case s.b.joins <- m:
	case <-s.ctx.Done():
		return nil, s.ctx.Err()
	case <-s.b.quit:
		return nil, ErrBatcherClosed
	}
	// Once received, the batcher always answers: admitted (nil), or the
	// reason it was not.
	if err := <-m.out; err != nil {
		return nil, err
	}
	s.m = m
	return m.logits, nil
}

func (s *batchStepper) step(tokens []int) ([]float32, error) {
	copy(s.m.tokens, tokens)
	s.m.in <- false
	err := <-s.m.out
	return s.m.logits, err
}

func (s *batchStepper) reorder(src []int) {
	copy(s.m.src, src)
	s.m.order = true
}

func (s *batchStepper) close() {
	if s.m != nil {
		s.m.in <- true
		s.m = nil
	}
}

// loop is the batcher's goroutine: at every token boundary it admits
// waiting calls into free rows, then runs one decode step for every member.
func (b *Batcher) loop() {
	defer close(b.done)
	quitting := false
	for {
		if len(b.members) == 0 && len(b.queue) == 0 {
			if quitting {
				return
			}
			select {
			case m := <-b.joins:
				b.queue = append(b.queue, m)
				b.gather()
			case <-b.quit:
				return
			}
		}
	drain:
		for {
			select {
			case m := <-b.joins:
				b.queue = append(b.queue, m)
			default:
				break drain
			}
		}
		if !quitting {
			select {
			case <-b.quit:
				quitting = true
				for _, m := range b.queue {
					m.out <- ErrBatcherClosed
				}
				b.queue = b.queue[:0]
			default:
			}
		}
		b.admit()
		if len(b.members) > 0 {
			b.decode()
		}
	}
}

// gather waits up to the window for more calls to encode with the first.
func (b *Batcher) gather() {
	if b.o.Window < 0 {
		return
	}
	t := time.NewTimer(b.o.Window)
	defer t.Stop()
	for len(b.queue) < b.o.Rows {
		select {
		case m := <-b.joins:
			b.queue = append(b.queue, m)
		case <-t.C:
			return
		case <-b.quit:
			return
		}
	}
}

// admit moves waiting calls, in arrival order, into free rows: their
// prefixes are computed (grouped by prompt length, several images per
// graph) and copied into their rows.
func (b *Batcher) admit() {
	n := 0
	for _, m := range b.queue {
		if err := m.ctx.Err(); err != nil {
			m.out <- err
			continue
		}
		b.queue[n] = m
		n++
	}
	b.queue = b.queue[:n]
	taken := 0
	for taken < len(b.queue) && b.queue[taken].k <= len(b.free) {
		m := b.queue[taken]
		m.rows = append(m.rows[:0], b.free[len(b.free)-m.k:]...)
		slices.Sort(m.rows)
		b.free = b.free[:len(b.free)-m.k]
		taken++
	}
	if taken == 0 {
		return
	}
	joining := append([]*member(nil), b.queue[:taken]...)
	b.queue = append(b.queue[:0], b.queue[taken:]...)
	// Group by prompt length (stable: arrival order within a group).
	slices.SortStableFunc(joining, func(x, y *member) int { return len(x.prompt) - len(y.prompt) })
	for len(joining) > 0 {
		t := len(joining[0].prompt)
		same := 1
		for same < len(joining) && len(joining[same].prompt) == t {
			same++
		}
		group := joining[:same]
		joining = joining[same:]
		for len(group) > 0 {
			n := 1
			for n*2 <= len(group) && n*2 <= b.o.MaxEncode {
				n *= 2
			}
			b.encode(group[:n])
			group = group[n:]
		}
	}
}

// encode runs the prefix of len(ms) calls with the same prompt length in
// one graph, fills their rows and answers them.
func (b *Batcher) encode(ms []*member) {
	c := b.m.Config
	t := len(ms[0].prompt)
	fail := func(err error) {
		for _, m := range ms {
			b.release(m.rows)
			m.out <- err
		}
	}
	key := [2]int{len(ms), t}
	f, ok := b.prefixes[key]
	if !ok {
		var err error
		if f, err = b.m.NewForward(len(ms), t, ForwardOptions{Last: true}); err != nil {
			fail(err)
			return
		}
		b.prefixes[key] = f
	}
	img := len(b.zeroPix)
	b.pix = b.pix[:0]
	b.ids = b.ids[:0]
	for _, m := range ms {
		b.pix = append(b.pix, m.pixels...)
		b.ids = append(b.ids, m.prompt...)
	}
	if len(b.pix) != len(ms)*img {
		fail(fmt.Errorf("batcher: pixel values of the wrong size"))
		return
	}
	if err := f.Run(Batch{Pixels: b.pix, IDs: b.ids}); err != nil {
		fail(err)
		return
	}
	d, n, tmax, vocab := c.HiddenSize, f.N, b.tmax, c.VocabSize
	last := Values(f.LastLogits)
	for l := range b.kc {
		k, v := Values(f.Decoder.K[l]), Values(f.Decoder.V[l])
		for i, m := range ms {
			src := i * n * d
			for _, r := range m.rows {
				copy(b.kc[l][r*tmax*d:r*tmax*d+n*d], k[src:src+n*d])
				copy(b.vc[l][r*tmax*d:r*tmax*d+n*d], v[src:src+n*d])
				// Masked slots still multiply a probability of 0 by
				// their value: clear what earlier members left there.
				clear(b.kc[l][r*tmax*d+n*d : (r+1)*tmax*d])
				clear(b.vc[l][r*tmax*d+n*d : (r+1)*tmax*d])
			}
		}
	}
	for i, m := range ms {
		for j, r := range m.rows {
			b.length[r] = n
			copy(m.logits[j*vocab:(j+1)*vocab], last[i*vocab:(i+1)*vocab])
		}
		b.members = append(b.members, m)
		b.busy.Add(int64(m.k))
		m.out <- nil
	}
	if b.o.OnEncode != nil {
		b.o.OnEncode(len(ms))
	}
}

// decode waits for every member's next message, drops the ones that leave,
// and runs one decode step for the others. It does not allocate.
func (b *Batcher) decode() {
	n := 0
	for _, m := range b.members {
		if leave := <-m.in; leave {
			b.release(m.rows)
			b.busy.Add(-int64(m.k))
			continue
		}
		b.members[n] = m
		n++
	}
	clear(b.members[n:])
	b.members = b.members[:n]
	if n == 0 {
		return
	}
	c := b.m.Config
	d, tmax := c.HiddenSize, b.tmax
	per := tmax * d
	hi := 0
	for _, m := range b.members {
		if m.order {
			m.order = false
			b.reorder(m, per)
		}
		hi = max(hi, m.rows[len(m.rows)-1]+1)
	}
	st := b.steps[len(b.steps)-1]
	for _, s := range b.steps {
		if s.rows >= hi {
			st = s
			break
		}
	}
	// Free rows (length 0) write into and attend to their own first slot;
	// their results are not kept.
	for r := range st.ids {
		st.ids[r], st.pos[r], st.at[r] = c.PadTokenID, 0, 0
	}
	busy := 0
	for _, m := range b.members {
		for j, r := range m.rows {
			st.ids[r] = m.tokens[j]
			st.pos[r] = b.length[r] - c.ImageTokens()
			st.at[r] = b.length[r]
		}
		busy += len(m.rows)
	}
	st.vm.Reset()
	if err := st.vm.RunAll(); err != nil {
		for _, m := range b.members {
			m.out <- err
		}
		return
	}
	vocab := c.VocabSize
	logits := Values(st.logits)
	for _, m := range b.members {
		for j, r := range m.rows {
			b.length[r]++
			copy(m.logits[j*vocab:(j+1)*vocab], logits[r*vocab:(r+1)*vocab])
		}
		m.out <- nil
	}
	if b.o.OnStep != nil {
		b.o.OnStep(busy)
	}
}

// release returns rows to the free list, keeping it highest first.
func (b *Batcher) release(rows []int) {
	b.free = append(b.free, rows...)
	slices.SortFunc(b.free, func(x, y int) int { return y - x })
}

// reorder makes each of m's rows continue the history of the row its src
// names (beam search), within m's own rows.
func (b *Batcher) reorder(m *member, per int) {
	for _, cache := range [2][][]float32{b.kc, b.vc} {
		for _, buf := range cache {
			for j, r := range m.rows {
				copy(b.tmp[j*per:(j+1)*per], buf[r*per:(r+1)*per])
			}
			for j, r := range m.rows {
				if from := m.src[j]; from != j {
					copy(buf[r*per:(r+1)*per], b.tmp[from*per:(from+1)*per])
				}
			}
		}
	}
	for j, r := range m.rows {
		b.tmpLen[j] = b.length[r]
	}
	for j, r := range m.rows {
		b.length[r] = b.tmpLen[m.src[j]]
	}
}
