package mlxmoe

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlx-moe/mlx-moe/experts"
	"github.com/mlx-moe/mlx-moe/sample"
)

// The scheduler runs every generation of a model. Streams submit
// sequences; one goroutine (started when work arrives, gone when there is
// none) advances up to Model.seqs of them together: each step is one
// forward pass over one decode token of every running sequence plus a
// chunk of one prompt's prefill (the one with the fewest tokens left), so
// a long prompt never stalls the streams already running and a short
// request arriving during it starts at the next step. Sequences join and
// leave between steps. The
// step runs with Model.mu held (it owns the runner, the caches and the
// sessions' state); sampling happens in the step, text decoding and emit
// in the caller's goroutine, which reads the tokens from the sequence's
// outbox, so a slow client does not hold up the batch.

// defaultParallel is Options.Parallel when 0.
const defaultParallel = 4

// batchBuckets are the upper bounds of the batch size histogram
// (sequences in one step).
var batchBuckets = []int{1, 2, 4, 8, 16, 32, 64}

type scheduler struct {
	mu      sync.Mutex
	waiting []*sequence
	active  bool // the loop goroutine runs

	// Guarded by Model.mu (the loop's):
	running []*sequence
	segs    []segment
	inStep  []*sequence
	pace    pacer

	// stats are read by SchedulerStats without waiting for a step.
	stats struct {
		sync.Mutex
		running, waiting int
		steps            int64
		batch            []int64 // per batchBuckets, plus one for more
		advanced         int64   // sequences advanced, summed over steps
		decoded          int64   // tokens sampled
		queueWait        time.Duration
		admitted         int64
		window           [aggregateWindow]tokenCount // tokens sampled per second
	}
}

// aggregateWindow is how many seconds the aggregate decode rate spans.
const aggregateWindow = 10

type tokenCount struct {
	second int64
	n      int64
}

// sequence is one generation in the scheduler.
type sequence struct {
	s      *Session
	ctx    context.Context
	prompt []int32
	opts   GenerateOptions
	maxNew int

	// Set by the loop (under Model.mu):
	lane      *lane
	cached    int       // prompt tokens reused
	pos       int       // prompt tokens in the cache
	chunk     int       // where the prompt chunk paused between layers ends (0: none)
	cost      layerCost // what a prompt token takes in each layer (the pacer's estimate)
	passed    int       // steps another prompt's chunk was taken instead of one of this
	decoding  bool
	next      int32 // sampled, to be forwarded
	generated []int32
	sampler   *sample.Sampler
	logits    []float32
	submitted time.Time
	joined    time.Time
	firstTok  time.Time

	// abandoned is set by the caller when it stops reading (emit failed).
	abandoned atomic.Bool
	out       outbox
}

// seqEvent is a sampled token, or (end set) how the sequence ended.
type seqEvent struct {
	tok Token
	eos bool // an end-of-sequence token: counted, not emitted
	end *seqEnd
}

type seqEnd struct {
	res Result // without IDs and Text (the reader builds those)
	err error
}

// outbox passes a sequence's events from the loop to its reader.
type outbox struct {
	mu     sync.Mutex
	events []seqEvent
	wake   chan struct{}
}

