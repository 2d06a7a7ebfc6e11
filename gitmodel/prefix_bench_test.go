package gitmodel

import (
	"math"
	"math/rand"
	"slices"
	"testing"
)

// benchPrefix times the batcher's prefix graph (vision tower, projection and
// the decoder over the image tokens and a one-token prompt, last logits) for
// batch images. Its difference from BenchmarkGitBaseVisionForward (the
// vision tower and projection alone) is the decoder's prefix pass.
func benchPrefix(b *testing.B, batch int) {
	benchGitBaseForward(b, batch, ForwardOptions{Last: true})
}

// The prefix graph at one and eight images (per image: divide by the
// batch).
func BenchmarkGitBasePrefix1(b *testing.B) { benchPrefix(b, 1) }
func BenchmarkGitBasePrefix8(b *testing.B) { benchPrefix(b, 8) }

// TestPrefixGraphComputesOnlyTheLastRowOfItsLastLayer: a generation prefix
// graph (ForwardOptions{Last: true}) runs its last decoder layer for each
// example's last position only. Its keys and values are the full graph's
// bit for bit (the same products of the same inputs), and its last logits
// are the full graph's last-position logits up to float32 reassociation:
// that layer's products now have one row per example (a gemv at batch 1)
// instead of being rows of a Batch·N-row gemm.
func TestPrefixGraphComputesOnlyTheLastRowOfItsLastLayer(t *testing.T) {
	m := loadTiny(t, "git-tiny")
	c := m.Config
	const batch, text = 2, 3
	img := c.Frames() * c.Vision.NumChannels * c.Vision.ImageSize * c.Vision.ImageSize
	in := Batch{
		Pixels:        randomPixels(batch*img, rand.New(rand.NewSource(3))),
		IDs:           []int{101, 2000, 2001, 101, 2002, 2003},
		AttentionMask: []int{1, 1, 1, 1, 0, 1}, // a hidden prompt token
	}
	for _, tc := range []struct {
		name string
		in   Batch
	}{{"all kept", Batch{Pixels: in.Pixels, IDs: in.IDs}}, {"with padding", in}} {
		last, err := m.NewForward(batch, text, ForwardOptions{Last: true})
		if err != nil {
			t.Fatal(err)
		}
		full, err := m.NewForward(batch, text, ForwardOptions{AllLogits: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := last.Run(tc.in); err != nil {
			t.Fatal(err)
		}
		if err := full.Run(tc.in); err != nil {
			t.Fatal(err)
		}
		for l := range last.Decoder.K {
			for _, kv := range [][2][]float32{{Values(last.Decoder.K[l]), Values(full.Decoder.K[l])}, {Values(last.Decoder.V[l]), Values(full.Decoder.V[l])}} {
				if !slices.Equal(kv[0], kv[1]) {
					t.Errorf("%s: layer %d keys/values differ from the full graph's", tc.name, l)
				}
			}
		}
		if got := last.Decoder.Last.Shape(); !slices.Equal(got, []int{batch, c.HiddenSize}) {
			t.Errorf("%s: the last layer's output has shape %v, want (%d, %d)", tc.name, got, batch, c.HiddenSize)
		}
		got, all := Values(last.LastLogits), Values(full.Logits)
		n, v := full.N, c.VocabSize
		var worst float64
		for b := range batch {
			want := all[(b*n+n-1)*v : (b*n+n)*v]
			for j, w := range want {
				d := math.Abs(float64(got[b*v+j] - w))
				worst = max(worst, d/max(1, math.Abs(float64(w))))
			}
		}
		// float32 reassociation over sums of a few hundred terms: a few
		// ulp of the largest partial sums, far below 1e-4.
		if worst > 1e-4 {
			t.Errorf("%s: last logits differ from the full graph's by %g (relative)", tc.name, worst)
		}
		t.Logf("%s: largest relative difference %g", tc.name, worst)
		last.Close()
		full.Close()
	}
}
