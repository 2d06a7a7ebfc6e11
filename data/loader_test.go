package data

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gitcap/gitcap/data/imageproc"
	"github.com/gitcap/gitcap/data/synth"
	"github.com/gitcap/gitcap/data/tokenizer"
)

// testSet writes a small synthetic set and returns its train pairs, a
// tokenizer and a processor for 32 px images.
func testSet(t *testing.T) ([]TrainPair, *tokenizer.Tokenizer, *imageproc.Processor) {
	t.Helper()
	dir := t.TempDir()
	if _, err := synth.Write(context.Background(), dir, synth.Options{Seed: 3, Train: 12, Val: 0, Test: 0, ImageSize: 32}); err != nil {
		t.Fatal(err)
	}
	pairs, err := LoadCOCOPairs(synth.AnnotationsPath(dir, synth.Train), synth.ImageDir(dir, synth.Train))
	if err != nil {
		t.Fatal(err)
	}
	caps := make([]string, len(pairs))
	for i, p := range pairs {
		caps[i] = p.Caption
	}
	tokDir := filepath.Join(dir, "tok")
	if err := tokenizer.WriteFiles(tokDir, tokenizer.BuildVocab(caps, 1)); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(tokDir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := imageproc.DefaultConfig()
	cfg.Size = imageproc.Size{ShortestEdge: 32}
	cfg.CropHeight, cfg.CropWidth = 32, 32
	proc, err := imageproc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pairs, tok, proc
}

func collect(t *testing.T, l *Loader, pos Position, n int) []*LoadedBatch {
	t.Helper()
	it := l.Iterate(context.Background(), pos)
	defer it.Close()
	var out []*LoadedBatch
	for range n {
		b, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestLoaderDeterministicAndResumable(t *testing.T) {
	pairs, tok, proc := testSet(t)
	opts := LoaderOptions{BatchSize: 5, Seed: 9, Workers: 3, RandomResizedCrop: true}
	l, err := NewLoader(pairs, tok, proc, opts)
	if err != nil {
		t.Fatal(err)
	}
	per := l.BatchesPerEpoch()
	n := 2*per + 3 // crosses two epoch boundaries
	a := collect(t, l, Position{}, n)
	l2, _ := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 5, Seed: 9, Workers: 1, RandomResizedCrop: true})
	b := collect(t, l2, Position{}, n)
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Fatalf("batch %d differs between runs with 3 and 1 workers", i)
		}
	}
	// Every epoch is a permutation of all pairs, and epochs differ.
	seen := map[int]int{}
	for _, x := range a[:per] {
		for _, i := range x.Pairs {
			seen[i]++
		}
	}
	if len(seen) != len(pairs) {
		t.Errorf("epoch 0 covers %d of %d pairs", len(seen), len(pairs))
	}
	if reflect.DeepEqual(a[0].Pairs, a[per].Pairs) {
		t.Error("epoch 1 has the same order as epoch 0")
	}
	// Resume from the position after batch k.
	k := per + 1
	r := collect(t, l, a[k].Next, n-k-1)
	for i := range r {
		if !reflect.DeepEqual(r[i], a[k+1+i]) {
			t.Fatalf("resumed batch %d differs", i)
		}
	}
	// Another seed gives another order.
	l3, _ := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 5, Seed: 10})
	if reflect.DeepEqual(l3.Batches(0), l.Batches(0)) {
		t.Error("seeds 9 and 10 give the same order")
	}
}

func TestLoaderPaddingAndLabels(t *testing.T) {
	pairs, tok, proc := testSet(t)
	l, err := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 4, MaxTextLen: 8, PadMultiple: 4, NoShuffle: true})
	if err != nil {
		t.Fatal(err)
	}
	b := l.Build([]int{0, 1, 2, 3})
	if b.B != 4 || b.T%4 != 0 || b.T > 8 || len(b.Pixels) != 4*3*32*32 {
		t.Fatalf("B %d T %d pixels %d", b.B, b.T, len(b.Pixels))
	}
	longest := 0
	for r := range 4 {
		want := tok.EncodeTruncated(pairs[r].Caption, 8)
		longest = max(longest, len(want))
		if want[0] != tok.CLS() || want[len(want)-1] != tok.SEP() {
			t.Fatalf("caption %d not [CLS] ... [SEP]: %v", r, want)
		}
		for c := range b.T {
			id, m, lab := b.IDs[r*b.T+c], b.AttentionMask[r*b.T+c], b.Labels[r*b.T+c]
			if c < len(want) {
				if id != want[c] || m != 1 || lab != want[c] {
					t.Fatalf("row %d col %d: id %d mask %d label %d, want %d 1 %d", r, c, id, m, lab, want[c], want[c])
				}
			} else if id != tok.PAD() || m != 0 || lab != IgnoreIndex {
				t.Fatalf("row %d col %d: padding id %d mask %d label %d", r, c, id, m, lab)
			}
		}
	}
	if b.T != (longest+3)/4*4 {
		t.Errorf("T %d for longest caption %d", b.T, longest)
	}
}

