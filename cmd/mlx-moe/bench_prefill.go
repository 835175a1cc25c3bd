package main

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/kernels"
)

func init() { benchSuites = append(benchSuites, benchPrefill) }

// benchPrefill: a 512-token prompt through a 4096x14336 4-bit matrix (the
// GEMM; compare with scripts/ggml-compare) and one decode token's attention
// over 4k and 32k cached positions at Qwen3-Next's full-attention shape (16
// query heads, 2 kv heads, head dim 256), whose bytes are the cache read.
func benchPrefill(env *benchEnv) ([]benchKernel, error) {
	e := env.e
	const rows, cols, n = 4096, 14336, 512
	m := randomQuant(env.rng, rows, cols, 4, 64)
	x, out := e.NewTensor(n, cols), e.NewTensor(n, rows)
	fillUniform(env, x.Data)
	list := []benchKernel{{"gemm_q4", fmt.Sprintf("%dx%d n=%d g64", rows, cols, n), int64(m.Bytes()), 2 * rows * cols * n,
		func() { e.MatMul(out, x, n, m, nil) }}}
	const heads, kvHeads, d = 16, 2, 256
	q, o := e.NewTensor(1, heads*d), e.NewTensor(1, heads*d)
	fillUniform(env, q.Data)
	for _, L := range []int{4096, 32768} {
		k, v := e.NewTensor(L, kvHeads*d), e.NewTensor(L, kvHeads*d)
		fillUniform(env, k.Data)
		fillUniform(env, v.Data)
		list = append(list, benchKernel{"attention_decode", fmt.Sprintf("%d positions, %dq/%dkv heads, d=%d", L, heads, kvHeads, d),
			int64(8 * len(k.Data)), int64(4 * L * heads * d), func() {
				e.Attention(o, q, k, v, 1, L-1, heads, kvHeads, d, d, kernels.AttentionScale(d))
			}})
	}
	return list, nil
}

// fillUniform fills x with uniform values in [-1, 1): cheaper than normals
// for the tens of millions of cache entries, and the kernels' speed does
// not depend on the distribution.
func fillUniform(env *benchEnv, x []float32) {
	for i := range x {
		x[i] = 2*env.rng.Float32() - 1
	}
}
