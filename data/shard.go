package data

import (
	"context"
	"sync"

	"github.com/gitcap/gitcap/data/imageproc"
)

// ShardIter produces every batch position in order, like Iter, for one
// rank of a data-parallel job: only the batches the rank takes are built
// (in background goroutines); the others come back as empty batches
// (B == 0, no Corrupt) that carry their positions, so that every rank walks
// the same sequence. A batch of the rank whose images are all unreadable
// also comes back with B == 0 (Corrupt says why) rather than being skipped:
// skipping would shift this rank's batches against the others'.
type ShardIter struct {
	cancel context.CancelFunc
	order  chan chan batchResult
	wg     sync.WaitGroup
	ctx    context.Context
}

// IterateShard starts producing batches from pos, forever, building those
// for which mine(pos) is true. mine must be a pure function of the position.
func (l *Loader) IterateShard(ctx context.Context, pos Position, mine func(Position) bool) *ShardIter {
	ctx, cancel := context.WithCancel(ctx)
	it := &ShardIter{cancel: cancel, order: make(chan chan batchResult, l.opts.Prefetch), ctx: ctx}
	jobs := make(chan batchJob)
	it.wg.Add(1)
	go func() { // producer
		defer it.wg.Done()
		defer close(it.order)
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
				case it.order <- j.out:
				case <-ctx.Done():
					return
				}
				if !mine(j.pos) {
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
		it.wg.Add(1)
		go func() {
			defer it.wg.Done()
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
	return it
}

// Next returns the next batch (empty when it is another rank's), or ctx's
// error once cancelled.
func (it *ShardIter) Next() (*LoadedBatch, error) {
	var ch chan batchResult
	var ok bool
	select {
	case ch, ok = <-it.order:
	case <-it.ctx.Done():
		return nil, it.ctx.Err()
	}
	if !ok {
		return nil, it.ctx.Err()
	}
	select {
	case r := <-ch:
		return r.b, r.err
	case <-it.ctx.Done():
		return nil, it.ctx.Err()
	}
}

// Close stops the goroutines and waits for them.
func (it *ShardIter) Close() {
	it.cancel()
	it.wg.Wait()
}
