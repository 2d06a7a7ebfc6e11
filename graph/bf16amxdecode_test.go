package graph

import (
	"fmt"
	"math/rand"
	"slices"
	"testing"

	"gorgonia.org/tensor"
)

// TestLinearBF16AMXRowDoesNotDependOnRowCount: with bf16 activations on AMX,
// every row count takes the tiles (decode steps of 1 or 16 rows as well as
// prefixes), and a row's result is bit for bit the same whether it is
// computed alone or among other rows: the tiles' rows are independent and
// each row sums its k steps in the same order for any m. This is what keeps
// a batched caption ids-exact with the same caption alone. Both with the
// weight packed per call (no Param) and kept packed-only (PackAMX). Without
// AMX, a packed-only weight's products (VDPBF16PS, dpPanel) have the same
// property among the many-row products, and a decode step's few rows take
// the packed-layout GEMV (float32 activations), whose rows equal the same
// rows computed one at a time; a weight in checkpoint layout there takes the
// checkpoint-layout GEMV for few rows.
func TestLinearBF16AMXRowDoesNotDependOnRowCount(t *testing.T) {
	if !amxOn() && !hasBF16DP {
		t.Skip("neither AMX nor AVX512_BF16 here")
	}
	rng := rand.New(rand.NewSource(7))
	for _, c := range []struct{ in, out int }{{37, 40}, {64, 21}, {768, 100}, {300, 33}} {
		const rows = 70
		ps := NewParams(tensor.Float32)
		p := ps.New("w", c.out, c.in)
		copy(p.W, randF32(rng, c.out*c.in))
		p.ToBF16()
		w := slices.Clone(p.BF16())
		x := randF32(rng, rows*c.in)
		b := randF32(rng, c.out)
		full := make([]float32, rows*c.out)
		linearBF16(x, w, b, full, rows, c.in, c.out, &bf16Scratch{roundX: true})
		if !p.PackAMX() {
			t.Fatal("PackAMX refused a bf16 weight")
		}
		alone := full // the rows' results each computed alone, where few rows take another kernel
		if !amxOn() { // the packed products alone: the reference is theirs over all rows
			linearBF16On(x, nil, p, b, full, rows, c.in, c.out, &bf16Scratch{}, false)
			alone = make([]float32, rows*c.out)
			for i := 0; i < rows; i++ {
				linearBF16On(x[i*c.in:(i+1)*c.in], nil, p, b, alone[i*c.out:(i+1)*c.out], 1, c.in, c.out, &bf16Scratch{}, false)
			}
		}
		for _, n := range []int{1, 2, 15, 16, 17, 32, 33, 64, rows} {
			for _, packed := range []bool{false, true} {
				if !packed && !amxOn() {
					continue
				}
				y := make([]float32, n*c.out)
				s := &bf16Scratch{roundX: !packed} // a packed-only weight takes the tiles even without roundX
				if packed {
					linearBF16On(x[:n*c.in], nil, p, b, y, n, c.in, c.out, s, false)
				} else {
					linearBF16(x[:n*c.in], w, b, y, n, c.in, c.out, s)
				}
				ref, among := full, fmt.Sprintf("among %d rows", rows)
				if packed && packedGEMVFits(n, c.in) {
					ref, among = alone, "alone"
				}
				if i := firstDiff(y, ref[:n*c.out]); i >= 0 {
					t.Errorf("%+v n=%d packed=%v: y[%d,%d] = %v, %v %s", c, n, packed, i/c.out, i%c.out, y[i], ref[i], among)
				}
			}
		}
	}
}

func firstDiff(a, b []float32) int {
	for i := range a {
		if a[i] != b[i] {
			return i
		}
	}
	return -1
}

