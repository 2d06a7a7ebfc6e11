package gitmodel

import (
	"context"
	"errors"
	"fmt"
	"math"
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
	MaxGraphs int           // prefix graphs kept compiled, one per (images, prompt length), least recently used evicted (default 4)
	// SerialEncode turns off the overlap of encoding with decoding: the
	// decode goroutine waits at the token boundary until the encoder has
	// sent back every call it handed over, so no step runs while images
	// are encoded (as before the encoder goroutine). Both modes give the
	// same captions; it exists to compare their throughput (on few cores
	// the two goroutines compete for the same cores).
	SerialEncode bool

	// Optional observers (keep them cheap): OnStep after every decode step
	// with the rows in use and the step's duration, called from the decode
	// goroutine; OnEncode after each prefix batch with its image count and
	// duration, called from the encoder goroutine.
	OnStep   func(rows int, d time.Duration)
	OnEncode func(images int, d time.Duration)
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
	if o.MaxGraphs <= 0 {
		o.MaxGraphs = 4
	}
	return o
}

// Batcher runs many generate calls at once over one KV cache of a fixed
// number of rows (continuous batching); each token is one decode step for
// every call, run by the smallest of its step graphs (1, 2, 4, ... rows)
// that covers the rows in use. Each call takes one row
// (greedy search), NumReturnSequences rows (sampling) or NumBeams rows
// (beam search, reordered within its own rows).
//
// Two goroutines share the work. The decode goroutine owns the KV cache:
// at every token boundary it gives waiting calls free rows, in arrival
// order, and runs one decode step for every call that has joined. The
// encoder goroutine computes the prefixes of the calls that got rows (image
// encoding and prompt, several calls that wait at the same time in one
// graph) while decoding goes on; an encoded call joins at the next token
// boundary, when the decode goroutine copies its keys/values into its rows.
// A call leaves as soon as it finishes or its context ends, freeing its
// rows for the next one. A long caption therefore never holds short ones
// back, and a new image's encoding never stops the others' tokens.
//
// The search itself (logits processors, sampling, beam bookkeeping) is the
// one Generator uses, run in the caller's goroutine: each row's result is
// the one Generate gives for that sample alone. Batcher is safe for
// concurrent use; the graphs belong to its goroutines.
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
	graphs    atomic.Int64 // prefix graphs compiled and not evicted
	zeroPix   []float32    // for validating options

	// Between the goroutines: the decode goroutine appends calls that got
	// rows to pending (under mu) and wakes the encoder; the encoder sends
	// each call back on encoded, its prefix in its stage (or its err set).
	// At most Rows calls hold rows, so encoded never blocks.
	mu      sync.Mutex
	pending []*member
	wake    chan struct{}
	encoded chan *member
	stop    chan struct{} // closed when the decode goroutine has finished
	encDone chan struct{}

	// Decode goroutine state.
	kc, vc   [][]float32   // per layer, the KV cache of every row (Rows·tmax·hidden)
	steps    []*decodeStep // step graphs over the first 1, 2, 4, ..., Rows rows of the cache
	free     []int         // free row indices, highest first (the lowest is taken next)
	live     []bool        // the row belongs to a joined call
	length   []int         // filled cache positions per row
	members  []*member
	queue    []*member // waiting for rows
	encoding int       // calls given rows and not yet back from the encoder
	tmp      []float32 // reorder scratch
	tmpLen   []int

	// Encoder goroutine state.
	prefixes map[[2]int]*prefixGraph
	uses     uint64
	stage    [][]float32 // per row, the prefix keys/values of the call whose first row it is
	pix      []float32   // prefix pixels
	ids      []int       // prefix ids
}

// prefixGraph is one compiled prefix graph and when it was last used.
type prefixGraph struct {
	f    *Forward
	used uint64
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

	// Set by the encoder: the prefix length and its keys/values (per
	// layer, n·hidden keys then n·hidden values), or why it failed.
	n     int
	stage []float32
	err   error
}

