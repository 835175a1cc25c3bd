package mlxmoe

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/sample"
)

// run is one generation's output with the logits each token was sampled
// from (copies taken in the mask hook, which sees them before sampling).
type run struct {
	res    Result
	logits [][]float32
	err    error
}

// recording returns opts with a mask hook that records the logits into r.
func recording(opts GenerateOptions, r *run) GenerateOptions {
	opts.LogitsMask = func(_ []int32, logits []float32) { r.logits = append(r.logits, slices.Clone(logits)) }
	return opts
}

// alone runs each prompt by itself, one after the other, each in a fresh
// session (nothing cached).
func alone(t *testing.T, m *Model, prompts [][]int32, opts []GenerateOptions) []run {
	t.Helper()
	out := make([]run, len(prompts))
	for i, p := range prompts {
		s := m.NewSession()
		out[i].res, out[i].err = s.Stream(context.Background(), p, recording(opts[i], &out[i]), nil)
		s.Close()
		if out[i].err != nil {
			t.Fatalf("prompt %d alone: %v", i, out[i].err)
		}
	}
	return out
}

// together runs the prompts from one goroutine each, all at once, on the
// model's default session.
func together(m *Model, prompts [][]int32, opts []GenerateOptions) []run {
	out := make([]run, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Go(func() {
			out[i].res, out[i].err = m.Stream(context.Background(), p, recording(opts[i], &out[i]), nil)
		})
	}
	wg.Wait()
	return out
}

// sameAsAlone runs the prompts alone, then together, and checks that each
// generated together what it generated alone; it returns the runs
// together.
func sameAsAlone(t *testing.T, m *Model, prompts [][]int32, opts []GenerateOptions) []run {
	t.Helper()
	want := alone(t, m, prompts, opts)
	got := together(m, prompts, opts)
	for i := range prompts {
		if got[i].err != nil {
			t.Fatalf("prompt %d together: %v", i, got[i].err)
		}
		sameRun(t, fmt.Sprintf("prompt %d", i), got[i], want[i], -1)
	}
	return got
}

// sameRun checks that got generated what want did, from logits within
// 1e-5 (the first n tokens; n < 0: all, and as many).
func sameRun(t *testing.T, what string, got, want run, n int) {
	t.Helper()
	if n < 0 {
		n = len(want.res.IDs)
		if len(got.res.IDs) != n {
			t.Errorf("%s: %d tokens %v, alone %d %v", what, len(got.res.IDs), got.res.IDs, n, want.res.IDs)
			return
		}
	}
	if len(got.res.IDs) < n || !slices.Equal(got.res.IDs[:n], want.res.IDs[:n]) {
		t.Errorf("%s: tokens %v, alone %v (first %d compared)", what, got.res.IDs, want.res.IDs, n)
		return
	}
	if worst := maxDiff(got.logits[:n], want.logits); worst > 1e-5 {
		t.Errorf("%s: logits differ by up to %g from the run alone", what, worst)
	}
}

// maxDiff is the largest difference between got's logits and want's (for
// as many steps as got has).
func maxDiff(got, want [][]float32) float64 {
	worst := 0.0
	for k := range got {
		for j, v := range got[k] {
			worst = max(worst, math.Abs(float64(v-want[k][j])))
		}
	}
	return worst
}

func greedy(n int) GenerateOptions {
	return GenerateOptions{MaxTokens: n, IgnoreEOS: true, Sampling: sample.Options{Temperature: 0}}
}

func repeatOpts(o GenerateOptions, n int) []GenerateOptions {
	out := make([]GenerateOptions, n)
	for i := range out {
		out[i] = o
	}
	return out
}

