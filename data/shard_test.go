package data

import (
	"context"
	"slices"
	"testing"
)

// TestShardIterPartitionsTheStream runs two shards over the same positions
// as one Iter: together they build exactly its batches, with the same
// pixels and ids, and each sees every position.
func TestShardIterPartitionsTheStream(t *testing.T) {
	pairs, tok, proc := testSet(t)
	l, err := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 2, Seed: 3, HFlip: true, RandomResizedCrop: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	start := Position{Epoch: 1, Batch: 1}
	n := 2*l.BatchesPerEpoch() + 1
	want := collect(t, l, start, n)
	for rank := 0; rank < 2; rank++ {
		mine := func(p Position) bool { return p.Batch%2 == rank }
		it := l.IterateShard(context.Background(), start, mine)
		for i := 0; i < n; i++ {
			b, err := it.Next()
			if err != nil {
				t.Fatal(err)
			}
			w := want[i]
			if b.Pos != w.Pos || b.Next != w.Next {
				t.Fatalf("rank %d batch %d at %v -> %v, want %v -> %v", rank, i, b.Pos, b.Next, w.Pos, w.Next)
			}
			if !mine(b.Pos) {
				if b.B != 0 || b.Corrupt != nil {
					t.Fatalf("rank %d built batch %v of the other rank", rank, b.Pos)
				}
				continue
			}
			if b.B != w.B || b.T != w.T || !slices.Equal(b.Pixels, w.Pixels) || !slices.Equal(b.IDs, w.IDs) || !slices.Equal(b.Labels, w.Labels) {
				t.Fatalf("rank %d batch %v differs from the single iterator's", rank, b.Pos)
			}
		}
		it.Close()
	}
}
