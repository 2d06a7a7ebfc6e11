//go:build amd64

package graph

import (
	"fmt"
	"os"
)

//go:noescape
func amxPanel(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int)

//go:noescape
func amxPanels16(a *uint16, b *uint16, kb int, panels int, c *float32, ldc int, cinit *float32, cs int, rows int)

//go:noescape
func cvtBF16AVX512(dst *uint16, src *float32, n int)

//go:noescape
func packPairsBF16(dst *uint32, lo, hi *float32, panels, pstride int)

//go:noescape
func packColPairsBF16(dst *uint16, lo, hi *float32, blocks, bstride int)

//go:noescape
func cvtStepsBF16(dst *uint16, src *float32, steps int)

//go:noescape
func packRowStepsBF16(dst *uint32, src *float32, steps int)

func cpuidex(leaf, sub uint32) (a, b, c, d uint32)
func xgetbv0() (lo, hi uint32)

// probeAMX decides, once per process (amxProbe), whether the AMX kernels
// run: the CPU has AMX-TILE and AMX-BF16 (CPUID.(EAX=7,ECX=0):EDX bits 24
// and 22) and AVX512_BF16 (the activations' conversion, and the VDPBF16PS
// path's rules that linearBF16 keeps), the OS enables the tile state in
// XCR0 (bits 17 and 18), the kernel grants this process the tile data
// (arch_prctl ARCH_REQ_XCOMP_PERM, linux only), and GITCAP_AMX is not "off".
func probeAMX() amxCaps {
	if os.Getenv(EnvAMX) == "off" {
		return amxCaps{reason: EnvAMX + "=off"}
	}
	if !hasBF16DP {
		return amxCaps{reason: "no AVX512_BF16"}
	}
	if maxLeaf, _, _, _ := cpuidex(0, 0); maxLeaf < 7 {
		return amxCaps{reason: "no CPUID leaf 7"}
	}
	_, _, _, edx := cpuidex(7, 0)
	if edx&(1<<24) == 0 || edx&(1<<22) == 0 {
		return amxCaps{reason: "no AMX-TILE/AMX-BF16 on this CPU"}
	}
	if _, _, ecx, _ := cpuidex(1, 0); ecx&(1<<27) == 0 {
		return amxCaps{reason: "no OSXSAVE"}
	}
	if xcr0, _ := xgetbv0(); xcr0&(3<<17) != 3<<17 {
		return amxCaps{reason: fmt.Sprintf("the OS does not enable the tile state (XCR0 %#x)", xcr0)}
	}
	if err := requestAMXPermission(); err != nil {
		return amxCaps{reason: err.Error()}
	}
	return amxCaps{ok: true}
}

//go:noescape
func dpPanelN(a *uint16, ablk int, mb int, b *uint16, kb int, c *float32, ldc int, cinit *float32, cs int, groups int)

//go:noescape
func packHalfPanelVNNI(dst *uint16, w *uint16, idx *int32, steps int)

//go:noescape
func packedGEMV1(wp *uint16, x *float32, steps int, y *float32)

//go:noescape
func packedGEMV4(wp *uint16, x *float32, ldx int, steps int, y *float32)
