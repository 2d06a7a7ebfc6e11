package gitmodel

import (
	"fmt"
	"math"
	"math/rand"
	"strings"
	"testing"

	"github.com/gitcap/gitcap/graph"
)

// TestBF16TrainingGraphRoutesEveryProduct checks that ForwardOptions
// Precision reaches every matrix product of a training graph: at BF16 each
// Linear, MatMul (the backward products) and attention op of the graph is
// built with the bf16 product, and the loss differs from the float32
// graph's by bf16 rounding only. With gradient checkpointing the layers run
// in their own graphs (graph.Segment), which must inherit the precision:
// the loss is the plain bf16 graph's, not the float32 one.
func TestBF16TrainingGraphRoutesEveryProduct(t *testing.T) {
	m := randomModel(t, "tiny.json")
	const b, tl = 2, 5
	c := m.Config
	rng := rand.New(rand.NewSource(1))
	in := Batch{Pixels: make([]float32, b*c.Frames()*c.Vision.NumChannels*c.Vision.ImageSize*c.Vision.ImageSize), IDs: make([]int, b*tl), Labels: make([]int, b*tl)}
	for i := range in.Pixels {
		in.Pixels[i] = float32(rng.NormFloat64())
	}
	for i := range in.IDs {
		in.IDs[i] = 1 + rng.Intn(c.VocabSize-1)
		in.Labels[i] = in.IDs[i]
	}
	loss := map[string]float64{}
	for _, p := range []graph.Precision{graph.FP32, graph.BF16} {
		for _, ckpt := range []bool{false, true} {
			f, err := m.NewForward(b, tl, ForwardOptions{Train: true, Loss: true, Precision: p, GradientCheckpointing: ckpt})
			if err != nil {
				t.Fatal(err)
			}
			products := 0
			for _, n := range f.b.G.AllNodes() {
				if n.Op() == nil {
					continue
				}
				s := n.Op().String()
				if strings.HasPrefix(s, "Linear{") || strings.HasPrefix(s, "MatMul{") || strings.HasPrefix(s, "Attention") {
					products++
					if bf := strings.Contains(s, ",bf16"); bf != (p == graph.BF16) {
						t.Errorf("%v graph (checkpointed %v) has the op %s", p, ckpt, s)
					}
				}
			}
			if products == 0 {
				t.Fatalf("%v: no products found in the graph", p)
			}
			if err := f.Run(in); err != nil {
				t.Fatal(err)
			}
			loss[fmt.Sprintf("%v/ckpt=%v", p, ckpt)] = f.LossValue()
			f.Close()
		}
	}
	t.Logf("losses %v", loss)
	f32, bf, bfc := loss["fp32/ckpt=false"], loss["bf16/ckpt=false"], loss["bf16/ckpt=true"]
	if f32 == bf || math.Abs(bf-f32) > 1e-2*f32 {
		t.Fatalf("bf16 loss %v, fp32 %v: want a difference below 1%%", bf, f32)
	}
	if math.Abs(bfc-bf) > math.Abs(bf-f32)/8 {
		t.Fatalf("checkpointed bf16 loss %v is not the bf16 loss %v (fp32 %v): the segments lost the precision", bfc, bf, f32)
	}
}
