// Command batch measures the engine's continuous batching (issue 19) on
// one model, every figure a ratio against a baseline taken in the same
// run:
//
//   - aggregate decode tokens per second with 1, 2 and 4 concurrent
//     greedy streams (the rate while all of them decode), and its ratio to
//     one stream;
//
//   - interleaving: a stream decodes alone (its inter-token gap), a long
//     prompt prefills alone (its time per chunk), then the long prompt
//     prefills next to the stream while a short request arrives: the
//     short request's time to first token in prefill chunks, and the
//     stream's inter-token gaps during the prefill against its solo gaps
//     at the same positions (a second solo run as long as it got, since
//     the stream's own attention grows as it decodes) and at its start.
//     The gaps are compared by the wall clock and by the process's CPU
//     time between the two tokens: on a shared machine the wall clock
//     also measures what other jobs took, the CPU time the work the
//     scheduler put in each step.
//
//     go run ./scripts/batch --model DIR [--memory 8GB] [--long 16384] [--chunk 256]
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/sample"
	"golang.org/x/sys/unix"
)

func main() {
	dir := flag.String("model", "", "model directory (default: the embedded model)")
	memory := flag.String("memory", "", "memory budget, e.g. 8GB (default: from available RAM)")
	policy := flag.String("policy", "", "expert policy (default: resident if the model fits, else exact)")
	tokens := flag.Int("tokens", 48, "tokens each stream decodes in the aggregate runs")
	streams := flag.String("streams", "1,2,4", "concurrent stream counts to measure")
	long := flag.Int("long", 16384, "tokens of the long prompt (0: skip the interleaving runs)")
	chunk := flag.Int("chunk", 0, "Options.PrefillChunk (0: the default)")
	pace := flag.Float64("pace", 0, "Options.PrefillPace (0: fixed chunks)")
	repeat := flag.Int("repeat", 3, "rounds of the aggregate runs (the counts interleaved; medians reported, as the machine may be shared)")
	flag.Parse()
	if err := run(*dir, *memory, *policy, *tokens, *streams, *long, *chunk, *pace, *repeat); err != nil {
		fmt.Fprintln(os.Stderr, "batch:", err)
		os.Exit(1)
	}
}

func run(dir, memory, policy string, tokens int, streamList string, long, chunk int, pace float64, repeat int) error {
	if dir == "" {
		cache, err := defaultmodel.CacheDir()
		if err != nil {
			return err
		}
		if dir, err = defaultmodel.Dir(cache); err != nil {
			return err
		}
	}
	var counts []int
	for _, f := range strings.Split(streamList, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("--streams %q: expected counts of 1 or more", streamList)
		}
		counts = append(counts, n)
	}
	opts := mlxmoe.Options{Device: "cpu", ContextLength: max(long+512, 1024), PrefillChunk: chunk, PrefillPace: pace,
		Parallel: max(slices.Max(counts), 3), // the interleaving runs three at once
		Experts:  mlxmoe.ExpertOptions{Policy: policy, NoWarmStart: true}, PromptCacheBytes: -1, Log: os.Stderr}
	if memory != "" {
		b, err := experts.ParseBytes(memory)
		if err != nil {
			return err
		}
		opts.Experts.Memory = b
	}
	m, err := mlxmoe.Load(dir, opts)
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Printf("model %s, %d sequences at once, context %d, prefill chunk %d, pace %g\n\n", m.Name, m.Parallel(), m.ContextLength(), m.PrefillChunk(), pace)
	if _, err := m.Generate(context.Background(), "warm up", mlxmoe.GenerateOptions{MaxTokens: 8}); err != nil {
		return err
	}

	rates := make([][]float64, len(counts))
	for range max(repeat, 1) {
		for i, n := range counts {
			rate, err := aggregate(m, n, tokens)
			if err != nil {
				return err
			}
			rates[i] = append(rates[i], rate)
		}
	}
	fmt.Printf("| streams | aggregate decode tok/s (median of %d) | vs %d stream(s) | per-stream tok/s | all rounds |\n", len(rates[0]), counts[0])
	fmt.Println("|---|---|---|---|---|")
	base := medianOf(rates[0])
	for i, n := range counts {
		r := medianOf(rates[i])
		var all []string
		for _, v := range rates[i] {
			all = append(all, fmt.Sprintf("%.0f", v))
		}
		fmt.Printf("| %d | %.1f | %.2fx | %.1f | %s |\n", n, r, r/base, r/float64(n), strings.Join(all, ", "))
	}
	if long > 0 {
		return interleave(m, long)
	}
	return nil
}

