// Package kernels holds the compute kernels of the engine as plain Go
// reference implementations with float32 accumulation: quantized and dense
// matrix products, normalisation, rotary embedding, attention, routing and
// the element-wise ops. The CPU executor calls them directly; the Metal
// shaders in kernels/msl are tested against them.
//
// Where a kernel has Go assembly twins (the decode matvec: amd64 AVX2 in
// qmv_amd64.s, arm64 NEON for 4 and 8 bits in qmv_arm64.s), they are chosen at run time from the CPU features in
// features.go; the Go kernels remain the reference the twins are tested
// against and the whole path under the purego build tag and on other
// architectures. Parallel kernels split rows over a persistent worker pool
// (pool.go); MatVecRows and ParallelFor let an executor run several
// matrices as one parallel region.
//
// Kernels work on flat row-major float32 slices with explicit sizes. Weights
// are Matrix values whose bytes may live anywhere (a heap copy, an mmap of
// the checkpoint, an expert slot of the pager).
//
// The hot kernels also have amd64 assembly (AVX2+FMA, the *_amd64.s files)
// chosen at run time by the feature flags in features.go; the Go forms stay
// as their references and are what the purego build tag and other
// architectures run. Prompts go through a blocked GEMM (gemm.go) and
// attention is tiled with an online softmax (attention.go).
package kernels