func (o *outbox) push(ev seqEvent) {
	o.mu.Lock()
	o.events = append(o.events, ev)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// take waits for events and returns them all.
func (o *outbox) take(buf []seqEvent) []seqEvent {
	for {
		o.mu.Lock()
		buf = append(buf[:0], o.events...)
		clear(o.events)
		o.events = o.events[:0]
		o.mu.Unlock()
		if len(buf) > 0 {
			return buf
		}
		<-o.wake
	}
}

// submit queues q and makes sure the loop runs.
func (m *Model) submit(q *sequence) {
	sc := &m.sched
	q.submitted = time.Now()
	q.out.wake = make(chan struct{}, 1)
	sc.mu.Lock()
	sc.waiting = append(sc.waiting, q)
	start := !sc.active
	sc.active = true
	sc.mu.Unlock()
	if start {
		go m.loop()
	}
}

// loop runs steps until no sequence is running or waiting.
func (m *Model) loop() {
	sc := &m.sched
	for {
		m.mu.Lock()
		m.admit()
		if len(sc.running) == 0 {
			sc.mu.Lock()
			if len(sc.waiting) == 0 {
				sc.active = false
				sc.mu.Unlock()
				m.mu.Unlock()
				return
			}
			sc.mu.Unlock()
		}
		if len(sc.running) > 0 {
			m.step()
		}
		sc.stats.Lock()
		sc.stats.running = len(sc.running)
		sc.stats.Unlock()
		m.mu.Unlock()
	}
}

// admit moves waiting sequences into the batch while there is room (a
// sequence slot and a lane of its session), first come first served; a
// waiting sequence whose caller left ends here.
func (m *Model) admit() {
	sc := &m.sched
	sc.mu.Lock()
	defer sc.mu.Unlock()
	kept := sc.waiting[:0]
	for _, q := range sc.waiting {
		if len(sc.running) < m.seqs {
			// A sequence that joins is checked for cancellation by the
			// step, before its first chunk.
			if l := q.s.pickLane(q.prompt); l != nil {
				m.join(q, l)
				continue
			}
		}
		if err := q.ctx.Err(); err != nil || q.abandoned.Load() {
			q.out.push(seqEvent{end: &seqEnd{res: Result{PromptTokens: len(q.prompt), FinishReason: "cancelled",
				Prefill: time.Since(q.submitted), Queued: time.Since(q.submitted)}, err: err}})
			continue
		}
		kept = append(kept, q)
	}
	clear(sc.waiting[len(kept):])
	sc.waiting = kept
	sc.stats.Lock()
	sc.stats.running, sc.stats.waiting = len(sc.running), len(sc.waiting)
	sc.stats.Unlock()
}

// join starts q on lane l: the lane is positioned at q's best cached
// prefix.
func (m *Model) join(q *sequence, l *lane) {
	sc := &m.sched
	l.busy = true
	q.lane = l
	q.joined = time.Now()
	q.cached = q.s.reuse(l, q.prompt)
	q.pos = q.cached
	q.cost = sc.pace.newCost(len(m.Model.Layers))
	q.sampler = sample.New(q.opts.Sampling, q.prompt)
	q.logits = make([]float32, m.Model.Config.VocabSize)
	sc.running = append(sc.running, q)
	sc.stats.Lock()
	sc.stats.admitted++
	sc.stats.queueWait += q.joined.Sub(q.submitted)
	sc.stats.Unlock()
}

// step runs one forward pass: a decode token for every running sequence
// that has one, and the next chunk of the first sequence still in prefill
// (or, paced, part of its layers). Sequences whose caller left end first,
// unless a chunk of theirs is paused between layers: that chunk finishes
// first, so what was prefilled stays whole and reusable.
func (m *Model) step() {
	sc := &m.sched
	var running, left []*sequence
	for _, q := range sc.running {
		if (q.ctx.Err() != nil || q.abandoned.Load()) && q.chunk == 0 {
			left = append(left, q)
		} else {
			running = append(running, q)
		}
	}
	sc.running = running
	for _, q := range left {
		m.finish(q, "cancelled", nil)
	}
	if len(running) == 0 {
		return
	}
	segs, in := sc.segs[:0], sc.inStep[:0]
	for _, q := range running {
		if q.decoding {
			segs = append(segs, segment{Cache: q.lane.cache, IDs: []int32{q.next}, Logits: q.logits})
			in = append(in, q)
		}
	}
	decodes := len(segs)
	pre := sc.nextPrefill(running)
	var end, from, layers int
	paused := false
	if pre != nil {
		var seg segment
		from = pre.lane.cache.Paused()
		seg, layers = m.prefillSegment(pre, decodes > 0 && m.opts.PrefillPace > 0)
		end, paused = pre.pos+len(seg.IDs), seg.Until > 0
		segs = append(segs, seg)
		in = append(in, pre)
	}
	sc.segs, sc.inStep = segs, in
	start := time.Now()
	alone, err := m.runStep(segs)
	if err != nil {
		for _, q := range in {
			m.finish(q, "", err)
		}
		return
	}
	if sec, ok := sc.pace.observe(time.Since(start), decodes, pre != nil, alone); ok {
		pre.cost.learn(from, layers, end-pre.pos, sec)
	}
	sc.stats.Lock()
	sc.stats.steps++
	if sc.stats.batch == nil {
		sc.stats.batch = make([]int64, len(batchBuckets)+1)
	}
	sc.stats.batch[bucket(len(in))]++
	sc.stats.advanced += int64(len(in))
	sc.stats.Unlock()
	for _, q := range in {
		if q == pre {
			if paused {
				q.chunk = end
			} else {
				q.chunk = 0
				m.prefilled(q, end)
			}
			continue
		}
		q.lane.tokens = append(q.lane.tokens, q.next)
		m.sample(q)
	}
}

// prefillSegment is q's prompt chunk for this step and how many layers
// it runs: the chunk paused between layers, if q has one, else the next
// one; paced (next to decoding streams), the pacer sizes the chunk and,
// when the step has room for less than one token through every layer,
// pauses it after the layers that fit.
func (m *Model) prefillSegment(q *sequence, paced bool) (segment, int) {
	sc, c := &m.sched, q.lane.cache
	end := q.chunk
	if end == 0 {
		n := m.prefillChunk()
		if paced {
			n = sc.pace.chunk(n, m.opts.PrefillPace, q.cost.token())
		}
		end = q.chunkEnd(n)
	}
	seg := segment{Cache: c, IDs: q.prompt[q.pos:end]}
	total := len(m.Model.Layers)
	from := c.Paused()
	layers := total - from
	if paced && m.Model.RopeSwitch == 0 {
		layers = sc.pace.layers(len(seg.IDs), from, m.opts.PrefillPace, q.cost)
	}
	if from+layers < total {
		seg.Until = from + layers
	} else if end == len(q.prompt) {
		seg.Logits = q.logits
	}
	return seg, layers
}

// nextPrefill picks the sequence in prefill whose chunk the step takes:
// one whose chunk is paused between layers; else the one with the fewest
// prompt tokens left, so that a short request arriving during a long
// prompt's prefill starts at the next step; one passed over starveAfter
// times goes first.
func (sc *scheduler) nextPrefill(running []*sequence) *sequence {
	for _, q := range running {
		if q.chunk > 0 {
			return q
		}
	}
	var pick, starved *sequence
	for _, q := range running {
		if q.decoding {
			continue
		}
		if q.passed >= starveAfter && (starved == nil || q.passed > starved.passed) {
			starved = q
		}
		if pick == nil || len(q.prompt)-q.pos < len(pick.prompt)-pick.pos {
			pick = q
		}
	}
	if starved != nil {
		pick = starved
	}
	for _, q := range running {
		if !q.decoding && q != pick {
			q.passed++
		}
	}
	if pick != nil {
		pick.passed = 0
	}
	return pick
}

// starveAfter is how many steps a prompt in prefill may be passed over for
// shorter ones.
const starveAfter = 8

// pacer sizes the prefill chunk while streams decode (with
// Options.PrefillPace): the step that carries it should take at most
// budget times a step of decode tokens alone, so a running stream's
// inter-token gap stays within that while a long prompt prefills. It
// learns both costs from the steps it sees: a decode step's as the
// shortest of the recent ones (on a shared machine a step is sometimes
// held up, never sped up), a prompt token's per prompt and per layer (see
// layerCost). When not even one token fits, the chunk pauses between
// layers and finishes over the next steps.
type pacer struct {
	decodes [16]float64 // seconds of recent steps without prefill (a ring)
	next    int
	// seed is the cost per token a prompt starts with, shared equally
	// among the layers (0: unmeasured, its first chunk is minChunk tokens
	// through every layer); tests set it.
	seed float64
}

// layerCost is what a token of one prompt takes in each layer, in
// seconds, as the pacer has learned it (all 0: not measured). A token
// deep in a long prompt attends over every earlier one and costs many
// times one of a short prompt, and most of that in the layers that attend
// over the whole prompt (not a hybrid model's linear-attention or Mamba
// layers), so a chunk paused between layers is cut by what its layers
// cost, not by their count.
type layerCost []float64

// newCost is a new prompt's cost over layers layers.
func (p *pacer) newCost(layers int) layerCost {
	c := make(layerCost, layers)
	for i := range c {
		c[i] = p.seed / float64(layers)
	}
	return c
}

// token is what a token takes through every layer (0: not measured).
func (c layerCost) token() float64 {
	var sum float64
	for _, v := range c {
		sum += v
	}
	return sum
}

// learn takes in that a chunk of tokens through layers from..from+n took
// sec seconds: the layers' estimates move a fifth of the way to it, shared
// among them as the estimates share it (equally the first time). Pieces
// of a paused chunk run different spans of layers, so the shares come to
// differ where the layers' costs do.
func (c layerCost) learn(from, n, tokens int, sec float64) {
	span := c[from : from+n]
	per, est := sec/float64(tokens), layerCost(span).token()
	for i, v := range span {
		if est == 0 {
			span[i] = per / float64(n)
		} else {
			span[i] = 0.8*v + 0.2*per*v/est
		}
	}
}

// minChunk is the grain of paced chunks: a chunk the step budget allows
// minChunk tokens or more is a multiple of it (regular shapes for the
// GEMM). When the budget leaves room for fewer (a prompt token costs
// about a decode step: deep in a long prompt, or on a small model), the
// chunk shrinks to what fits, down to one token, so that running streams
// keep their pace and the prompt advances a little every step. Chunks of
// a few rows run the decode kernels (int16 activations by default), so a
// paced prompt's logits differ from its run alone in the last digits: on
// the random fixtures 8-token chunks moved them by up to 5e-3, 16-token
// ones by under 1e-3.
const minChunk = 16

// decode is a step of decode tokens alone (0: none seen).
func (p *pacer) decode() float64 {
	best := 0.0
	for _, d := range p.decodes {
		if d > 0 && (best == 0 || d < best) {
			best = d
		}
	}
	return best
}

// layers is how many of the layers from layer from on a chunk of tokens
// of a prompt that costs cost runs in a step next to decoding streams: as
// many as the budget leaves room for, at least one.
func (p *pacer) layers(tokens, from int, budget float64, cost layerCost) int {
	left := len(cost) - from
	dec := p.decode()
	if dec == 0 || cost.token() == 0 {
		return left
	}
	// The relative slack keeps a budget that an exact number of layers
	// fills from losing one to rounding.
	room := max(budget-1, 0) * dec / float64(tokens) * (1 + 1e-9)
	n, sum := 0, 0.0
	for _, v := range cost[from:] {
		if sum += v; sum > room {
			break
		}
		n++
	}
	return max(n, 1)
}

// fit is x rounded down into 1..limit (x may be huge: a cost estimate
// near 0).
func fit(x float64, limit int) int {
	return int(min(max(x, 1), float64(limit)))
}

// chunk is the prefill chunk next to decoding streams, at most n, of a
// prompt whose tokens cost perToken (0: not measured yet).
func (p *pacer) chunk(n int, budget, perToken float64) int {
	dec := p.decode()
	if dec == 0 || perToken == 0 {
		return min(n, minChunk) // not measured yet: start small
	}
	c := fit(max(budget-1, 0)*dec/perToken, math.MaxInt32)
	if c >= minChunk {
		c = c / minChunk * minChunk
	}
	return min(n, c)
}

// observe learns from a step of d with decodes decode tokens and, when
// prefill, a prompt chunk; it returns the seconds the chunk took (ok
// false: it cannot tell yet). When the chunk had a pass of its own, alone
// is that pass (the rest of the step is a decode step); else (0) the
// chunk is charged what the step took beyond a decode step.
func (p *pacer) observe(d time.Duration, decodes int, prefill bool, alone time.Duration) (sec float64, ok bool) {
	switch dec := p.decode(); {
	case !prefill:
		p.decodes[p.next] = d.Seconds()
		p.next = (p.next + 1) % len(p.decodes)
		return 0, false
	case decodes == 0:
		return d.Seconds(), true
	case alone > 0:
		p.observe(d-alone, decodes, false, 0)
		return alone.Seconds(), true
	case dec > 0:
		return max(d.Seconds()-dec, 0), true
	}
	return 0, false
}

// runStep is the step's forward pass, with a panic (a fault in a mapped
// checkpoint file, a bug) turned into the batch's error; alone is the
// prefill chunk's pass when it ran apart from the decode tokens (see
// forwardBatch).
func (m *Model) runStep(segs []segment) (alone time.Duration, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("forward pass: panic: %v", v)
		}
	}()
	if m.closeMaps == nil {
		return forwardBatch(m.runner, segs)
	}
	err = experts.GuardMapped(func() error {
		alone, err = forwardBatch(m.runner, segs)
		return err
	})
	return alone, err
}