func greedy(n int) mlxmoe.GenerateOptions {
	return mlxmoe.GenerateOptions{MaxTokens: n, IgnoreEOS: true, Sampling: sample.Options{Temperature: 0}}
}

func prompt(seed uint64, n, vocab int) []int32 {
	rng := rand.New(rand.NewPCG(seed, 11))
	ids := make([]int32, n)
	for i := range ids {
		ids[i] = int32(rng.IntN(min(vocab, 4000)))
	}
	return ids
}

// aggregate runs n streams at once and returns their tokens per second
// while all of them decode: from the last first token to the first end.
func aggregate(m *mlxmoe.Model, n, tokens int) (float64, error) {
	stamps := make([][]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			s := m.NewSession()
			defer s.Close()
			_, errs[i] = s.Stream(context.Background(), prompt(uint64(100+i), 16, m.Model.Config.VocabSize), greedy(tokens),
				func(mlxmoe.Token) error {
					stamps[i] = append(stamps[i], time.Now())
					return nil
				})
		})
	}
	wg.Wait()
	var from, to time.Time
	for i, st := range stamps {
		if errs[i] != nil {
			return 0, errs[i]
		}
		if len(st) < 2 {
			return 0, fmt.Errorf("stream %d produced %d tokens", i, len(st))
		}
		if st[0].After(from) {
			from = st[0]
		}
		if to.IsZero() || st[len(st)-1].Before(to) {
			to = st[len(st)-1]
		}
	}
	count := 0
	for _, st := range stamps {
		for _, t := range st {
			if t.After(from) && !t.After(to) {
				count++
			}
		}
	}
	if !to.After(from) {
		return 0, fmt.Errorf("the streams did not decode together")
	}
	return float64(count) / to.Sub(from).Seconds(), nil
}