// TestSchedIdentical: four greedy generations run together produce the
// tokens each produces alone, from logits within 1e-5, on the fixtures
// (hybrid linear attention and plain attention) and the embedded model;
// the scheduler did batch them (steps advanced several sequences).
func TestSchedIdentical(t *testing.T) {
	load := map[string]func(t *testing.T) *Model{
		"qwen3_next-4bit": func(t *testing.T) *Model { return loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 2048}) },
		"qwen3_moe-4bit":  func(t *testing.T) *Model { return loadFixture(t, "qwen3_moe-4bit", Options{ContextLength: 2048}) },
		"embedded": func(t *testing.T) *Model {
			m, err := Load(embeddedModel(), Options{Device: "cpu", ContextLength: 2048, Experts: ExpertOptions{Policy: "resident", NoWarmStart: true}})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			return m
		},
	}
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit", "embedded"} {
		t.Run(name, func(t *testing.T) {
			m := load[name](t)
			// Lengths that cross prefill chunks, so prompts prefill while
			// others decode.
			prompts := [][]int32{randomIDs(41, 600), randomIDs(42, 7), randomIDs(43, 300), randomIDs(44, 40)}
			before := m.SchedulerStats()
			sameAsAlone(t, m, prompts, repeatOpts(greedy(24), len(prompts)))
			st := m.SchedulerStats()
			steps, advanced := st.Steps-before.Steps, st.Advanced-before.Advanced
			t.Logf("together: %d steps advanced %d sequences (%.2f per step)", steps, advanced, float64(advanced)/float64(steps))
			if advanced <= steps {
				t.Errorf("no step advanced more than one sequence (%d steps, %d advanced)", steps, advanced)
			}
			if st.Running != 0 || st.Waiting != 0 {
				t.Errorf("after the generations: %d running, %d waiting", st.Running, st.Waiting)
			}
		})
	}
}

// TestSchedCancel: a sequence cancelled mid-prefill stops at a chunk
// boundary (what it prefilled stays cached) and one cancelled mid-decode
// ends with "cancelled" and the tokens so far; the stream running next to
// them generates what it generates alone.
func TestSchedCancel(t *testing.T) {
	for _, name := range []string{"qwen3_next-4bit", "qwen3_moe-4bit"} {
		t.Run(name, func(t *testing.T) {
			m := loadFixture(t, name, Options{ContextLength: 4096})
			long, short, runner := randomIDs(51, 3000), randomIDs(52, 20), randomIDs(53, 30)
			want := alone(t, m, [][]int32{runner, short}, []GenerateOptions{greedy(40), greedy(20)})

			// The cancelled sequence starts once the runner decodes; each
			// step asks its context once, so cancelAfter{n} lets it run n
			// steps.
			for _, tc := range []struct {
				what   string
				prompt []int32
				n      int
			}{{"mid-prefill", long, 3}, {"mid-decode", short, 6}} {
				var other run
				var started sync.Once
				var wg sync.WaitGroup
				var r run
				opts := greedy(40)
				// In a session of its own: a prefix cached by the case before
				// would be processed differently (decode kernels for its
				// last token) from the run alone.
				rs := m.NewSession()
				r.res, r.err = rs.Stream(context.Background(), runner, recording(opts, &r), func(Token) error {
					started.Do(func() {
						wg.Go(func() {
							ctx := &cancelAfter{Context: context.Background(), n: tc.n}
							other.res, other.err = m.Stream(ctx, tc.prompt, recording(greedy(20), &other), nil)
						})
					})
					return nil
				})
				wg.Wait()
				rs.Close()
				if r.err != nil {
					t.Fatal(r.err)
				}
				sameRun(t, tc.what+": the running stream", r, want[0], -1)
				if other.res.FinishReason != "cancelled" {
					t.Errorf("%s: finish %q, want cancelled", tc.what, other.res.FinishReason)
				}
				switch tc.what {
				case "mid-prefill":
					if other.err != context.Canceled || len(other.res.IDs) != 0 {
						t.Errorf("mid-prefill: err %v, %d tokens", other.err, len(other.res.IDs))
					}
					// Its three chunks stay in its lane.
					lane := m.session.lanes[slices.IndexFunc(m.session.lanes, func(l *lane) bool {
						return len(l.tokens) > 0 && l.tokens[0] == long[0] && isPrefix(l.tokens, long)
					})]
					if got := len(lane.tokens); got != 3*m.prefillChunk() {
						t.Errorf("mid-prefill: the lane holds %d prompt tokens, want 3 chunks (%d)", got, 3*m.prefillChunk())
					}
				case "mid-decode":
					if other.err != nil || len(other.res.IDs) != tc.n {
						t.Errorf("mid-decode: err %v, %d tokens, want %d", other.err, len(other.res.IDs), tc.n)
					}
					sameRun(t, "mid-decode: the cancelled stream", other, want[1], len(other.res.IDs))
				}
			}
		})
	}
}