func bucket(n int) int {
	for i, b := range batchBuckets {
		if n <= b {
			return i
		}
	}
	return len(batchBuckets)
}

// prefillChunk is the most prompt tokens a step takes: a forward pass's
// worth (model.Model.MaxBatch: 256 tokens, more on a paged model, see
// pagedMaxBatch) in multiples of 64 tokens when that is possible (whole
// tiles of the prefill kernels), at most Options.PrefillChunk. The chunk
// runs in a pass of its own (forwardBatch), so it need not leave room for
// the decode tokens. While streams decode, the pacer may take less.
func (m *Model) prefillChunk() int {
	n := m.Model.MaxBatch
	if m.opts.PrefillChunk > 0 {
		n = min(n, m.opts.PrefillChunk)
	}
	n = max(1, n)
	if n > 64 {
		n = n / 64 * 64
	}
	return n
}

// chunkEnd is where q's next prefill chunk of at most n tokens ends: at a
// cache point, if one comes first.
func (q *sequence) chunkEnd(n int) int {
	end := min(q.pos+n, len(q.prompt))
	for _, p := range q.opts.CachePoints {
		if p > q.pos && p < end {
			end = p
		}
	}
	return end
}

// prefilled notes that q's prompt is in the cache up to end: a cache point
// is snapshot, and at the prompt's end the first token is sampled.
func (m *Model) prefilled(q *sequence, end int) {
	l := q.lane
	l.tokens = append(l.tokens, q.prompt[q.pos:end]...)
	q.pos = end
	if q.pos < len(q.prompt) {
		if slices.Contains(q.opts.CachePoints, q.pos) {
			q.s.snapshot(l, true)
		}
		return
	}
	if !l.cache.Rewindable() {
		q.s.snapshot(l, false)
	}
	q.decoding = true
	q.firstTok = time.Now()
	m.sample(q)
}