// interleave measures the long prompt's prefill next to a running stream
// and a short request arriving during it.
func interleave(m *mlxmoe.Model, long int) error {
	vocab := m.Model.Config.VocabSize
	ctx := context.Background()
	// The stream alone: its inter-token gap.
	solo, err := decode(ctx, m, prompt(7, 16, vocab), 64, nil)
	if err != nil {
		return err
	}
	soloGap := median(solo)
	// The long prompt alone: its prefill time per chunk.
	lp := prompt(8, long, vocab)
	s := m.NewSession()
	alone, err := s.Stream(ctx, lp, greedy(1), nil)
	s.Close()
	if err != nil {
		return err
	}
	chunk := m.PrefillChunk()
	chunks := (long + chunk - 1) / chunk
	perChunk := alone.Prefill / time.Duration(chunks)
	fmt.Printf("\nlong prompt of %d tokens alone: prefill %v (%d chunks of %d: %v per chunk, %.0f tok/s); a stream alone: inter-token gap %v (median)\n",
		long, alone.Prefill.Round(time.Millisecond), chunks, chunk, perChunk.Round(time.Millisecond),
		float64(long)/alone.Prefill.Seconds(), soloGap.Round(time.Microsecond))

	// Together: the stream decodes; the long prompt starts; two chunks'
	// time later a short request arrives.
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	decoding := make(chan struct{})
	var during []gap
	var derr error
	done := make(chan struct{})
	go func() {
		during, derr = decode(sctx, m, prompt(7, 16, vocab), m.ContextLength()-16, decoding)
		close(done)
	}()
	<-decoding
	time.Sleep(8 * soloGap)
	before := m.SchedulerStats()
	prefillStart := time.Now()
	var longRes mlxmoe.Result
	var longErr error
	var prefillEnd time.Time
	var wg sync.WaitGroup
	wg.Go(func() {
		s := m.NewSession()
		defer s.Close()
		opts := greedy(1)
		opts.LogitsMask = func([]int32, []float32) { prefillEnd = time.Now() }
		longRes, longErr = s.Stream(ctx, lp, opts, nil)
	})
	time.Sleep(2 * perChunk)
	shortSent := time.Now()
	var shortFirst time.Time
	ss := m.NewSession()
	opts := greedy(1)
	opts.LogitsMask = func([]int32, []float32) { shortFirst = time.Now() }
	_, shortErr := ss.Stream(ctx, prompt(9, 16, vocab), opts, nil)
	ss.Close()
	wg.Wait()
	st := m.SchedulerStats()
	stop()
	<-done
	if derr != nil || longErr != nil || shortErr != nil {
		return fmt.Errorf("together: stream %v, long prompt %v, short request %v", derr, longErr, shortErr)
	}
	var inPrefill []gap
	for _, g := range during {
		if g.end.After(prefillStart) && !g.end.After(prefillEnd) {
			inPrefill = append(inPrefill, g)
		}
	}
	if len(inPrefill) == 0 {
		return fmt.Errorf("the stream produced no token during the prefill")
	}
	worst := slices.MaxFunc(inPrefill, func(a, b gap) int { return int(a.d - b.d) }).d
	// The stream decodes thousands of tokens during the prefill, so its
	// own attention grows: its solo gaps at the same positions, from a
	// second solo run as long as it got, are the fair baseline.
	last := inPrefill[len(inPrefill)-1].i
	soloAll, err := decode(ctx, m, prompt(7, 16, vocab), last+2, nil)
	if err != nil {
		return err
	}
	if len(soloAll) <= last {
		return fmt.Errorf("the solo stream produced %d gaps, fewer than the %d of the stream during the prefill", len(soloAll), last+1)
	}
	byWindow := windowRatios(inPrefill, soloAll, gapWindow, func(g gap) time.Duration { return g.d })
	byCPU := windowRatios(inPrefill, soloAll, gapWindow, func(g gap) time.Duration { return g.cpu })
	var matched []gap
	for _, g := range inPrefill {
		matched = append(matched, soloAll[g.i])
	}
	ttft := shortFirst.Sub(shortSent)
	fmt.Printf("together: long prefill %v (%.2fx alone); the short request's first token after %v = %.2f chunks (target <= 2)\n",
		longRes.Prefill.Round(time.Millisecond), longRes.Prefill.Seconds()/alone.Prefill.Seconds(),
		ttft.Round(time.Millisecond), ttft.Seconds()/perChunk.Seconds())
	fmt.Printf("scheduler during the prefill: %d steps advanced %d sequences\n", st.Steps-before.Steps, st.Advanced-before.Advanced)
	fmt.Printf("the stream during the prefill: its tokens %d..%d; alone at the same positions its gap is %v (median; %v at the start)\n",
		inPrefill[0].i+1, last+1, median(matched).Round(time.Microsecond), soloGap.Round(time.Microsecond))
	worstWin := slices.Index(byWindow, slices.Max(byWindow))
	fmt.Printf("  against its solo gaps at the same positions, per %d-token window: median %.2fx, 90th percentile %.2fx, max %.2fx at tokens %d.. (target < 3x); overall median %.2fx\n",
		gapWindow, medianOf(byWindow), percentile(byWindow, 0.9), byWindow[worstWin], inPrefill[worstWin*gapWindow].i+1,
		median(inPrefill).Seconds()/median(matched).Seconds())
	var bins []string
	for lo := 0; lo < len(byWindow); lo += binWindows {
		b := byWindow[lo:min(lo+binWindows, len(byWindow))]
		bins = append(bins, fmt.Sprintf("%d.. %.2fx/%.2fx", inPrefill[lo*gapWindow].i+1, medianOf(b), slices.Max(b)))
	}
	fmt.Printf("  by position (tokens from: median/max of the windows): %s\n", strings.Join(bins, ", "))
	worstCPU := slices.Index(byCPU, slices.Max(byCPU))
	fmt.Printf("  by CPU time (the process's, between the two tokens), per window: median %.2fx, 90th percentile %.2fx, max %.2fx at tokens %d..\n",
		medianOf(byCPU), percentile(byCPU, 0.9), byCPU[worstCPU], inPrefill[worstCPU*gapWindow].i+1)
	fmt.Printf("  against its solo gap at the start: inter-token gap median %v (%.2fx solo), max %v (%.2fx solo)\n",
		median(inPrefill).Round(time.Microsecond), median(inPrefill).Seconds()/soloGap.Seconds(),
		worst.Round(time.Microsecond), worst.Seconds()/soloGap.Seconds())
	return nil
}