// TestSchedContextExhausted: a sequence that fills the context ends with
// "length" at the context's end, while the sequences next to it generate
// what they generate alone.
func TestSchedContextExhausted(t *testing.T) {
	m := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 128})
	prompts := [][]int32{randomIDs(61, 100), randomIDs(62, 20), randomIDs(63, 10)}
	got := sameAsAlone(t, m, prompts, []GenerateOptions{greedy(1000), greedy(60), greedy(60)})
	if r := got[0].res; r.FinishReason != "length" || len(r.IDs) != 128-100 {
		t.Errorf("the long sequence: finish %q after %d tokens, want length after %d", r.FinishReason, len(r.IDs), 128-100)
	}
}

// TestSchedManyGoroutines: with more generations than Parallel, the rest
// wait their turn; each generates what it generates alone, no step
// advances more than Parallel sequences and the session has no more lanes.
func TestSchedManyGoroutines(t *testing.T) {
	m := loadFixture(t, "qwen3_moe-4bit", Options{ContextLength: 512, Parallel: 2})
	var prompts [][]int32
	for i := range 8 {
		prompts = append(prompts, randomIDs(uint64(70+i), 20+37*i))
	}
	sameAsAlone(t, m, prompts, repeatOpts(greedy(12), len(prompts)))
	if n := len(m.session.lanes); n > 2 {
		t.Errorf("the default session has %d lanes, at most Parallel (2) may exist", n)
	}
	if st := m.SchedulerStats(); st.Batch[len(st.Batch)-1] != 0 || st.Batch[bucket(3)] != 0 {
		t.Errorf("steps advanced more than 2 sequences: %v", st.Batch)
	}
}

// TestSchedChats: chats on one model answer from many goroutines at once,
// each as it answers alone.
func TestSchedChats(t *testing.T) {
	m := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 1024})
	ask := func(i int) (Reply, error) {
		c, err := m.NewChat(ChatOptions{System: "You are terse."})
		if err != nil {
			return Reply{}, err
		}
		defer c.Close()
		if _, err := c.Send(context.Background(), fmt.Sprintf("question %d", i), greedy(8)); err != nil {
			return Reply{}, err
		}
		return c.Send(context.Background(), "and then?", greedy(8))
	}
	var want [6]Reply
	for i := range want {
		var err error
		if want[i], err = ask(i); err != nil {
			t.Fatal(err)
		}
	}
	var got [6]Reply
	var errs [6]error
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() { got[i], errs[i] = ask(i) })
	}
	wg.Wait()
	for i := range got {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if !slices.Equal(got[i].IDs, want[i].IDs) || got[i].Usage.CachedTokens != want[i].Usage.CachedTokens {
			t.Errorf("chat %d: %v (cached %d), alone %v (cached %d)", i, got[i].IDs, got[i].Usage.CachedTokens, want[i].IDs, want[i].Usage.CachedTokens)
		}
	}
}

