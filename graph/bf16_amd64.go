//go:build amd64

package graph

import "golang.org/x/sys/cpu"

// hasAVX512 reports whether the package's AVX-512 kernels can run
// (VPMOVZXWD on 512-bit registers needs AVX512BW; VINSERTF32X8 and the
// 512-bit VANDPS/VXORPS of the exp, erf and LayerNorm kernels need
// AVX512DQ). It is read from the CPU once and never changes.
var hasAVX512 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512DQ

//go:noescape
func sumF32AVX512(x *float32, n int) float32

//go:noescape
func widenBF16AVX512(dst *float32, src *uint16, n int)

// hasBF16DP reports whether the VDPBF16PS GEMM of bf16gemm_amd64.s can run.
var hasBF16DP = hasAVX512 && cpu.X86.HasAVX512BF16

//go:noescape
func dpbf16Tile(xp *uint32, w *uint16, ldw int, kp int, out *float32)

//go:noescape
func dot1BF16AVX512(w *uint16, x *float32, k int) float32

//go:noescape
func dot1x4BF16AVX512(w *uint16, x *float32, ldx int, k int, y *float32)

//go:noescape
func dot4x1BF16AVX512(w *uint16, ldw int, x *float32, k int, y *float32)