// sample picks q's next token from its logits and hands it to the reader;
// an end-of-sequence token or the last one allowed ends q.
func (m *Model) sample(q *sequence) {
	var ev seqEvent
	defer func() {
		if v := recover(); v != nil { // in the caller's mask
			m.finish(q, "", fmt.Errorf("sampling: panic: %v", v))
		}
	}()
	opts := &q.opts
	var logprobOf func(int32) float32
	if opts.Logprobs {
		logprobOf, ev.tok.Top = logprobs(q.logits, opts.TopLogprobs)
	}
	if opts.LogitsMask != nil {
		opts.LogitsMask(q.generated, q.logits)
	}
	id := q.sampler.Next(q.logits)
	q.generated = append(q.generated, id)
	ev.tok.ID = id
	if logprobOf != nil {
		ev.tok.Logprob = logprobOf(id)
	}
	ev.eos = m.eos[id] && !opts.IgnoreEOS
	q.out.push(ev)
	m.countToken()
	switch {
	case ev.eos:
		m.finish(q, "stop", nil)
	case len(q.generated) == q.maxNew:
		m.finish(q, "length", nil)
	default:
		q.next = id
	}
}

// countToken adds a sampled token to the counters.
func (m *Model) countToken() {
	st := &m.sched.stats
	sec := time.Now().Unix()
	st.Lock()
	st.decoded++
	w := &st.window[sec%aggregateWindow]
	if w.second != sec {
		*w = tokenCount{second: sec}
	}
	w.n++
	st.Unlock()
}