// TestSchedCancelWaiting: a generation whose caller leaves while it waits
// for a place in the batch ends "cancelled" without running.
func TestSchedCancelWaiting(t *testing.T) {
	m := loadFixture(t, "qwen3_moe-4bit", Options{ContextLength: 512, Parallel: 1})
	var waiting Result
	var werr error
	var once sync.Once
	var wg sync.WaitGroup
	steps := m.SchedulerStats().Steps
	res, err := m.Stream(context.Background(), randomIDs(81, 30), greedy(400), func(Token) error {
		once.Do(func() {
			ctx, cancel := context.WithCancel(context.Background())
			var ended atomic.Bool
			wg.Go(func() {
				waiting, werr = m.Stream(ctx, randomIDs(82, 30), greedy(30), nil)
				ended.Store(true)
			})
			for m.SchedulerStats().Waiting == 0 && !ended.Load() {
				runtime.Gosched()
			}
			cancel()
		})
		return nil
	})
	wg.Wait()
	if err != nil || len(res.IDs) != 400 {
		t.Fatalf("the running generation: %d tokens, %v", len(res.IDs), err)
	}
	if werr != context.Canceled || waiting.FinishReason != "cancelled" || len(waiting.IDs) != 0 || waiting.CachedTokens != 0 {
		t.Errorf("the waiting one: err %v, finish %q, %d tokens", werr, waiting.FinishReason, len(waiting.IDs))
	}
	if st := m.SchedulerStats(); st.Steps-steps != 400 || st.Advanced != st.Steps {
		t.Errorf("%d steps (want 400, the running generation's), %d sequences advanced", st.Steps-steps, st.Advanced)
	}
}

