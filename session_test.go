package mlxmoe

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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

// cancelAfter is a context whose Err turns to Canceled after n calls, so a
// test can stop a prefill between chunks deterministically.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

func loadFixture(t *testing.T, name string, opts Options) *Model {
	t.Helper()
	opts.Experts = ExpertOptions{Policy: "resident"}
	m, err := Load(fixture.Dir(t, "fixtures/"+name), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func randomIDs(seed uint64, n int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(rng.IntN(500))
	}
	return ids
}

// TestPrefillCancel: a request cancelled during prefill stops at the next
// chunk boundary; what it prefilled is kept, and a retry resumes from it
// and generates what a cold run generates.
func TestPrefillCancel(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			prompt := randomIDs(3, 3000)
			opts := GenerateOptions{MaxTokens: 6, IgnoreEOS: true}
			m := loadFixture(t, name, Options{ContextLength: 4096})
			res, err := m.Stream(&cancelAfter{Context: context.Background(), n: 2}, prompt, opts, nil)
			if err != context.Canceled || res.FinishReason != "cancelled" || len(res.IDs) != 0 {
				t.Fatalf("cancelled prefill: err %v, finish %q, %d tokens", err, res.FinishReason, len(res.IDs))
			}
			if got := len(m.session.lanes[0].tokens); got != 2*m.prefillChunk() {
				t.Fatalf("the cache holds %d tokens after two chunks, want %d", got, 2*m.prefillChunk())
			}
			retry, err := m.Stream(context.Background(), prompt, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			cold, err := loadFixture(t, name, Options{ContextLength: 4096}).Stream(context.Background(), prompt, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if retry.CachedTokens != 2*m.prefillChunk() || fmt.Sprint(retry.IDs) != fmt.Sprint(cold.IDs) {
				t.Fatalf("retry reused %d tokens and generated %v; cold %v", retry.CachedTokens, retry.IDs, cold.IDs)
			}
		})
	}
}

// TestCachePoints: a new conversation that shares only the system+tools
// prefix (a cache point) with an earlier one starts from the snapshot
// taken there, even after an unrelated conversation moved the live cache,
// and generates what a cold run generates.
func TestCachePoints(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			prefix := randomIDs(4, 700)
			a := append(append([]int32{}, prefix...), randomIDs(5, 300)...)
			c := append(append([]int32{}, prefix...), randomIDs(6, 200)...)
			opts := GenerateOptions{MaxTokens: 6, IgnoreEOS: true, CachePoints: []int{len(prefix)}}
			m := loadFixture(t, name, Options{ContextLength: 2048})
			for _, p := range [][]int32{a, randomIDs(8, 400)} {
				if _, err := m.Stream(context.Background(), p, opts, nil); err != nil {
					t.Fatal(err)
				}
			}
			got, err := m.Stream(context.Background(), c, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			cold, err := loadFixture(t, name, Options{ContextLength: 2048}).Stream(context.Background(), c, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.CachedTokens != len(prefix) || fmt.Sprint(got.IDs) != fmt.Sprint(cold.IDs) {
				t.Fatalf("reused %d tokens (want %d), generated %v; cold %v", got.CachedTokens, len(prefix), got.IDs, cold.IDs)
			}
			if st := m.PromptCacheStats(); st.Hits < 1 || st.Snapshots == 0 || st.Bytes <= 0 {
				t.Errorf("cache stats %+v", st)
			}
		})
	}
}

// TestPromptCacheBudget: snapshots stay within the memory budget, the
// least recently used leaving first.
func TestPromptCacheBudget(t *testing.T) {
	probe := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 1024})
	one := probe.Model.CacheBytes(301) // a prompt of 300 tokens and 1 generated, the largest snapshot below
	m := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 1024, PromptCacheBytes: 3 * one})
	opts := GenerateOptions{MaxTokens: 2, IgnoreEOS: true}
	var prompts [][]int32
	for i := range 4 {
		prompts = append(prompts, randomIDs(uint64(20+i), 300))
		if _, err := m.Stream(context.Background(), prompts[i], opts, nil); err != nil {
			t.Fatal(err)
		}
		if st := m.PromptCacheStats(); st.Bytes > 3*one {
			t.Fatalf("after %d prompts the snapshots hold %d bytes, over the budget of %d", i+1, st.Bytes, 3*one)
		}
	}
	// Each prompt left two snapshots (end of prompt and of generation):
	// the last prompt's are still there, the first prompt's are gone.
	for _, i := range []int{3, 0} {
		res, err := m.Stream(context.Background(), append(append([]int32{}, prompts[i]...), 9), opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i == 3 && res.CachedTokens < 300 || i == 0 && res.CachedTokens != 0 {
			t.Errorf("prompt %d: reused %d tokens", i, res.CachedTokens)
		}
	}
}

