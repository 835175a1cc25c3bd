// Command pagerio measures the expert pager's reads on a real checkpoint
// (usually one written by `mlx-moe synth`) in isolation from compute, next
// to a raw O_DIRECT sequential read of the same files in the same run:
//
//	go run ./scripts/scale/pagerio --model /tmp/synth-coder-next --memory 10GB
//
// It replays decode: for each token, each MoE layer resolves top-k experts
// drawn from the synthetic router's popularity (synth.RouteShares), with no
// kernels run. --layer-ms sleeps that long per layer as stand-in compute
// (the CPU stays free for the reads) and --prefetch starts each next
// layer's true routes before the current layer's Resolve, the best a
// predictor can do, so that the overlap of IO with compute can be seen.
// The raw read takes the files in 8 MiB O_DIRECT reads, one reader, like
// `dd iflag=direct bs=8M`, before and after the replay, at random places.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/internal/synth"
	"github.com/mlx-moe/mlx-moe/model"
)

func main() {
	dir := flag.String("model", "", "checkpoint directory (required)")
	memory := flag.String("memory", "", "budget for the slots and the model's resident weights, e.g. 10GB (or --capacity)")
	capacity := flag.Int("capacity", 0, "slots per MoE layer")
	tokens := flag.Int("tokens", 64, "decode steps to replay")
	warmup := flag.Int("warmup", 16, "decode steps before measuring (fills the slots)")
	workers := flag.Int("workers", 0, "IO workers (0: the pager's default)")
	layerMS := flag.Float64("layer-ms", 0, "stand-in compute per MoE layer, in milliseconds")
	prefetch := flag.Bool("prefetch", false, "prefetch each next layer's true routes before resolving the current one")
	spin := flag.Bool("spin", false, "make the stand-in compute busy loops on every P (as the CPU kernels do) instead of sleeps")
	rawGB := flag.Float64("raw-gb", 2, "GB of the files to read raw, before and after")
	seed := flag.Uint64("seed", 1, "seed of the routes")
	flag.Parse()
	if err := run(*dir, *memory, *capacity, *tokens, *warmup, *workers, *layerMS, *prefetch, *spin, *rawGB, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "pagerio:", err)
		os.Exit(1)
	}
}

func run(dir, memory string, capacity, tokens, warmup, workers int, layerMS float64, prefetch, spin bool, rawGB float64, seed uint64) error {
	if dir == "" {
		return fmt.Errorf("--model is required")
	}
	m, err := model.LoadWith(dir, model.LoadOptions{LazyExperts: true})
	if err != nil {
		return err
	}
	defer m.Close()
	specs := m.PagerLayers()
	sources := m.ExpertSources()
	if len(sources) == 0 {
		return fmt.Errorf("%s has no routed experts", dir)
	}
	layout, err := experts.NewDirectLayout(sources[0].Layer, specs[sources[0].Layer])
	if err != nil {
		return err
	}
	n, topK := sources[0].Count, m.Config.NumExpertsPerTok
	if capacity == 0 {
		budget, err := experts.ParseBytes(memory)
		if err != nil {
			return fmt.Errorf("--memory or --capacity: %w", err)
		}
		plan, err := experts.NewPlan(experts.PlanInput{Memory: budget, Resident: m.ResidentBytes(), MoELayers: len(sources),
			Experts: n, TopK: topK, SlotBytes: layout.SlotStride, Scratch: experts.IOScratchBytes()})
		if err != nil {
			return err
		}
		capacity = plan.Capacity
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no safetensors files in %s", dir)
	}
	rawRand := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	before, err := rawRead(files, int64(rawGB*1e9), rawRand)
	if err != nil {
		return err
	}

	p, err := experts.New(experts.Config{Layers: specs, Capacity: capacity, Policy: experts.Exact, DirectIO: true, IOWorkers: workers})
	if err != nil {
		return err
	}
	defer p.Close()
	routes := newRoutes(sources, topK, seed)
	slots := make([]int32, topK)
	step := func() error {
		next := routes.token()
		for i, src := range sources {
			if prefetch && i+1 < len(sources) {
				p.Prefetch(sources[i+1].Layer, next[i+1])
			}
			if err := p.Resolve(src.Layer, next[i], slots); err != nil {
				return err
			}
			compute(time.Duration(layerMS*float64(time.Millisecond)), spin)
		}
		return nil
	}
	for range warmup {
		if err := step(); err != nil {
			return err
		}
	}
	st0 := p.Stats()
	start := time.Now()
	for range tokens {
		if err := step(); err != nil {
			return err
		}
	}
	wall := time.Since(start)
	st := p.Stats()
	after, err := rawRead(files, int64(rawGB*1e9), rawRand)
	if err != nil {
		return err
	}

	bytes := st.Total.Bytes - st0.Total.Bytes
	busy := st.IOBusy - st0.IOBusy
	hits, misses := st.Total.Hits-st0.Total.Hits, st.Total.Misses-st0.Total.Misses
	wait := st.Total.IOWait - st0.Total.IOWait
	gbps := float64(bytes) / busy.Seconds() / 1e9
	depth := float64(st.ReadsTime-st0.ReadsTime) / float64(busy)
	raw := (before + after) / 2
	fmt.Printf("model %s: %d MoE layers x %d experts (top-%d), %d slots per layer, direct IO %s\n", dir, len(sources), n, topK, capacity, st.DirectIO)
	fmt.Printf("replay: %d tokens after %d warm-up, stand-in compute %.2f ms per layer (busy on every P: %v), prefetch %v\n", tokens, warmup, layerMS, spin, prefetch)
	fmt.Printf("hit rate %.1f%% (%d hits, %d misses), %.1f MB read per token\n", 100*float64(hits)/float64(max(1, hits+misses)), hits, misses, float64(bytes)/1e6/float64(tokens))
	fmt.Printf("pager: %.3f GB in %.3f s with a read in flight: %.3f GB/s; %.1f reads in flight on average (at most %d)\n", float64(bytes)/1e9, busy.Seconds(), gbps, depth, st.MaxInFlight)
	fmt.Printf("per token: %.1f ms wall, %.1f ms waiting for reads, %.1f ms stand-in compute\n",
		1e3*wall.Seconds()/float64(tokens), 1e3*wait.Seconds()/float64(tokens), layerMS*float64(len(sources)))
	fmt.Printf("raw O_DIRECT read (8 MiB sequential reads at random places, 1 reader): %.3f GB/s before, %.3f GB/s after\n", before, after)
	// After the replay the host of a virtual disk has cached around what the
	// pager read, so the cold read before is the fair baseline.
	fmt.Printf("pager / raw before: %.2f (pager / mean of both: %.2f)\n", gbps/before, gbps/raw)
	return nil
}