// TestSchedPacer: the paced chunk fills what the step budget leaves after
// the decode tokens, in multiples of minChunk when it is that large, else
// what fits (at least one token), at most the chunk; before anything is
// measured it starts at minChunk.
func TestSchedPacer(t *testing.T) {
	var p pacer
	if got := p.chunk(192, 2.5, 0); got != minChunk {
		t.Errorf("unmeasured: chunk %d, want %d", got, minChunk)
	}
	p.observe(10*time.Millisecond, 4, false, 0)  // a decode step: 10 ms
	p.observe(500*time.Millisecond, 4, false, 0) // one held up: not the cost
	cost := p.newCost(4)
	if got := p.chunk(192, 2.5, cost.token()); got != minChunk {
		t.Errorf("a prompt not measured yet: chunk %d, want %d", got, minChunk)
	}
	sec, ok := p.observe(100*time.Millisecond, 0, true, 0) // prefill alone
	if !ok || sec != 0.1 {
		t.Fatalf("a prefill step alone of 100 ms: %g s, %v", sec, ok)
	}
	cost.learn(0, 4, 1000, sec) // 0.1 ms a token
	if got := cost.token(); math.Abs(got-1e-4) > 1e-12 {
		t.Errorf("1000 tokens through 4 layers in 100 ms: %g s a token, want 1e-4", got)
	}
	for _, tc := range []struct {
		budget float64
		n      int
		want   int
	}{
		{2.5, 192, 144}, // 15 ms of prefill next to 10 ms of decode: 150 tokens, 144 in whole minChunks
		{2.5, 64, 64},   // at most the chunk
		{1.0, 192, 1},   // no room: one token a step
		{1.1, 192, 10},  // 1 ms of prefill: 10 tokens, fewer than minChunk
		{2.5, 20, 20},   // all of a chunk of less than the budget

		{11, 192, 192},
	} {
		if got := p.chunk(tc.n, tc.budget, cost.token()); got != tc.want {
			t.Errorf("budget %g, chunk at most %d: %d, want %d", tc.budget, tc.n, got, tc.want)
		}
	}
	// Deep in a long prompt a token costs more than the budget leaves:
	// the chunk runs the layers that fit, at least one.
	var d pacer
	d.observe(10*time.Millisecond, 4, false, 0)
	deep := d.newCost(48)
	deep.learn(0, 48, 1, 0.040) // 40 ms a token
	for _, tc := range []struct {
		budget       float64
		tokens, from int
		want         int
	}{
		{2.5, 1, 0, 18},  // 15 ms of 40: 18 of 48 layers
		{2.5, 1, 42, 6},  // at most the layers left
		{2.5, 2, 0, 9},   // two tokens: half as many layers
		{1.0, 1, 0, 1},   // no room: one layer a step
		{5.0, 1, 0, 48},  // a whole token fits
		{2.5, 1, 47, 1},  // the last layer
		{1.0, 1, 47, 1},  // the last layer, no room
		{2.5, 9, 10, 2},  // 9 tokens: 1.67 ms a layer, 15 ms
		{2.5, 16, 10, 1}, // more than a layer's worth: one all the same
	} {
		if got := d.layers(tc.tokens, tc.from, tc.budget, deep); got != tc.want {
			t.Errorf("budget %g, %d tokens from layer %d: %d layers, want %d", tc.budget, tc.tokens, tc.from, got, tc.want)
		}
	}
	tiny := d.newCost(6)
	tiny.learn(0, 6, 1, 1e-320)
	if got, want := d.layers(1, 1, 2.5, tiny), 5; got != want {
		t.Errorf("a prompt token of 1e-320 s: %d layers, want %d", got, want)
	}
	if got, want := d.chunk(192, 2.5, tiny.token()), 192; got != want {
		t.Errorf("a prompt token of 1e-320 s: chunk %d, want %d", got, want)
	}
	if got := d.layers(1, 1, 2.5, d.newCost(6)); got != 5 {
		t.Errorf("a prompt not measured yet: %d layers, want all 5 left", got)
	}
	// Pieces over different spans of layers learn where the cost lies:
	// of 6 layers, 2 take 4 ms a token each and the rest 0.25 ms. The
	// chunks' spans come from the pacer itself; once learned, a piece
	// overruns its room only by being one expensive layer alone.
	truth := []float64{0.25e-3, 0.25e-3, 4e-3, 0.25e-3, 0.25e-3, 4e-3}
	var w pacer
	w.observe(2*time.Millisecond, 1, false, 0) // a decode step: 2 ms, room for 3 ms of prefill a step
	learned := w.newCost(len(truth))
	from, over := 0, 0.0
	for step := range 200 {
		n := w.layers(1, from, 2.5, learned)
		var took float64
		for _, v := range truth[from : from+n] {
			took += v
		}
		if step >= 100 { // learned by now
			over = max(over, took/3e-3)
		}
		learned.learn(from, n, 1, took)
		if from += n; from == len(truth) {
			from = 0
		}
	}
	for i, v := range learned {
		if math.Abs(v-truth[i]) > 0.25*truth[i] {
			t.Errorf("layer %d learned at %g s a token, truly %g", i, v, truth[i])
		}
	}
	if over > 4e-3/3e-3+1e-9 {
		t.Errorf("a piece took %.2fx the room it was given, more than an expensive layer alone", over)
	}
	// A mixed step charges its prefill chunk what exceeds a decode step.
	var q pacer
	q.observe(10*time.Millisecond, 2, false, 0)
	if sec, ok := q.observe(30*time.Millisecond, 2, true, 0); !ok || math.Abs(sec-0.02) > 1e-9 {
		t.Errorf("a 30 ms step with a chunk next to 10 ms of decode: %g s (%v), want 0.02", sec, ok)
	}
	// A chunk timed in a pass of its own is charged that pass; the rest
	// of the step is a decode step (the shortest one now: 8 ms).
	if sec, ok := q.observe(30*time.Millisecond, 2, true, 22*time.Millisecond); !ok || math.Abs(sec-0.022) > 1e-9 {
		t.Errorf("a chunk in a 22 ms pass of its own: %g s (%v), want 0.022", sec, ok)
	}
	if got := q.decode(); math.Abs(got-0.008) > 1e-9 {
		t.Errorf("after a step with 8 ms of decode pass: decode step %g s, want 0.008", got)
	}
	// Nothing to charge against before a decode step is seen.
	var fresh pacer
	if _, ok := fresh.observe(30*time.Millisecond, 2, true, 0); ok {
		t.Error("a mixed step with no decode step seen was charged")
	}
	// Moving estimates: a fifth of the way a step.
	moving := layerCost{0.01}
	moving.learn(0, 1, 1, 0.02)
	if math.Abs(moving[0]-0.012) > 1e-12 {
		t.Errorf("0.01 s, then a token in 0.02 s: %g s, want 0.012", moving[0])
	}
}