// gap is the time between two tokens of a stream (wall clock, and the
// process's CPU time), when the second came and its index among the
// stream's gaps.
type gap struct {
	d, cpu time.Duration
	end    time.Time
	i      int
}

// gapWindow is how many consecutive gaps windowRatios compares at a time;
// binWindows how many windows a line of the by-position summary takes.
const (
	gapWindow  = 64
	binWindows = 32
)

// windowRatios cuts gaps into windows of n consecutive ones and returns,
// per window, the median of their length (by) over the median of solo's
// at the same indices: the slowdown at that depth, robust to single
// held-up steps.
func windowRatios(gaps, solo []gap, n int, by func(gap) time.Duration) []float64 {
	var out []float64
	for lo := 0; lo < len(gaps); lo += n {
		w := gaps[lo:min(lo+n, len(gaps))]
		var s []gap
		for _, g := range w {
			s = append(s, solo[g.i])
		}
		out = append(out, medianBy(w, by).Seconds()/medianBy(s, by).Seconds())
	}
	return out
}

// decode runs a greedy stream of n tokens (or until ctx is done) in a
// session of its own and returns its inter-token gaps, timed when the
// scheduler samples each token (the mask hook runs there; emit runs in
// this goroutine, which a loaded machine may wake late); decoding, if set,
// is closed at its first token.
func decode(ctx context.Context, m *mlxmoe.Model, p []int32, n int, decoding chan struct{}) ([]gap, error) {
	s := m.NewSession()
	defer s.Close()
	var out []gap
	var last time.Time
	var lastCPU time.Duration
	opts := greedy(n)
	opts.LogitsMask = func([]int32, []float32) {
		now, cpu := time.Now(), processCPU()
		if !last.IsZero() {
			out = append(out, gap{now.Sub(last), cpu - lastCPU, now, len(out)})
		}
		last, lastCPU = now, cpu
	}
	first := true
	_, err := s.Stream(ctx, p, opts, func(mlxmoe.Token) error {
		if first && decoding != nil {
			close(decoding)
		}
		first = false
		return nil
	})
	return out, err
}

func medianOf(vs []float64) float64 { return percentile(vs, 0.5) }

// percentile is the value a fraction p of vs lies below.
func percentile(vs []float64, p float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func median(gs []gap) time.Duration { return medianBy(gs, func(g gap) time.Duration { return g.d }) }

func medianBy(gs []gap, by func(gap) time.Duration) time.Duration {
	ds := make([]time.Duration, len(gs))
	for i, g := range gs {
		ds[i] = by(g)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// processCPU is the CPU time the process has used, all threads.
func processCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		panic(err) // supported wherever the engine runs (Linux, macOS)
	}
	return time.Duration(ts.Nano())
}
