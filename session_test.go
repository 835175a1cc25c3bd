package mlxmoe

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/sample"
)

// TestPrefixReuse: a 3,000-token conversation extended by one turn only
// processes the new tokens, and generates what a cold run generates. The
// hybrid Qwen3-Next fixture exercises the snapshot path (linear-attention
// state cannot be rewound), qwen3_moe the rewind path.
func TestPrefixReuse(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			dir := fixture.Dir(t, "fixtures/"+name)
			load := func() *Model {
				m, err := Load(dir, Options{ContextLength: 4096, Experts: ExpertOptions{Policy: "resident"}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { m.Close() })
				return m
			}
			rng := rand.New(rand.NewPCG(1, 2))
			first := make([]int32, 3000)
			for i := range first {
				first[i] = int32(rng.IntN(500))
			}
			opts := GenerateOptions{MaxTokens: 8, IgnoreEOS: true, Sampling: sample.Options{}}
			warm := load()
			r1, err := warm.Stream(context.Background(), first, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			second := append(append(append([]int32{}, first...), r1.IDs...), 5, 6, 7, 8, 9, 10, 11, 12)
			r2, err := warm.Stream(context.Background(), second, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			// Everything but the last sampled token of the first reply (never
			// fed back) is reused.
			if want := len(first) + len(r1.IDs) - 1; r2.CachedTokens != want {
				t.Fatalf("second request reused %d tokens, want %d", r2.CachedTokens, want)
			}
			cold, err := load().Stream(context.Background(), second, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if cold.CachedTokens != 0 {
				t.Fatalf("cold run reused %d tokens", cold.CachedTokens)
			}
			for i := range cold.IDs {
				if cold.IDs[i] != r2.IDs[i] {
					t.Fatalf("token %d: warm %d, cold %d (warm %v, cold %v)", i, r2.IDs[i], cold.IDs[i], r2.IDs, cold.IDs)
				}
			}
			t.Logf("second request: %d of %d prompt tokens reused; prefill %.3fs (cold %.3fs)", r2.CachedTokens, len(second), r2.Prefill.Seconds(), cold.Prefill.Seconds())
		})
	}
}

// TestSessionNewSequenceStartsClean: after one conversation, an unrelated
// prompt on the same session (no shared prefix) generates what a fresh
// model generates: recurrent state from the first must not leak.
func TestSessionNewSequenceStartsClean(t *testing.T) {
	dir := fixture.Dir(t, "fixtures/qwen3_next-4bit")
	load := func() *Model {
		m, err := Load(dir, Options{ContextLength: 256, Experts: ExpertOptions{Policy: "resident"}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	opts := GenerateOptions{MaxTokens: 8, IgnoreEOS: true}
	warm := load()
	if _, err := warm.Stream(context.Background(), []int32{11, 12, 13, 14, 15, 16}, opts, nil); err != nil {
		t.Fatal(err)
	}
	other := []int32{300, 301, 302, 303}
	got, err := warm.Stream(context.Background(), other, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := load().Stream(context.Background(), other, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.CachedTokens != 0 || fmt.Sprint(got.IDs) != fmt.Sprint(want.IDs) {
		t.Fatalf("second, unrelated prompt: cached %d, tokens %v; a fresh model gives %v", got.CachedTokens, got.IDs, want.IDs)
	}
}