// TestSchedPaced: with PrefillPace a prompt that prefills next to
// decoding streams is split in smaller chunks (more steps than alone);
// the tokens are those of the runs alone and the logits differ only in
// their last bits.
func TestSchedPaced(t *testing.T) {
	m := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 2048, PrefillPace: 2.5})
	chunks := pacedNextToStream(t, m, randomIDs(91, 10), randomIDs(92, 1500), 200, 1e-3)
	unpaced := (1500 + m.prefillChunk() - 1) / m.prefillChunk()
	t.Logf("the 1500-token prompt prefilled in %d chunks next to the stream (%d unpaced)", chunks, unpaced)
	if chunks <= unpaced {
		t.Errorf("%d chunks: the prefill was not paced", chunks)
	}
}

// TestSchedPausedLayers: a prompt that prefills next to a decoding stream
// when a token costs more than the step budget leaves (the pacer seeded
// so: a token through every layer takes 1000 s) runs its chunks a few
// layers a step, the stream decoding in between; both get the tokens of
// their runs alone, logits within what paced chunks allow: one-token
// chunks run the decode kernels (int16 activations), which, as with
// chunks of a few tokens (minChunk), move the logits by up to a few 1e-3;
// pausing itself changes nothing (the model's TestForwardBatchPaused:
// bitwise). The next prompt starts afresh.
func TestSchedPausedLayers(t *testing.T) {
	m := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 2048, PrefillPace: 2.5})
	m.mu.Lock()
	m.sched.pace = pacer{seed: 1000}
	m.sched.pace.decodes[0] = 1e-3
	m.mu.Unlock()
	steps := pacedNextToStream(t, m, randomIDs(93, 10), randomIDs(94, 40), 300, 5e-3)
	t.Logf("the 40-token prompt took %d steps next to the stream", steps)
	if steps <= 40 {
		t.Errorf("%d steps for 40 prompt tokens: no chunk paused between layers", steps)
	}
	// What one prompt cost says nothing of the next one's (a short prompt
	// next to a deep one, a prompt after one that loaded its experts from
	// disk): a new prompt starts with a whole minChunk.
	m.mu.Lock()
	m.sched.pace.seed = 0
	m.mu.Unlock()
	if steps := pacedNextToStream(t, m, randomIDs(95, 10), randomIDs(96, minChunk), 50, 0); steps != 1 {
		t.Errorf("a %d-token prompt after an expensive one took %d steps next to the stream, want 1", minChunk, steps)
	}
}

