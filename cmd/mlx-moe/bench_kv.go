package main

import (
	"fmt"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
)

func init() { benchSuites = append(benchSuites, benchKV) }

// benchKV: one decode token's attention over 8k and 32k cached positions
// at Qwen3-Next's full-attention shape (as attention_decode) with the cache
// at half precision and 8- and 4-bit, on executors that store compact KV
// caches; the bytes are the cache as stored.
func benchKV(env *benchEnv) ([]benchKernel, error) {
	ke, ok := env.e.(graph.KVExecutor)
	if !ok {
		return nil, nil
	}
	const heads, kvHeads, d = 16, 2, 256
	q, o := env.e.NewTensor(1, heads*d), env.e.NewTensor(1, heads*d)
	fillUniform(env, q.Data)
	var list []benchKernel
	for _, L := range []int{8192, 32768} {
		rows := env.e.NewTensor(L, kvHeads*d)
		fillUniform(env, rows.Data)
		for _, f := range []kernels.KVFormat{kernels.KVF16, kernels.KVQ8, kernels.KVQ4} {
			k, err := ke.NewKV(L, kvHeads*d, f, kernels.KVGroupSize)
			if err != nil {
				return nil, err
			}
			v, err := ke.NewKV(L, kvHeads*d, f, kernels.KVGroupSize)
			if err != nil {
				return nil, err
			}
			ke.StoreKV(k, 0, rows, L)
			ke.StoreKV(v, 0, rows, L)
			list = append(list, benchKernel{"attention_decode_" + f.String(), fmt.Sprintf("%d positions, %dq/%dkv heads, d=%d", L, heads, kvHeads, d),
				k.Bytes() + v.Bytes(), int64(4 * L * heads * d), func() {
					ke.AttentionKV(o, q, k, 0, v, 0, 1, L-1, heads, kvHeads, d, d, kernels.AttentionScale(d))
				}})
		}
		env.e.Free(rows)
	}
	return list, nil
}
