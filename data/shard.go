package data

import "context"

// ShardIter produces every batch position in order, like Iter, for one
// rank of a data-parallel job: only the batches the rank takes are built
// (in background goroutines); the others come back as empty batches
// (B == 0, no Corrupt) that carry their positions, so that every rank walks
// the same sequence. A batch of the rank whose images are all unreadable
// also comes back with B == 0 (Corrupt says why) rather than being skipped:
// skipping would shift this rank's batches against the others'.
type ShardIter struct{ *prefetcher }

// IterateShard starts producing batches from pos, forever, building those
// for which mine(pos) is true. mine must be a pure function of the position.
func (l *Loader) IterateShard(ctx context.Context, pos Position, mine func(Position) bool) *ShardIter {
	return &ShardIter{l.prefetch(ctx, pos, mine)}
}

// Next returns the next batch (empty when it is another rank's), or ctx's
// error once cancelled.
func (it *ShardIter) Next() (*LoadedBatch, error) { return it.next() }
