// Command soak runs a multi-turn conversation through one Session with the
// experts paged at a budget well under the model's size, and records per
// turn the process RSS, the Go heap, the decode speed, the expert hit rate
// and the bytes read per token. It fails (exit 1) when the heap or the RSS
// of a later turn differs from turn 1's by more than --tolerance:
//
//	go run ./scripts/soak --turns 20 --capacity 16              # the embedded model
//	go run ./scripts/soak --model /tmp/synth-coder-next --memory 10GB --direct-io
//
// Each turn appends a user message (random token ids below the tokenizer's
// vocabulary, so any checkpoint works; the first one long, as an agent's
// system prompt and task are) to the conversation so far, and the session
// reuses the cached prefix, as a chat client does.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/sample"
)

func main() {
	dir := flag.String("model", "", "model directory (default: the embedded model)")
	memory := flag.String("memory", "", "memory budget, e.g. 10GB")
	capacity := flag.Int("capacity", 0, "expert slots per MoE layer (instead of --memory)")
	policy := flag.String("policy", "exact", "exact or fast")
	directIO := flag.Bool("direct-io", false, "read experts with O_DIRECT")
	turns := flag.Int("turns", 20, "conversation turns")
	firstTokens := flag.Int("first-tokens", 256, "tokens of the first message (a system prompt and a task: it fills the expert slots, as an agent's first request does)")
	userTokens := flag.Int("user-tokens", 24, "tokens of each later user message")
	newTokens := flag.Int("new-tokens", 48, "tokens generated per turn")
	context := flag.Int("context", 4096, "context length")
	tolerance := flag.Float64("tolerance", 0.02, "largest relative change of heap and RSS after turn 1")
	flag.Parse()
	if err := run(*dir, *memory, *capacity, *policy, *directIO, *turns, *firstTokens, *userTokens, *newTokens, *context, *tolerance); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type turn struct {
	rss, heap            int64
	tokS, hitRate, bytes float64
}

func run(dir, memory string, capacity int, policy string, directIO bool, turns, firstTokens, userTokens, newTokens, ctxLen int, tolerance float64) error {
	if dir == "" {
		cache, err := defaultmodel.CacheDir()
		if err != nil {
			return err
		}
		if dir, err = defaultmodel.Dir(cache); err != nil {
			return err
		}
	}
	eo := mlxmoe.ExpertOptions{Policy: policy, Capacity: capacity, DirectIO: directIO, NoWarmStart: true, Prefetch: true}
	if memory != "" {
		n, err := experts.ParseBytes(memory)
		if err != nil {
			return fmt.Errorf("--memory: %w", err)
		}
		eo.Memory = n
	}
	m, err := mlxmoe.Load(dir, mlxmoe.Options{ContextLength: ctxLen, Experts: eo, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer m.Close()
	if _, ok := m.ExpertStats(); !ok {
		return fmt.Errorf("policy %q pages no experts", policy)
	}
	if need := firstTokens + turns*(userTokens+newTokens); need > ctxLen {
		return fmt.Errorf("a first message of %d tokens and %d turns of %d+%d tokens need a context of %d, have %d", firstTokens, turns, userTokens, newTokens, need, ctxLen)
	}
	perPos, err := cacheBytesPerPosition(m)
	if err != nil {
		return err
	}
	vocab := m.Tok.VocabSize()
	r := rand.New(rand.NewPCG(1, 2))
	s := m.NewSession()
	var conv []int32
	var rows []turn
	var ctx []int
	prev, _ := m.ExpertStats()
	fmt.Printf("%4s %8s %10s %10s %8s %9s %9s %10s\n", "turn", "context", "RSS MB", "heap MB", "tok/s", "TTFT s", "hit rate", "MB read/tok")
	for t := range turns {
		msg := userTokens
		if t == 0 {
			msg = firstTokens
		}
		for range msg {
			conv = append(conv, int32(r.IntN(vocab)))
		}
		res, err := s.Stream(context.Background(), conv, mlxmoe.GenerateOptions{MaxTokens: newTokens, IgnoreEOS: true,
			Sampling: sample.Options{Temperature: 1, Seed: uint64(t)}}, nil)
		if err != nil {
			return fmt.Errorf("turn %d: %w", t+1, err)
		}
		conv = append(conv, res.IDs...)
		st, _ := m.ExpertStats()
		hits, misses := st.Total.Hits-prev.Total.Hits, st.Total.Misses-prev.Total.Misses
		row := turn{tokS: res.DecodeTokensPerSecond(), hitRate: float64(hits) / float64(max(1, hits+misses)),
			bytes: float64(st.Total.Bytes-prev.Total.Bytes) / float64(res.PromptTokens-res.CachedTokens+len(res.IDs))}
		prev = st
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		row.heap = int64(ms.HeapAlloc)
		if row.rss, _, err = experts.ProcessMemory(); err != nil {
			return err
		}
		rows = append(rows, row)
		ctx = append(ctx, len(conv))
		fmt.Printf("%4d %8d %10.1f %10.2f %8.2f %9.3f %8.1f%% %10.2f\n", t+1, len(conv), float64(row.rss)/1e6, float64(row.heap)/1e6,
			row.tokS, res.Prefill.Seconds(), 100*row.hitRate, row.bytes/1e6)
	}
	// Growth beyond the snapshots' share of the added context, relative to
	// the baseline turn.
	base := min(1, len(rows)-1)
	var worstRSS, worstHeap, rawRSS, rawHeap float64
	for i := base + 1; i < len(rows); i++ {
		row, b := rows[i], rows[base]
		state := float64(snapshots) * perPos * float64(ctx[i]-ctx[base])
		worstRSS = math.Max(worstRSS, (float64(row.rss-b.rss)-state)/float64(b.rss))
		worstHeap = math.Max(worstHeap, (float64(row.heap-b.heap)-state)/float64(b.heap))
		rawRSS = math.Max(rawRSS, math.Abs(float64(row.rss-b.rss))/float64(b.rss))
		rawHeap = math.Max(rawHeap, math.Abs(float64(row.heap-b.heap))/float64(b.heap))
	}
	st, _ := m.ExpertStats()
	fmt.Printf("sequence cache: %.0f bytes per position; after turn %d, RSS and Go heap moved at most %.2f%% and %.2f%% of turn %d's\n", perPos, base+1, 100*rawRSS, 100*rawHeap, base+1)
	fmt.Printf("beyond %d snapshots of the added context: RSS %+.2f%%, heap %+.2f%% (tolerance %.0f%%)\n%s", snapshots, 100*worstRSS, 100*worstHeap, 100*tolerance, st.String())
	if worstRSS > tolerance || worstHeap > tolerance {
		return fmt.Errorf("memory grew beyond the conversation's state after turn %d: RSS %+.2f%%, heap %+.2f%%", base+1, 100*worstRSS, 100*worstHeap)
	}
	return nil
}

// snapshots is how many sequence caches a Session keeps besides the live
// one (mlxmoe's maxSnapshots).
const snapshots = 4

// cacheBytesPerPosition measures the heap a sequence cache of the model
// takes per position on the CPU executor.
func cacheBytesPerPosition(m *mlxmoe.Model) (float64, error) {
	e, err := mlxmoe.NewExecutor("cpu", io.Discard)
	if err != nil {
		return 0, err
	}
	const n = 2048
	heap := func() float64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return float64(ms.HeapAlloc)
	}
	h0 := heap()
	small := m.Model.NewCache(e, 1)
	h1 := heap()
	big := m.Model.NewCache(e, n+1)
	h2 := heap()
	runtime.KeepAlive(small)
	runtime.KeepAlive(big)
	return math.Max(0, (h2-h1)-(h1-h0)) / n, nil
}