// TestStreamLogprobs: greedy tokens are the most likely alternative and
// carry its log-probability; a logits mask that forbids the first greedy
// token makes greedy decoding take the second most likely one.
func TestStreamLogprobs(t *testing.T) {
	m := loadFixture(t, "qwen3_moe-4bit", Options{ContextLength: 256})
	prompt := randomIDs(9, 20)
	var toks []Token
	opts := GenerateOptions{MaxTokens: 5, IgnoreEOS: true, Logprobs: true, TopLogprobs: 3}
	if _, err := m.Stream(context.Background(), prompt, opts, func(tk Token) error { toks = append(toks, tk); return nil }); err != nil {
		t.Fatal(err)
	}
	for i, tk := range toks {
		if tk.ID < 0 {
			continue // the decoder's flushed tail
		}
		if len(tk.Top) != 3 || tk.Top[0].ID != tk.ID || tk.Top[0].Logprob != tk.Logprob || tk.Logprob > 0 || tk.Top[1].Logprob > tk.Top[0].Logprob {
			t.Fatalf("token %d: %+v", i, tk)
		}
	}
	first, second := toks[0].ID, toks[0].Top[1].ID
	opts.LogitsMask = func(generated []int32, logits []float32) {
		if len(generated) == 0 {
			logits[first] = float32(math.Inf(-1))
		}
	}
	res, err := m.Stream(context.Background(), prompt, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.IDs[0] != second {
		t.Fatalf("masked first token %d, want the runner-up %d", res.IDs[0], second)
	}
}

// TestCachePointKept: under memory pressure the snapshot at a cache point
// outlives the conversation-end snapshots, which may not push it out.
func TestCachePointKept(t *testing.T) {
	probe := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 1024})
	prefix := randomIDs(30, 200)
	// Room for the prefix's snapshot and one conversation end, not two
	// ends: with plain LRU the unrelated prompts' ends would push the
	// prefix out.
	budget := probe.Model.CacheBytes(len(prefix)) + probe.Model.CacheBytes(403)
	m := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 1024, PromptCacheBytes: budget})
	opts := GenerateOptions{MaxTokens: 2, IgnoreEOS: true, CachePoints: []int{len(prefix)}}
	// Conversations of 400 tokens sharing the prefix, with unrelated
	// prompts in between that move the live cache away.
	for i := range 3 {
		conv := append(append([]int32{}, prefix...), randomIDs(uint64(31+i), 200)...)
		res, err := m.Stream(context.Background(), conv, opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && res.CachedTokens != len(prefix) {
			t.Fatalf("conversation %d reused %d tokens, want the %d-token prefix", i, res.CachedTokens, len(prefix))
		}
		if _, err := m.Stream(context.Background(), randomIDs(uint64(40+i), 300), GenerateOptions{MaxTokens: 2, IgnoreEOS: true}, nil); err != nil {
			t.Fatal(err)
		}
		if st := m.PromptCacheStats(); st.Bytes > budget {
			t.Fatalf("snapshots hold %d bytes, over the budget of %d", st.Bytes, budget)
		}
	}
}

// TestPromptCacheDir: the state at a cache point is saved, and a model
// loaded later with the same directory starts a conversation with that
// prefix from it, generating what a cold run generates; the files of
// another model are not used.
func TestPromptCacheDir(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			prefix := randomIDs(50, 600)
			opts := GenerateOptions{MaxTokens: 4, IgnoreEOS: true, CachePoints: []int{len(prefix)}}
			first, err := Load(fixture.Dir(t, "fixtures/"+name), Options{ContextLength: 2048, PromptCacheDir: dir, Experts: ExpertOptions{Policy: "resident"}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := first.Stream(context.Background(), append(append([]int32{}, prefix...), randomIDs(51, 100)...), opts, nil); err != nil {
				t.Fatal(err)
			}
			first.Close() // waits for the write
			second := append(append([]int32{}, prefix...), randomIDs(52, 80)...)
			restarted := loadFixture(t, name, Options{ContextLength: 2048, PromptCacheDir: dir})
			got, err := restarted.Stream(context.Background(), second, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			cold, err := loadFixture(t, name, Options{ContextLength: 2048}).Stream(context.Background(), second, opts, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got.CachedTokens != len(prefix) || fmt.Sprint(got.IDs) != fmt.Sprint(cold.IDs) {
				t.Fatalf("after a restart: reused %d tokens (want %d), generated %v; cold %v", got.CachedTokens, len(prefix), got.IDs, cold.IDs)
			}
			// A file cut short is reported and skipped.
			files, _ := filepath.Glob(filepath.Join(dir, "*.mlxcache"))
			if len(files) != 1 {
				t.Fatalf("%d cache files, want 1", len(files))
			}
			info, _ := os.Stat(files[0])
			os.Truncate(files[0], info.Size()/2)
			var log strings.Builder
			cut, err := Load(fixture.Dir(t, "fixtures/"+name), Options{ContextLength: 2048, PromptCacheDir: dir, Log: &log, Experts: ExpertOptions{Policy: "resident"}})
			if err != nil {
				t.Fatal(err)
			}
			defer cut.Close()
			if st := cut.PromptCacheStats(); st.Snapshots != 0 || !strings.Contains(log.String(), "cut short") {
				t.Fatalf("a truncated file: %+v, log %q", st, log.String())
			}
		})
	}
	// A file made for one fixture is not loaded for another.
	dir := t.TempDir()
	prefix := randomIDs(53, 300)
	opts := GenerateOptions{MaxTokens: 2, IgnoreEOS: true, CachePoints: []int{len(prefix)}}
	a, err := Load(fixture.Dir(t, "fixtures/qwen3_moe-4bit"), Options{ContextLength: 1024, PromptCacheDir: dir, Experts: ExpertOptions{Policy: "resident"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Stream(context.Background(), append(append([]int32{}, prefix...), 1, 2, 3), opts, nil); err != nil {
		t.Fatal(err)
	}
	a.Close()
	b := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 1024, PromptCacheDir: dir})
	if st := b.PromptCacheStats(); st.Snapshots != 0 {
		t.Fatalf("another model's prompt states were loaded: %+v", st)
	}
}