func TestLoaderBucketing(t *testing.T) {
	pairs, tok, proc := testSet(t)
	spread := func(l *Loader) int {
		total := 0
		for _, bt := range l.Batches(0) {
			lo, hi := 1<<30, 0
			for _, i := range bt {
				lo, hi = min(lo, len(l.ids[i])), max(hi, len(l.ids[i]))
			}
			total += hi - lo
		}
		return total
	}
	plain, _ := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 4, Seed: 1})
	buck, _ := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 4, Seed: 1, Bucketing: true})
	if s, p := spread(buck), spread(plain); s >= p {
		t.Errorf("bucketed length spread %d, not below unbucketed %d", s, p)
	}
	seen := map[int]bool{}
	for _, bt := range buck.Batches(2) {
		for _, i := range bt {
			seen[i] = true
		}
	}
	if len(seen) != len(pairs) {
		t.Errorf("bucketed epoch covers %d of %d pairs", len(seen), len(pairs))
	}
	if !reflect.DeepEqual(buck.Batches(2), buck.Batches(2)) {
		t.Error("bucketed order not deterministic")
	}
}

func TestLoaderSkipsCorruptImages(t *testing.T) {
	pairs, tok, proc := testSet(t)
	bad := filepath.Join(t.TempDir(), "bad.png")
	if err := os.WriteFile(bad, []byte("not a png"), 0o644); err != nil {
		t.Fatal(err)
	}
	pairs = append(pairs[:4:4], TrainPair{Image: bad, Caption: "a red circle"}, TrainPair{Image: "/nonexistent.png", Caption: "x"})
	l, err := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 3, NoShuffle: true, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	bs := collect(t, l, Position{}, 2)
	if bs[0].B != 3 || len(bs[0].Corrupt) != 0 {
		t.Errorf("batch 0: B %d corrupt %d", bs[0].B, len(bs[0].Corrupt))
	}
	if bs[1].B != 1 || len(bs[1].Corrupt) != 2 || len(bs[1].Pixels) != 3*32*32 || len(bs[1].IDs) != bs[1].T {
		t.Errorf("batch 1: B %d corrupt %d pixels %d", bs[1].B, len(bs[1].Corrupt), len(bs[1].Pixels))
	}
	// A batch made only of corrupt images is skipped, its errors reported
	// with the next batch.
	l2, _ := NewLoader([]TrainPair{{bad, "x"}, pairs[0]}, tok, proc, LoaderOptions{BatchSize: 1, NoShuffle: true})
	b := collect(t, l2, Position{}, 1)[0]
	if b.B != 1 || len(b.Corrupt) != 1 || b.Pos != (Position{0, 1}) {
		t.Errorf("got B %d corrupt %d pos %+v", b.B, len(b.Corrupt), b.Pos)
	}
}

func TestLoaderCancel(t *testing.T) {
	pairs, tok, proc := testSet(t)
	l, _ := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 2, Workers: 2, Prefetch: 2})
	ctx, cancel := context.WithCancel(context.Background())
	it := l.Iterate(ctx, Position{})
	if _, err := it.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := it.Next(); err == nil {
		t.Error("Next after cancel succeeded")
	}
	it.Close()
}

// TestLoaderFailsWhenNoImageIsReadable: a wrong image directory must give
// an error, not an endless search for a readable batch.
func TestLoaderFailsWhenNoImageIsReadable(t *testing.T) {
	dir := t.TempDir()
	pairs := []TrainPair{{filepath.Join(dir, "a.png"), "a"}, {filepath.Join(dir, "b.png"), "b"}, {filepath.Join(dir, "c.png"), "c"}}
	_, tok, proc := testSet(t)
	l, err := NewLoader(pairs, tok, proc, LoaderOptions{BatchSize: 2, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	it := l.Iterate(ctx, Position{})
	defer it.Close()
	_, err = it.Next()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("want an error about unreadable images before the timeout, got %v", err)
	}
	if !strings.Contains(err.Error(), "a.png") && !strings.Contains(err.Error(), "b.png") {
		t.Errorf("error %q does not name an image", err)
	}
}