// TestParamPackAMXKeepsOnlyTheTileCopy: PackAMX drops the checkpoint-layout
// bits, ResidentBytes counts exactly the packed copy, the bits come back
// unchanged (CheckpointBF16, UnpackAMX), writes and EmbedBF16 are refused
// while packed; without AMX or AVX512_BF16 it changes nothing.
func TestParamPackAMXKeepsOnlyTheTileCopy(t *testing.T) {
	rng := rand.New(rand.NewSource(8))
	ps := NewParams(tensor.Float32)
	p := ps.New("w", 37, 70)
	copy(p.W, randF32(rng, 37*70))
	p.ToBF16()
	bits := slices.Clone(p.BF16())
	if !p.PackAMX() {
		if amxOn() || hasBF16DP {
			t.Fatal("PackAMX refused a bf16 weight where AMX or VDPBF16PS runs")
		}
		if !slices.Equal(p.BF16(), bits) || ps.ResidentBytes() != 2*37*70 {
			t.Fatal("PackAMX without AMX or AVX512_BF16 changed the weight")
		}
		return
	}
	if p.BF16() != nil || !p.IsBF16() || !slices.Equal(p.Shape(), []int{37, 70}) {
		t.Fatalf("packed: BF16 nil %v, IsBF16 %v, shape %v", p.BF16() == nil, p.IsBF16(), p.Shape())
	}
	if got, want := ps.ResidentBytes(), 2*amxWeightsLen(70, 37); got != want {
		t.Errorf("packed-only weight: %d resident bytes, want %d (the tile copy alone)", got, want)
	}
	if !slices.Equal(p.CheckpointBF16(), bits) {
		t.Error("CheckpointBF16 of the packed copy differs from the checkpoint bits")
	}
	if err := p.SetBF16Bits(bits); err == nil {
		t.Error("SetBF16Bits accepted a packed-only weight")
	}
	if err := p.SetF32(make([]float32, 37*70)); err == nil {
		t.Error("SetF32 accepted a packed-only weight")
	}
	if err := Build(func() { EmbedBF16(p, nil) }); err == nil {
		t.Error("EmbedBF16 accepted a packed-only weight")
	}
	p.UnpackAMX()
	if !slices.Equal(p.BF16(), bits) || ps.ResidentBytes() != 2*37*70 {
		t.Errorf("UnpackAMX: bits equal %v, %d resident bytes (want %d)", slices.Equal(p.BF16(), bits), ps.ResidentBytes(), 2*37*70)
	}
}

// BenchmarkLinearBF16DecodeStep times the LinearBF16 products of one
// git-base decode step (6 layers of q, k, v, o 768×768, fc1 768→3072, fc2
// 3072→768, and the 30522-row LM head: 140 MB of bf16 weights) over 1 and
// 16 rows, on the AVX-512 GEMV kernel over the checkpoint layout and on
// the packed-only weights (AMX tiles, or VDPBF16PS panels without AMX),
// reporting CPU time per step (user+system of the whole process: what a
// loaded machine still measures) and the weights' read rate beside wall
// time.
func BenchmarkLinearBF16DecodeStep(b *testing.B) {
	if !amxOn() && !hasBF16DP {
		b.Skip("neither AMX nor AVX512_BF16 runs here: " + amxProbe().reason)
	}
	rng := rand.New(rand.NewSource(10))
	var shapes [][2]int // (in, out)
	for range 6 {
		shapes = append(shapes, [2]int{768, 768}, [2]int{768, 768}, [2]int{768, 768}, [2]int{768, 768}, [2]int{768, 3072}, [2]int{3072, 768})
	}
	shapes = append(shapes, [2]int{768, 30522})
	ps := NewParams(tensor.Float32)
	var gemv, amx []*Param
	var bias [][]float32
	weightBytes := 0
	for i, sh := range shapes {
		weightBytes += 2 * sh[0] * sh[1]
		w := randBF16(rng, sh[0]*sh[1])
		for j, list := range []*[]*Param{&gemv, &amx} {
			p := ps.New(fmt.Sprintf("w%d/%d", i, j), sh[1], sh[0])
			p.ToBF16()
			if err := p.SetBF16Bits(w); err != nil {
				b.Fatal(err)
			}
			*list = append(*list, p)
		}
		amx[i].PackAMX()
		bias = append(bias, randF32(rng, sh[1]))
	}
	for _, rows := range []int{1, 4, 16} {
		x := randF32(rng, rows*3072)
		y := make([]float32, rows*30522)
		for _, path := range []string{"gemv", "packed"} {
			s := &bf16Scratch{}
			step := func() {
				for i, sh := range shapes {
					if path == "gemv" {
						linearBF16On(x[:rows*sh[0]], gemv[i].BF16(), gemv[i], bias[i], y[:rows*sh[1]], rows, sh[0], sh[1], s, false)
					} else {
						linearBF16On(x[:rows*sh[0]], nil, amx[i], bias[i], y[:rows*sh[1]], rows, sh[0], sh[1], s, false)
					}
				}
			}
			b.Run(fmt.Sprintf("%s/rows%d", path, rows), func(b *testing.B) {
				step()
				cpu0 := cpuSeconds()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					step()
				}
				b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N)*1e3, "cpu-ms/step")
				b.ReportMetric(float64(weightBytes)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GB/s")
			})
		}
	}
}