// finish ends q: it leaves the batch, its lane is released (on an error
// emptied, since a failed pass may have left it half written) and the
// reader gets the result.
func (m *Model) finish(q *sequence, reason string, err error) {
	sc := &m.sched
	if i := slices.Index(sc.running, q); i >= 0 {
		sc.running = slices.Delete(sc.running, i, i+1)
		// Counted out before its caller hears of the end, so that stats
		// read after a generation returns do not still show it running.
		sc.stats.Lock()
		sc.stats.running = len(sc.running)
		sc.stats.Unlock()
	}
	l := q.lane
	if l == nil || !l.busy {
		return // already finished (a failed step after a finish in it)
	}
	now := time.Now()
	res := Result{PromptTokens: len(q.prompt), CachedTokens: q.cached, FinishReason: reason, Queued: q.joined.Sub(q.submitted)}
	if q.decoding {
		res.Prefill, res.Decode = q.firstTok.Sub(q.submitted), now.Sub(q.firstTok)
	} else {
		res.Prefill = now.Sub(q.submitted)
	}
	switch {
	case err != nil:
		l.tokens, l.cache.Len = l.tokens[:0], 0
		l.cache.DropPaused()
	case reason == "cancelled" && !q.decoding:
		// Cancelled between chunks: what was prefilled is valid and kept,
		// so a retry of the same prompt resumes from it.
		err = q.ctx.Err()
		if !l.cache.Rewindable() {
			q.s.snapshot(l, false)
		}
	case !l.cache.Rewindable() && q.decoding:
		q.s.snapshot(l, false)
	}
	l.busy = false
	m.laneFree.Broadcast()
	q.out.push(seqEvent{end: &seqEnd{res: res, err: err}})
}

