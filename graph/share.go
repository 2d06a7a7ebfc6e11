package graph

import (
	"fmt"
	"slices"
	"sort"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Buffer sharing. Every op keeps its own output buffer from run to run
// (baseOp.out), so a compiled training graph holds every activation and
// every activation gradient of the step at once. Most of them are dead long
// before the step ends: a Linear's input gradient is read by the next op of
// the backward pass and never again. ShareBuffers places the outputs in one
// arena so that outputs never alive at the same time overlap in memory:
// the tape machine runs the nodes in a fixed order (gorgonia's
// stabilised topological sort, the order Compile uses), so each output's
// lifetime, from the op that writes it to the last op that reads it, is
// known before the first run.

// buffered is implemented by every op of this package (through baseOp).
type buffered interface{ buffer() *outCache }

func (b baseOp) buffer() *outCache { return b.cache }

// ShareStats reports what ShareBuffers did, in bytes of output buffers.
type ShareStats struct {
	Outputs int   // op outputs planned
	Before  int64 // one buffer per output
	After   int64 // shared buffers
}

func (s ShareStats) String() string {
	return fmt.Sprintf("%d op outputs: %.1f MiB in private buffers, %.1f MiB shared", s.Outputs, float64(s.Before)/(1<<20), float64(s.After)/(1<<20))
}

// ShareBuffers assigns the output buffers of g's ops so that outputs whose
// lifetimes do not overlap share memory. keep are the nodes whose values
// are read after a run (a loss, the parameter gradients): they, and
// everything they may alias, keep buffers of their own. After it, only the
// kept nodes' values are meaningful once a run ends; every other node's
// value may have been overwritten by a later op. Call it once, after the
// graph is complete (gradients included) and before it first runs, on a
// graph compiled with G.NewTapeMachine.
//
// Values that may alias another (a view such as RowRange, an in-place
// gradient, and any gorgonia op, which may write over its input) are
// treated as one value with their inputs: it lives until the last reader
// of any of them.
func ShareBuffers(g *G.ExprGraph, keep G.Nodes) (ShareStats, error) {
	var st ShareStats
	order, err := G.Sort(g)
	if err != nil {
		return st, err
	}
	// Compile reverses Sort's order: that is the order the tape runs.
	for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
		order[i], order[j] = order[j], order[i]
	}
	at := make(map[*G.Node]int, len(order))
	for i, n := range order {
		at[n] = i
	}
	// Alias groups (union-find over node indices).
	parent := make([]int, len(order))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	union := func(a, b int) { parent[find(a)] = find(b) }
	owns := func(n *G.Node) *outCache {
		if n.Op() == nil || n.Op().ReturnsPtr() {
			return nil
		}
		b, ok := n.Op().(buffered)
		if !ok {
			return nil
		}
		return b.buffer()
	}
	for i, n := range order {
		if n.Op() == nil || owns(n) != nil {
			continue
		}
		for _, c := range children(g, n) {
			if j, ok := at[c]; ok {
				union(i, j)
			}
		}
	}
	const forever = int(^uint(0) >> 1)
	last := make([]int, len(order)) // by group root: index of the last reader
	for i := range last {
		last[i] = i
	}
	for i, n := range order {
		for _, c := range children(g, n) {
			if j, ok := at[c]; ok {
				r := find(j)
				last[r] = max(last[r], i)
			}
		}
	}
	for _, n := range keep {
		if j, ok := at[n]; ok {
			last[find(j)] = forever
		}
	}

	// Outputs are placed in one arena per dtype at offsets chosen greedily
	// by size (largest first, each at the lowest offset where it overlaps
	// no output alive at the same time), which comes close to the largest
	// total of outputs alive at once.
	type item struct {
		c          *outCache
		shape      []int
		size       int
		start, end int // the op that writes it, the last op that reads it
		off        int
	}
	byType := map[tensor.Dtype][]*item{}
	for i, n := range order {
		c := owns(n)
		if c == nil || n.Shape().IsScalar() {
			continue
		}
		dt := n.Dtype()
		if dt != tensor.Float32 && dt != tensor.Float64 {
			continue
		}
		size := n.Shape().TotalSize()
		st.Outputs++
		st.Before += int64(size) * int64(dt.Size())
		byType[dt] = append(byType[dt], &item{c: c, shape: []int(n.Shape().Clone()), size: size, start: i, end: last[find(i)]})
	}
	const align = 16 // elements: 64-byte aligned for float32
	for dt, items := range byType {
		sorted := slices.Clone(items)
		sort.SliceStable(sorted, func(a, b int) bool { return sorted[a].size > sorted[b].size })
		var placed []*item // by offset
		arena := 0
		for _, it := range sorted {
			off := 0
			for _, p := range placed {
				if p.start > it.end || it.start > p.end {
					continue // never alive together
				}
				if p.off >= off+it.size {
					break // the gap before p holds it
				}
				off = max(off, (p.off+p.size+align-1)/align*align)
			}
			it.off = off
			arena = max(arena, off+it.size)
			at, _ := slices.BinarySearchFunc(placed, off, func(p *item, o int) int { return p.off - o })
			placed = slices.Insert(placed, at, it)
		}
		st.After += int64(arena) * int64(dt.Size())
		switch dt {
		case tensor.Float32:
			mem := make([]float32, arena)
			for _, it := range items {
				it.c.t = tensor.New(tensor.WithBacking(mem[it.off:it.off+it.size:it.off+it.size]), tensor.WithShape(it.shape...))
			}
		default:
			mem := make([]float64, arena)
			for _, it := range items {
				it.c.t = tensor.New(tensor.WithBacking(mem[it.off:it.off+it.size:it.off+it.size]), tensor.WithShape(it.shape...))
			}
		}
	}
	return st, nil
}

// children are the inputs of n.
func children(g *G.ExprGraph, n *G.Node) []*G.Node {
	it := g.From(n.ID())
	var cs []*G.Node
	for it.Next() {
		cs = append(cs, it.Node().(*G.Node))
	}
	return cs
}
