package data

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"image"

	randv2 "math/rand/v2"
	"runtime"
	"sort"
	"sync"

	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/data/tokenizer"
)

// TrainPair is one training example: an image file and one of its captions.
// An image with five captions gives five pairs.
type TrainPair struct {
	Image   string
	Caption string
}

// LoaderOptions configures a Loader.
type LoaderOptions struct {
	BatchSize  int   // pairs per batch (required, > 0)
	Seed       int64 // shuffling and augmentation seed
	MaxTextLen int   // captions are truncated to this many tokens, [CLS] and [SEP] included (default 40)
	// PadMultiple rounds each batch's padded text length up to a multiple of
	// it (default 1: pad to the longest caption exactly), so that a trainer
	// compiles only a few graph shapes.
	PadMultiple int
	// Bucketing groups captions of similar length into the same batch: each
	// window of BucketWindow batches of the shuffled order is sorted by
	// length, cut into batches, and the batches are shuffled.
	Bucketing    bool
	BucketWindow int // batches per bucketing window (default 50)
	// NoShuffle keeps the pairs in their given order (for evaluation).
	NoShuffle bool
	// RandomResizedCrop replaces the processor's resize and centre crop by
	// torchvision's RandomResizedCrop (scale 0.08-1... here CropScale).
	RandomResizedCrop bool
	CropScale         [2]float64 // default {0.5, 1}
	HFlip             bool       // mirror images with probability 0.5
	Workers           int        // decoding goroutines (default 4)
	Prefetch          int        // batches prepared ahead of the consumer (default 2*Workers)
}

// Position is where an iteration stands: the next batch to produce is batch
// Batch of epoch Epoch. It is all that is needed to resume exactly.
type Position struct {
	Epoch int `json:"epoch"`
	Batch int `json:"batch"`
}

// IgnoreIndex is the label of a position that takes no part in the loss
// (padding), PyTorch's and HF's -100; graph.IgnoreIndex is the same value.
const IgnoreIndex = -100

// LoadedBatch is one preprocessed batch, ready for gitmodel.Batch.
type LoadedBatch struct {
	Pos  Position // the position this batch was produced from
	Next Position // the position to resume from after this batch
	B, T int      // examples (corrupt images removed) and padded text length
	// Pixels is (B, 3, H, W); IDs, AttentionMask and Labels are (B, T).
	Pixels        []float32
	IDs           []int
	AttentionMask []int
	Labels        []int
	Pairs         []int   // indices of the pairs in the batch
	Corrupt       []error // images that could not be read (skipped)
}

// Loader turns (image, caption) pairs into padded, preprocessed batches.
type Loader struct {
	pairs []TrainPair
	ids   [][]int
	proc  *imageproc.Processor
	tok   *tokenizer.Tokenizer
	opts  LoaderOptions
	h, w  int
}

// NewLoader tokenizes every caption and checks the options.
func NewLoader(pairs []TrainPair, tok *tokenizer.Tokenizer, proc *imageproc.Processor, opts LoaderOptions) (*Loader, error) {
	if len(pairs) == 0 {
		return nil, errors.New("loader: no examples")
	}
	if opts.BatchSize < 1 {
		return nil, fmt.Errorf("loader: batch size must be positive, got %d", opts.BatchSize)
	}
	if opts.MaxTextLen == 0 {
		opts.MaxTextLen = 40
	}
	if opts.MaxTextLen < 3 {
		return nil, fmt.Errorf("loader: max text length must be at least 3, got %d", opts.MaxTextLen)
	}
	if opts.PadMultiple < 1 {
		opts.PadMultiple = 1
	}
	if opts.BucketWindow < 1 {
		opts.BucketWindow = 50
	}
	if opts.Workers < 1 {
		opts.Workers = runtime.NumCPU() // as the config documents for 0
	}
	if opts.Prefetch < 1 {
		opts.Prefetch = 2 * opts.Workers
	}
	if opts.CropScale == [2]float64{} {
		opts.CropScale = [2]float64{0.5, 1}
	}
	l := &Loader{pairs: pairs, proc: proc, tok: tok, opts: opts}
	cfg := proc.Config()
	if !cfg.DoCenterCrop || cfg.CropHeight < 1 || cfg.CropWidth < 1 {
		return nil, errors.New("loader: the image processor must centre-crop to a fixed size")
	}
	l.h, l.w = cfg.CropHeight, cfg.CropWidth
	l.ids = make([][]int, len(pairs))
	for i, p := range pairs {
		l.ids[i] = tok.EncodeTruncated(p.Caption, opts.MaxTextLen)
	}
	return l, nil
}

