// Package kernels holds the compute kernels of the engine as plain Go
// reference implementations with float32 accumulation: quantized and dense
// matrix products, normalisation, rotary embedding, attention, routing and
// the element-wise ops. The CPU executor calls them directly; the Metal
// shaders in kernels/msl are tested against them.
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