// compute stands in for a layer's kernels: a sleep, or busy loops on every
// P of the runtime for d, split in short chunks as the kernels' parallel
// loops are.
func compute(d time.Duration, spin bool) {
	if d <= 0 {
		return
	}
	if !spin {
		time.Sleep(d)
		return
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				stop := time.Now().Add(200 * time.Microsecond)
				for time.Now().Before(stop) {
				}
			})
		}
		wg.Wait()
	}
}

// routes draws each layer's top-k from the synthetic router's popularity,
// with a random expert order per layer (as synth.Write permutes them).
type routes struct {
	r      *rand.Rand
	topK   int
	shares [][]float64 // by layer, by rank
	perm   [][]int32   // rank -> expert id
}

func newRoutes(sources []*model.ExpertSource, topK int, seed uint64) *routes {
	rt := &routes{r: rand.New(rand.NewPCG(seed, 13)), topK: topK}
	for i, src := range sources {
		s, err := synth.RouteShares(i, len(sources), src.Count)
		if err != nil {
			panic(err) // the arguments come from the model: cannot be out of range
		}
		rt.shares = append(rt.shares, s)
		perm := make([]int32, src.Count)
		for j, v := range rt.r.Perm(src.Count) {
			perm[j] = int32(v)
		}
		rt.perm = append(rt.perm, perm)
	}
	return rt
}

// token draws one decode step's routes: per layer, k distinct experts,
// each draw in proportion to the shares of those not yet drawn.
func (rt *routes) token() [][]int32 {
	out := make([][]int32, len(rt.shares))
	for l, shares := range rt.shares {
		w := slices.Clone(shares)
		for range min(rt.topK, len(w)) {
			total := 0.0
			for _, v := range w {
				total += v
			}
			x := rt.r.Float64() * total
			pick := len(w) - 1
			for i, v := range w {
				if x < v {
					pick = i
					break
				}
				x -= v
			}
			w[pick] = 0
			out[l] = append(out[l], rt.perm[l][pick])
		}
	}
	return out
}

// rawRead reads limit bytes of the files with O_DIRECT in 8 MiB reads, one
// reader, each at a random 8 MiB boundary of the files (in proportion to
// their sizes), and returns GB/s. A virtual disk's host caches what was read
// lately, at whatever place; scattered 8 MiB reads see the same mix of
// cached and uncached blocks as the pager's reads, where one contiguous
// region might be all one or the other.
func rawRead(files []string, limit int64, r *rand.Rand) (float64, error) {
	const chunk = 8 << 20
	type file struct {
		f      *os.File
		chunks int64
	}
	var fs []file
	var total int64
	defer func() {
		for _, f := range fs {
			f.f.Close()
		}
	}()
	for _, name := range files {
		f, err := os.OpenFile(name, os.O_RDONLY|syscall.O_DIRECT, 0)
		if err != nil {
			return 0, fmt.Errorf("raw read: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return 0, err
		}
		fs = append(fs, file{f, st.Size() / chunk})
		total += st.Size() / chunk
	}
	if total == 0 {
		return 0, fmt.Errorf("raw read: the files are smaller than one read")
	}
	buf := aligned(chunk)
	var done int64
	start := time.Now()
	for done < limit {
		c := r.Int64N(total)
		i := 0
		for c >= fs[i].chunks {
			c -= fs[i].chunks
			i++
		}
		k, err := fs[i].f.ReadAt(buf, c*chunk)
		done += int64(k)
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("raw read of %s at %d: %w", files[i], c*chunk, err)
		}
	}
	return float64(done) / time.Since(start).Seconds() / 1e9, nil
}

func aligned(n int) []byte {
	b := make([]byte, n+4096)
	skip := (4096 - int(uintptr(unsafe.Pointer(&b[0]))%4096)) % 4096
	return b[skip : skip+n]
}