// NewBatcher compiles the decode-step graphs and starts the batcher's
// goroutines; Close stops them.
func (m *Model) NewBatcher(opts BatcherOptions) (*Batcher, error) {
	o := opts.withDefaults()
	c := m.Config
	if o.MaxText > c.MaxPositionEmbeddings {
		return nil, fmt.Errorf("batcher: max text length %d exceeds the model's max_position_embeddings %d", o.MaxText, c.MaxPositionEmbeddings)
	}
	b := &Batcher{
		m: m, o: o, tmax: c.ImageTokens() + o.MaxText,
		joins: make(chan *member), quit: make(chan struct{}), done: make(chan struct{}),
		wake: make(chan struct{}, 1), encoded: make(chan *member, o.Rows),
		stop: make(chan struct{}), encDone: make(chan struct{}),
		prefixes: map[[2]int]*prefixGraph{},
		live:     make([]bool, o.Rows),
		length:   make([]int, o.Rows),
		tmpLen:   make([]int, o.Rows),
		stage:    make([][]float32, o.Rows),
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
	go b.encodeLoop()
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

// Close stops accepting calls, waits for the running ones (those given
// rows) to finish and releases the graphs. Calls still waiting for rows
// get ErrBatcherClosed.
func (b *Batcher) Close() {
	b.closeOnce.Do(func() {
		close(b.quit)
		<-b.done
		for _, st := range b.steps {
			st.vm.Close()
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

// loop is the decode goroutine: at every token boundary it takes in
// waiting calls, gives them free rows (the encoder computes their
// prefixes), joins the encoded ones, then runs one decode step for every
// member. With nothing to decode it blocks until something happens.
func (b *Batcher) loop() {
	defer func() {
		close(b.stop)
		<-b.encDone
		close(b.done)
	}()
	quit := b.quit // nil once quitting
	for {
		if quit == nil && len(b.members) == 0 && b.encoding == 0 && len(b.queue) == 0 {
			return
		}
		if len(b.members) == 0 {
			if b.encoding == 0 && len(b.queue) == 0 {
				// Idle: wait for a call, then a window for others to
				// encode with it.
				select {
				case m := <-b.joins:
					b.queue = append(b.queue, m)
					b.gather()
				case <-quit:
					quit = nil
					continue
				}
			} else if !b.admit() {
				// Nothing admitted and nothing to decode: wait for the
				// encoder, a new call or Close.
				select {
				case m := <-b.encoded:
					b.join(m)
				case m := <-b.joins:
					b.queue = append(b.queue, m)
				case <-quit:
					quit = nil
					b.closeQueue()
				}
				continue
			}
		}
	drain:
		for {
			select {
			case m := <-b.joins:
				b.queue = append(b.queue, m)
			case m := <-b.encoded:
				b.join(m)
			default:
				break drain
			}
		}
		if quit != nil {
			select {
			case <-quit:
				quit = nil
				b.closeQueue()
			default:
			}
		}
		b.admit()
		if b.o.SerialEncode {
			// No step while the encoder runs: wait for every call handed
			// over (the encoder answers each, failed or not).
			for b.encoding > 0 {
				b.join(<-b.encoded)
			}
		}
		if len(b.members) > 0 {
			b.decode()
		}
	}
}

// closeQueue answers the calls that have no rows yet with ErrBatcherClosed.
func (b *Batcher) closeQueue() {
	for _, m := range b.queue {
		m.out <- ErrBatcherClosed
	}
	clear(b.queue)
	b.queue = b.queue[:0]
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

// admit gives waiting calls, in arrival order, free rows and hands them to
// the encoder; calls whose context ended are answered. It reports whether
// it handed any over.
func (b *Batcher) admit() bool {
	n := 0
	for _, m := range b.queue {
		if err := m.ctx.Err(); err != nil {
			m.out <- err
			continue
		}
		b.queue[n] = m
		n++
	}
	clear(b.queue[n:])
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
		return false
	}
	b.mu.Lock()
	b.pending = append(b.pending, b.queue[:taken]...)
	b.mu.Unlock()
	b.encoding += taken
	n = copy(b.queue, b.queue[taken:])
	clear(b.queue[n:])
	b.queue = b.queue[:n]
	select {
	case b.wake <- struct{}{}:
	default: // already woken: it takes everything pending
	}
	return true
}

// join copies an encoded call's prefix into its rows and makes it a member
// (or answers its failure).
func (b *Batcher) join(m *member) {
	b.encoding--
	if m.err == nil {
		m.err = m.ctx.Err()
	}
	if m.err != nil {
		b.release(m.rows)
		m.stage = nil
		m.out <- m.err
		return
	}
	d, n, tmax := b.m.Config.HiddenSize, m.n, b.tmax
	for l := range b.kc {
		k := m.stage[2*l*n*d : (2*l+1)*n*d]
		v := m.stage[(2*l+1)*n*d : (2*l+2)*n*d]
		for _, r := range m.rows {
			copy(b.kc[l][r*tmax*d:r*tmax*d+n*d], k)
			copy(b.vc[l][r*tmax*d:r*tmax*d+n*d], v)
			// Masked slots still multiply a probability of 0 by
			// their value: clear what earlier members left there.
			clear(b.kc[l][r*tmax*d+n*d : (r+1)*tmax*d])
			clear(b.vc[l][r*tmax*d+n*d : (r+1)*tmax*d])
		}
	}
	m.stage = nil
	for _, r := range m.rows {
		b.length[r] = n
		b.live[r] = true
	}
	b.members = append(b.members, m)
	b.busy.Add(int64(m.k))
	m.out <- nil
}

// encodeLoop is the encoder goroutine: it computes the prefixes of the
// calls the decode goroutine gave rows, grouped by prompt length, several
// images per graph, and sends each call back.
func (b *Batcher) encodeLoop() {
	defer func() {
		for _, p := range b.prefixes {
			p.f.Close()
		}
		clear(b.prefixes)
		b.graphs.Store(0)
		close(b.encDone)
	}()
	for {
		select {
		case <-b.wake:
		case <-b.stop:
			return
		}
		b.mu.Lock()
		joining := b.pending
		b.pending = nil
		b.mu.Unlock()
		// Calls whose context ended are not encoded.
		n := 0
		for _, m := range joining {
			if m.err = m.ctx.Err(); m.err != nil {
				b.encoded <- m
				continue
			}
			joining[n] = m
			n++
		}
		joining = joining[:n]
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
}

// graphFor returns the compiled prefix graph for images × t prompt
// tokens, compiling it (and evicting the least recently used one beyond
// MaxGraphs) when needed.
func (b *Batcher) graphFor(images, t int) (*Forward, error) {
	b.uses++
	key := [2]int{images, t}
	if p, ok := b.prefixes[key]; ok {
		p.used = b.uses
		return p.f, nil
	}
	for len(b.prefixes) >= b.o.MaxGraphs {
		var old [2]int
		oldest := uint64(math.MaxUint64)
		for k, p := range b.prefixes {
			if p.used < oldest {
				old, oldest = k, p.used
			}
		}
		b.prefixes[old].f.Close()
		delete(b.prefixes, old)
		b.graphs.Add(-1)
	}
	f, err := b.m.NewForward(images, t, ForwardOptions{Last: true})
	if err != nil {
		return nil, err
	}
	b.prefixes[key] = &prefixGraph{f: f, used: b.uses}
	b.graphs.Add(1)
	return f, nil
}

// encode runs the prefix of len(ms) calls with the same prompt length in
// one graph, copies each call's keys/values into its stage and its first
// logits into its rows, and sends the calls back.
func (b *Batcher) encode(ms []*member) {
	start := time.Now()
	c := b.m.Config
	fail := func(err error) {
		for _, m := range ms {
			m.err = err
			b.encoded <- m
		}
	}
	f, err := b.graphFor(len(ms), len(ms[0].prompt))
	if err != nil {
		fail(err)
		return
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
	d, n, vocab := c.HiddenSize, f.N, c.VocabSize
	last := Values(f.LastLogits)
	for i, m := range ms {
		// A row is reserved for its call until the call leaves, so its
		// stage is this call's alone until the decode goroutine copied it.
		r := m.rows[0]
		if need := 2 * len(b.kc) * n * d; cap(b.stage[r]) < need {
			b.stage[r] = make([]float32, need)
		}
		m.n, m.stage = n, b.stage[r][:2*len(b.kc)*n*d]
		src := i * n * d
		for l := range b.kc {
			copy(m.stage[2*l*n*d:(2*l+1)*n*d], Values(f.Decoder.K[l])[src:src+n*d])
			copy(m.stage[(2*l+1)*n*d:(2*l+2)*n*d], Values(f.Decoder.V[l])[src:src+n*d])
		}
		for j := range m.k {
			copy(m.logits[j*vocab:(j+1)*vocab], last[i*vocab:(i+1)*vocab])
		}
	}
	if b.o.OnEncode != nil {
		b.o.OnEncode(len(ms), time.Since(start))
	}
	for _, m := range ms {
		b.encoded <- m
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
	start := time.Now()
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
		b.o.OnStep(busy, time.Since(start))
	}
}

// release returns rows to the free list, keeping it highest first.
func (b *Batcher) release(rows []int) {
	for _, r := range rows {
		b.live[r] = false
	}
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