// pacedNextToStream runs a greedy stream of n tokens after stream and,
// from its first token on, prompt (8 tokens): both must give the tokens
// of their runs alone, logits within tol. It returns the steps that
// advanced both while prompt prefilled.
func pacedNextToStream(t *testing.T, m *Model, stream, prompt []int32, n int, tol float64) int {
	t.Helper()
	prompts := [][]int32{stream, prompt}
	opts := []GenerateOptions{greedy(n), greedy(8)}
	want := alone(t, m, prompts, opts)
	var got [2]run
	var wg sync.WaitGroup
	var once sync.Once
	before := m.SchedulerStats()
	got[0].res, got[0].err = m.Stream(context.Background(), prompts[0], recording(opts[0], &got[0]), func(Token) error {
		once.Do(func() {
			wg.Go(func() {
				got[1].res, got[1].err = m.Stream(context.Background(), prompts[1], recording(opts[1], &got[1]), nil)
			})
		})
		return nil
	})
	wg.Wait()
	for i := range got {
		if got[i].err != nil {
			t.Fatal(got[i].err)
		}
		if !slices.Equal(got[i].res.IDs, want[i].res.IDs) {
			t.Errorf("prompt %d: tokens %v, alone %v", i, got[i].res.IDs, want[i].res.IDs)
		}
		if worst := maxDiff(got[i].logits, want[i].logits); worst > tol {
			t.Errorf("prompt %d: logits differ by up to %g", i, worst)
		}
	}
	// Steps that advanced both: the prompt's prefill chunks, then 7
	// decode tokens of its own.
	st := m.SchedulerStats()
	return int(st.Advanced-before.Advanced-(st.Steps-before.Steps)) - 7
}

// TestSchedCancelPaused: a prompt cancelled while one of its chunks is
// paused between layers (the pacer seeded as in TestSchedPausedLayers)
// ends once that chunk has run every layer: its lane keeps whole chunks
// and nothing paused, and a retry of the prompt in the same session,
// resuming from them, generates what the prompt generates alone.
func TestSchedCancelPaused(t *testing.T) {
	m := loadFixture(t, "qwen3_next-4bit", Options{ContextLength: 2048, PrefillPace: 2.5})
	runner, prompt := randomIDs(95, 10), randomIDs(96, 40)
	want := alone(t, m, [][]int32{prompt}, []GenerateOptions{greedy(8)})
	m.mu.Lock()
	m.sched.pace = pacer{seed: 1000}
	m.sched.pace.decodes[0] = 1e-3
	m.mu.Unlock()
	ps := m.NewSession()
	defer ps.Close()
	var cancelled run
	var started sync.Once
	var wg sync.WaitGroup
	rs := m.NewSession()
	_, err := rs.Stream(context.Background(), runner, greedy(60), func(Token) error {
		started.Do(func() {
			wg.Go(func() {
				// Three steps: the first token's chunk is paused after
				// its third layer when the context reports the cancel.
				ctx := &cancelAfter{Context: context.Background(), n: 3}
				cancelled.res, cancelled.err = ps.Stream(ctx, prompt, greedy(8), nil)
			})
		})
		return nil
	})
	wg.Wait()
	rs.Close()
	if err != nil {
		t.Fatal(err)
	}
	if cancelled.err != context.Canceled || cancelled.res.FinishReason != "cancelled" {
		t.Fatalf("the cancelled prompt: err %v, finish %q", cancelled.err, cancelled.res.FinishReason)
	}
	m.mu.Lock()
	l := ps.lanes[0]
	kept, paused := len(l.tokens), l.cache.Paused()
	m.mu.Unlock()
	t.Logf("the cancelled prompt left %d tokens in its lane", kept)
	if kept == 0 || paused != 0 || !isPrefix(l.tokens, prompt) {
		t.Errorf("the cancelled prompt's lane: %d tokens, paused at layer %d; want whole chunks of the prompt, none paused", kept, paused)
	}
	var r run
	r.res, r.err = ps.Stream(context.Background(), prompt, recording(greedy(8), &r), nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.res.CachedTokens != kept {
		t.Errorf("the retry reused %d tokens, want %d", r.res.CachedTokens, kept)
	}
	if !slices.Equal(r.res.IDs, want[0].res.IDs) {
		t.Errorf("the retry: tokens %v, alone %v", r.res.IDs, want[0].res.IDs)
	}
	if worst := maxDiff(r.logits, want[0].logits); worst > 5e-3 {
		t.Errorf("the retry: logits differ from the prompt's alone by up to %g", worst)
	}
}
