package kernels

import "golang.org/x/sys/cpu"

// CPU features the SIMD kernels are chosen by, read once at start. The
// purego build tag (and the fallback on other architectures) uses none of
// them; tests may clear them to exercise every path on one machine.
var (
	hasAVX2FMA = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	hasAVX512  = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL
	hasVNNI    = hasAVX512 && cpu.X86.HasAVX512VNNI
	hasNEON    = cpu.ARM64.HasASIMD
	hasDotProd = cpu.ARM64.HasASIMDDP
)
