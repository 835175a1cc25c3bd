package model_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/mlx-moe/mlx-moe/cpu"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// TestKVMemoryTable allocates one attention layer's cache of real model
// shapes at every KV format and checks its allocated bytes against
// CacheBytes (what the pager's plan counts). With MLXMOE_KV_TABLE=1 it
// prints BENCHMARKS.md's table (4K to 128K positions, whole models: one
// layer's allocation times the full-attention layers); without, it checks
// 4K only.
func TestKVMemoryTable(t *testing.T) {
	lengths := []int{4096}
	if os.Getenv("MLXMOE_KV_TABLE") != "" {
		lengths = []int{4096, 8192, 16384, 32768, 131072}
	}
	shapes := []struct {
		name                     string
		layers, kvHeads, headDim int
	}{
		{"Qwen3-Coder-Next (12 full-attention layers, 2 KV heads, head dim 256)", 12, 2, 256},
		{"Qwen3-30B-A3B (48 layers, 4 KV heads, head dim 128)", 48, 4, 128},
	}
	formats := []kernels.KVFormat{kernels.KVF32, kernels.KVF16, kernels.KVQ8, kernels.KVQ4}
	e := cpu.New()
	var table strings.Builder
	for _, s := range shapes {
		fmt.Fprintf(&table, "\n%s\n\n| positions | f32 (old) | f16 | 8-bit | 4-bit |\n|---|---|---|---|---|\n", s.name)
		for _, n := range lengths {
			fmt.Fprintf(&table, "| %dK |", n/1024)
			for _, f := range formats {
				m := &model.Model{KVFormat: f, Layers: []*model.Layer{{Mixer: &model.Attention{Heads: s.kvHeads, KVHeads: s.kvHeads, HeadDim: s.headDim}}}}
				c := m.NewCache(e, n)
				got := c.Bytes()
				c.Free(e)
				if want := m.CacheBytes(n); got != want {
					t.Errorf("%s %v at %d: allocated %d bytes, CacheBytes says %d", s.name, f, n, got, want)
				}
				fmt.Fprintf(&table, " %.0f MiB |", float64(got)*float64(s.layers)/(1<<20))
			}
			table.WriteString("\n")
		}
	}
	t.Log(table.String())
}