// SchedulerStats describe the batch scheduler.
type SchedulerStats struct {
	Running, Waiting int // sequences
	// Steps is the forward passes run; Batch counts them by how many
	// sequences they advanced: Batch[i] those with at most BatchBuckets[i]
	// (the last entry, more than all of them).
	Steps        int64
	Batch        []int64
	BatchBuckets []int
	Advanced     int64 // sequences advanced, summed over the steps
	// Decoded is the tokens sampled; TokensPerSecond their rate over the
	// last seconds, all sequences together.
	Decoded         int64
	TokensPerSecond float64
	// Admitted is the sequences that have started; QueueWait the time they
	// waited in all before they did.
	Admitted  int64
	QueueWait time.Duration
}

// Parallel is how many generations run together: Options.Parallel, as far
// as their caches fit the memory budget.
func (m *Model) Parallel() int { return m.seqs }

// PrefillChunk is the most prompt tokens one scheduler step processes.
func (m *Model) PrefillChunk() int { return m.prefillChunk() }

// SchedulerStats reports the scheduler's state and counters.
func (m *Model) SchedulerStats() SchedulerStats {
	st := &m.sched.stats
	st.Lock()
	defer st.Unlock()
	out := SchedulerStats{Running: st.running, Waiting: st.waiting, Steps: st.steps,
		Batch: slices.Clone(st.batch), BatchBuckets: slices.Clone(batchBuckets), Advanced: st.advanced, Decoded: st.decoded,
		Admitted: st.admitted, QueueWait: st.queueWait}
	if out.Batch == nil {
		out.Batch = make([]int64, len(batchBuckets)+1)
	}
	now := time.Now().Unix()
	var n int64
	for _, w := range st.window {
		// The current second is incomplete: count the full ones before it.
		if w.second < now && w.second >= now-aggregateWindow+1 {
			n += w.n
		}
	}
	out.TokensPerSecond = float64(n) / float64(aggregateWindow-1)
	return out
}
