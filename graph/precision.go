package graph

import (
	"fmt"
	"strings"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Precision is the arithmetic of a float32 graph's matrix products.
// Mixed-precision training (BF16) keeps every tensor, the parameters, their
// gradients and the optimiser state in float32 and changes only the
// products: the linear layers (forward, and both products of their
// backward pass, dX and dW) and the attention products (scores and
// probabilities·values, forward and backward) round their two inputs to
// bfloat16 and accumulate in float32 (GemmBF16). Everything between the
// products (bias, softmax, LayerNorm, activations, the loss, the
// gradient sums of a node used twice) stays float32.
type Precision int

const (
	// FP32 is float32 products (sgemm): the default, bit-identical to a
	// graph built without WithPrecision.
	FP32 Precision = iota
	// BF16 is bf16 inputs with float32 accumulation (GemmBF16).
	BF16
)

// Precisions lists the precisions' names (Precision.String).
func Precisions() []string { return []string{FP32.String(), BF16.String()} }

func (p Precision) String() string {
	switch p {
	case FP32:
		return "fp32"
	case BF16:
		return "bf16"
	}
	return fmt.Sprintf("Precision(%d)", int(p))
}

// ParsePrecision reads a precision's name: "fp32" (or "") or "bf16".
func ParsePrecision(s string) (Precision, error) {
	switch strings.ToLower(s) {
	case "", "fp32":
		return FP32, nil
	case "bf16":
		return BF16, nil
	}
	return FP32, fmt.Errorf("unknown precision %q (want %s)", s, strings.Join(Precisions(), " or "))
}

// CheckPrecision reports whether this CPU can train at precision p: BF16
// needs AVX512_BF16 (the bf16 dot-product instructions its kernels are
// built on; AMX CPUs have it too).
func CheckPrecision(p Precision) error { return checkPrecision(p, hasBF16DP) }

func checkPrecision(p Precision, hasBF16 bool) error {
	switch p {
	case FP32:
		return nil
	case BF16:
		if !hasBF16 {
			return fmt.Errorf("bf16 matrix products need a CPU with AVX512_BF16, which this one lacks")
		}
		return nil
	}
	return fmt.Errorf("unknown precision %v", p)
}

// WithPrecision builds a graph whose float32 matrix products run at
// precision p (see Precision). The ops read it when they are built: a
// graph's products never change precision afterwards, and graphs of
// different precisions can share Params. A float64 graph (gradient checks)
// ignores it.
func WithPrecision(p Precision) BuilderOption {
	return func(b *Builder) { b.precision = p }
}

// Precision is the precision of this graph's matrix products.
func (b *Builder) Precision() Precision { return b.precision }

// products is the float32 product c = op(a)·op(b) + beta·c that a
// graph's linear and attention ops call instead of sgemm, chosen when the
// op is built; nil means sgemm (the ops' own float32/float64 path). An
// interface of a comparable type, so the ops stay comparable values.
type products interface {
	gemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int)
	String() string // the signature suffix of the ops that use it
}

// bf16Products is GemmBF16.
type bf16Products struct{}

func (bf16Products) gemm(tA, tB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	GemmBF16(tA, tB, m, n, k, a, lda, b, ldb, beta, c, ldc)
}
func (bf16Products) String() string { return "bf16" }

// products is the product function of this graph's linear and attention
// ops: nil (sgemm) unless the graph is a float32 graph built
// WithPrecision(BF16).
func (b *Builder) products() products {
	if b.precision == BF16 && b.Dtype == tensor.Float32 {
		return bf16Products{}
	}
	return nil
}

// Linear is graph.Linear (x·Wᵀ + b) at this graph's precision (and, under
// BatchInvariant, with rows that do not depend on their number).
func (b *Builder) Linear(x, w, bias *G.Node) *G.Node {
	mm := b.products()
	if mm == nil && b.batchInvariant {
		mm = rowProducts{}
	}
	if mm != nil || b.Dtype != tensor.Float32 {
		return linear(x, w, bias, mm, nil)
	}
	if b.sgemm == nil {
		b.sgemm = &sgemmScratch{}
	}
	return linear(x, w, bias, nil, b.sgemm)
}

// Attention is graph.Attention at this graph's precision, with dropout
// from the graph's noise source.
func (b *Builder) Attention(q, k, v, mask *G.Node, s AttentionShape, dropout float64) *G.Node {
	return attention(q, k, v, mask, s, dropout, b.Noise, b.products())
}

// precSig is the suffix a product op's signature gets at a precision other
// than float32's ("" for sgemm, so float32 graphs keep their signatures).
func precSig(mm products) string {
	if mm == nil {
		return ""
	}
	return "," + mm.String()
}

// gemmVia is gemm (c = alpha·op(a)·op(b) + beta·c), or, when mm is set and
// the data are float32, mm followed by the scaling by alpha (alpha ≠ 1
// needs beta 0: the attention products). single chooses gemm1, the
// one-thread BLAS call, for the sgemm path.
func gemmVia[T Float](mm products, single, tA, tB bool, m, n, k int, alpha T, a []T, lda int, b []T, ldb int, beta T, c []T, ldc int) {
	if mm != nil {
		if c32, ok := any(c).([]float32); ok {
			if alpha != 1 && beta != 0 {
				panic("graph: gemmVia: alpha != 1 needs beta 0")
			}
			mm.gemm(tA, tB, m, n, k, any(a).([]float32), lda, any(b).([]float32), ldb, float32(beta), c32, ldc)
			if alpha != 1 {
				s := float32(alpha)
				for i := 0; i < m; i++ {
					row := c32[i*ldc : i*ldc+n]
					for j := range row {
						row[j] *= s
					}
				}
			}
			return
		}
	}
	if single {
		gemm1(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
	gemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