// Len is the number of pairs.
func (l *Loader) Len() int { return len(l.pairs) }

// Pairs returns the pairs (not to be modified).
func (l *Loader) Pairs() []TrainPair { return l.pairs }

// BatchesPerEpoch is ceil(Len / BatchSize).
func (l *Loader) BatchesPerEpoch() int {
	return (len(l.pairs) + l.opts.BatchSize - 1) / l.opts.BatchSize
}

// ImageSize is the (height, width) of the preprocessed images.
func (l *Loader) ImageSize() (h, w int) { return l.h, l.w }

// Batches returns the batches of an epoch as pair indices: a pure function of
// (Seed, epoch).
func (l *Loader) Batches(epoch int) [][]int {
	n := len(l.pairs)
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	rng := randv2.New(randv2.NewPCG(uint64(l.opts.Seed), uint64(epoch)))
	if !l.opts.NoShuffle {
		rng.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	bs := l.opts.BatchSize
	if l.opts.Bucketing {
		win := bs * l.opts.BucketWindow
		for s := 0; s < n; s += win {
			e := min(s+win, n)
			w := order[s:e]
			sort.SliceStable(w, func(a, b int) bool { return len(l.ids[w[a]]) < len(l.ids[w[b]]) })
		}
	}
	var out [][]int
	for s := 0; s < n; s += bs {
		out = append(out, order[s:min(s+bs, n)])
	}
	if l.opts.Bucketing && !l.opts.NoShuffle {
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

// seed64 hashes integers into a seed.
func seed64(xs ...int64) int64 {
	h := fnv.New64a()
	var b [8]byte
	for _, x := range xs {
		binary.LittleEndian.PutUint64(b[:], uint64(x))
		h.Write(b[:])
	}
	return int64(h.Sum64() & (1<<63 - 1))
}

// Iter produces batches in order from a position, preparing them in
// background goroutines.
type Iter struct {
	*prefetcher
	perEpoch int // batches per epoch: that many all-corrupt batches in a row is fatal
}

type batchResult struct {
	b   *LoadedBatch
	err error
}

type batchJob struct {
	pos, next Position
	idx       []int
	out       chan batchResult
}

// Iterate starts producing batches from pos, forever (epoch after epoch),
// until ctx is cancelled or Close is called. Batches whose images are all
// corrupt are skipped.
func (l *Loader) Iterate(ctx context.Context, pos Position) *Iter {
	return &Iter{prefetcher: l.prefetch(ctx, pos, nil), perEpoch: l.BatchesPerEpoch()}
}

// prefetcher is what Iter and ShardIter share: a producer that walks the
// batch positions in order from pos, epoch after epoch, and workers that
// build the batches of the positions mine selects (nil: all) in the
// background; the others come back empty (B == 0, no Corrupt) with their
// positions. Results are delivered in position order.
type prefetcher struct {
	cancel context.CancelFunc
	order  chan chan batchResult
	wg     sync.WaitGroup
	ctx    context.Context
}

func (l *Loader) prefetch(ctx context.Context, pos Position, mine func(Position) bool) *prefetcher {
	ctx, cancel := context.WithCancel(ctx)
	p := &prefetcher{cancel: cancel, order: make(chan chan batchResult, l.opts.Prefetch), ctx: ctx}
	jobs := make(chan batchJob)
	p.wg.Add(1)
	go func() { // producer
		defer p.wg.Done()
		defer close(p.order)
		defer close(jobs)
		epoch, b := pos.Epoch, pos.Batch
		for {
			batches := l.Batches(epoch)
			for ; b < len(batches); b++ {
				next := Position{epoch, b + 1}
				if b+1 == len(batches) {
					next = Position{epoch + 1, 0}
				}
				j := batchJob{pos: Position{epoch, b}, next: next, idx: batches[b], out: make(chan batchResult, 1)}
				select {
				case p.order <- j.out:
				case <-ctx.Done():
					return
				}
				if mine != nil && !mine(j.pos) {
					j.out <- batchResult{b: &LoadedBatch{Pos: j.pos, Next: j.next}}
					continue
				}
				select {
				case jobs <- j:
				case <-ctx.Done():
					return
				}
			}
			epoch, b = epoch+1, 0
		}
	}()
	for range l.opts.Workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var s imageproc.Scratch
			for j := range jobs {
				if ctx.Err() != nil {
					j.out <- batchResult{err: ctx.Err()}
					continue
				}
				b := l.build(j.pos, j.idx, &s)
				b.Next = j.next
				j.out <- batchResult{b: b}
			}
		}()
	}
	return p
}

// next returns the next position's batch as built (B == 0 when every image
// was corrupt or the position is not mine), or ctx's error once cancelled.
func (p *prefetcher) next() (*LoadedBatch, error) {
	if err := p.ctx.Err(); err != nil {
		return nil, err
	}
	var ch chan batchResult
	var ok bool
	select {
	case ch, ok = <-p.order:
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
	if !ok {
		if err := p.ctx.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("loader: iteration ended")
	}
	select {
	case r := <-ch:
		return r.b, r.err
	case <-p.ctx.Done():
		return nil, p.ctx.Err()
	}
}

// Close stops the goroutines and waits for them.
func (p *prefetcher) Close() {
	p.cancel()
	p.wg.Wait()
}

// Next returns the next batch, or ctx's error once cancelled.
func (it *Iter) Next() (*LoadedBatch, error) {
	var corrupt []error
	skipped := 0
	for {
		b, err := it.next()
		if err != nil {
			return nil, err
		}
		if b.B == 0 { // every image corrupt: reported with the next batch
			corrupt = append(corrupt, b.Corrupt...)
			if skipped++; skipped >= it.perEpoch {
				// A whole epoch without one readable image (a wrong image
				// directory, say): fail instead of looping forever.
				return nil, fmt.Errorf("no readable image in a whole epoch (%d batches): %w", skipped, errors.Join(corrupt[:min(len(corrupt), 5)]...))
			}
			continue
		}
		b.Corrupt = append(corrupt, b.Corrupt...)
		return b, nil
	}
}

// Build prepares the batch of the given pair indices directly (no
// goroutines): used for evaluation and tests.
func (l *Loader) Build(idx []int) *LoadedBatch {
	var s imageproc.Scratch
	return l.build(Position{}, idx, &s)
}

func (l *Loader) build(pos Position, idx []int, s *imageproc.Scratch) *LoadedBatch {
	img := 3 * l.h * l.w
	b := &LoadedBatch{Pos: pos, Pixels: make([]float32, 0, len(idx)*img)}
	var keep []int
	for _, i := range idx {
		px := b.Pixels[len(b.Pixels) : len(b.Pixels)+img]
		if err := l.pixels(px, pos.Epoch, i, s); err != nil {
			b.Corrupt = append(b.Corrupt, err)
			continue
		}
		b.Pixels = b.Pixels[:len(b.Pixels)+img]
		keep = append(keep, i)
	}
	b.Pairs = keep
	b.B = len(keep)
	t := 0
	for _, i := range keep {
		t = max(t, len(l.ids[i]))
	}
	m := l.opts.PadMultiple
	t = (t + m - 1) / m * m
	b.T = t
	b.IDs = make([]int, b.B*t)
	b.AttentionMask = make([]int, b.B*t)
	b.Labels = make([]int, b.B*t)
	pad := l.tok.PAD()
	for r, i := range keep {
		ids := l.ids[i]
		for c := 0; c < t; c++ {
			k := r*t + c
			if c < len(ids) {
				b.IDs[k], b.AttentionMask[k], b.Labels[k] = ids[c], 1, ids[c]
			} else {
				b.IDs[k], b.AttentionMask[k], b.Labels[k] = pad, 0, IgnoreIndex
			}
		}
	}
	return b
}

func (l *Loader) pixels(dst []float32, epoch, i int, s *imageproc.Scratch) (err error) {
	path := l.pairs[i].Image
	defer func() {
		if r := recover(); r != nil { // a decoder bug must not kill a training run
			err = fmt.Errorf("%s: %v", path, r)
		}
	}()
	im, err := l.proc.Load(path)
	if err != nil {
		return err
	}
	if l.opts.RandomResizedCrop || l.opts.HFlip {
		rng := randv2.New(randv2.NewPCG(uint64(seed64(l.opts.Seed, int64(epoch))), uint64(i)))
		if l.opts.RandomResizedCrop {
			bnd := im.Bounds()
			var r image.Rectangle
			r, err = imageproc.RandomResizedCropRect(bnd.Dx(), bnd.Dy(), l.opts.CropScale, [2]float64{3.0 / 4, 4.0 / 3}, rng)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			im = imageproc.Crop(im, r)
		}
		if l.opts.HFlip {
			im = imageproc.MaybeHFlip(im, 0.5, rng)
		}
	}
	h, w, err := l.proc.PreprocessInto(dst, im, s)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if h != l.h || w != l.w {
		return fmt.Errorf("%s: preprocessed to %dx%d, want %dx%d", path, w, h, l.w, l.h)
	}
	return nil
}
