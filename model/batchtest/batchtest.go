// Package batchtest checks batched forward passes against sequences run
// alone: a Schedule of sequences that join, prefill in chunks, decode
// greedily and leave at different steps is run once with every sequence on
// its own (Runner.Forward) and once batched (Runner.ForwardBatch, one pass
// per step over every running sequence), and Compare says how far apart
// their logits are. The model tests run it on the CPU executor, the Metal
// tests on the shader harness.
package batchtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/mlx-moe/mlx-moe/graph"
	"github.com/mlx-moe/mlx-moe/kernels"
	"github.com/mlx-moe/mlx-moe/model"
)

// Sequence is one request of a schedule.
type Sequence struct {
	Prompt []int32
	Join   int // the first step it may run in
	Chunk  int // prompt tokens per step
	Decode int // greedy tokens decoded after the prompt
	// Reuse, when above 0, makes the sequence take over the cache of
	// sequence Reuse-1 once that one has left (a new sequence on a used
	// cache: recurrent state must be reset). It joins no earlier.
	Reuse int
}

// MaxLen is the context every schedule's caches get.
const MaxLen = 64

// Schedule is four sequences with different prompts (token ids below
// vocab): steps mixing prefill chunks of some with decode steps of others,
// sequences joining and leaving between steps, the fourth reusing the
// first one's cache.
func Schedule(vocab int) []Sequence {
	rng := rand.New(rand.NewPCG(19, uint64(vocab)))
	prompt := func(n int) []int32 {
		p := make([]int32, n)
		for i := range p {
			p[i] = int32(rng.IntN(vocab))
		}
		return p
	}
	return []Sequence{
		{Prompt: prompt(5), Join: 0, Chunk: 5, Decode: 3},
		{Prompt: prompt(12), Join: 0, Chunk: 4, Decode: 10},
		{Prompt: prompt(9), Join: 2, Chunk: 9, Decode: 6},
		{Prompt: prompt(8), Join: 4, Chunk: 3, Decode: 6, Reuse: 1},
	}
}

// Output is what one sequence got: the logits of the prompt's last
// position and of each decode step, and the greedy token each gave.
type Output struct {
	Logits [][]float32
	Tokens []int32
}

// Alone runs each sequence by itself with Forward: the prompt in the
// chunks the schedule feeds it in, then one call per decoded token.
func Alone(m *model.Model, e graph.Executor, seqs []Sequence) ([]Output, error) {
	rn := model.NewRunner(m, e)
	defer rn.Free()
	out := make([]Output, len(seqs))
	for i, sq := range seqs {
		c := m.NewCache(e, MaxLen)
		err := sq.alone(rn, c, &out[i])
		c.Free(e)
		if err != nil {
			return nil, fmt.Errorf("sequence %d alone: %w", i, err)
		}
	}
	return out, nil
}

// alone runs sq on c: the prompt in its chunks (as a batch feeds it:
// recurrent layers scan a prompt chunk by chunk, and a sequence's result
// must not depend on its neighbours, not on a different chunking), then
// one token a call.
func (sq *Sequence) alone(rn *model.Runner, c *model.Cache, o *Output) error {
	for start := 0; start < len(sq.Prompt); start += sq.Chunk {
		logits, err := rn.Forward(c, sq.Prompt[start:min(start+sq.Chunk, len(sq.Prompt))], false)
		if err != nil {
			return err
		}
		if start+sq.Chunk >= len(sq.Prompt) {
			o.add(logits)
		}
	}
	for range sq.Decode {
		logits, err := rn.Forward(c, o.Tokens[len(o.Tokens)-1:], false)
		if err != nil {
			return err
		}
		o.add(logits)
	}
	return nil
}

func (o *Output) add(logits []float32) {
	o.Logits = append(o.Logits, slices.Clone(logits))
	o.Tokens = append(o.Tokens, int32(argmax(logits)))
}

func argmax(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// Batched runs the schedule with ForwardBatch: each step is one pass over
// the next prompt chunk or decode token of every running sequence. Each
// of setup is applied to the runner first.
func Batched(m *model.Model, e graph.Executor, seqs []Sequence, setup ...func(*model.Runner)) ([]Output, error) {
	rn := model.NewRunner(m, e)
	defer rn.Free()
	for _, f := range setup {
		f(rn)
	}
	vocab := m.Config.VocabSize
	type running struct {
		cache   *model.Cache
		fed     int // prompt tokens processed
		started bool
		done    bool
		logits  []float32
	}
	st := make([]running, len(seqs))
	var caches []*model.Cache
	defer func() {
		for _, c := range caches {
			c.Free(e)
		}
	}()
	out := make([]Output, len(seqs))
	var segs []model.Segment
	var who []int
	for step := 0; ; step++ {
		if step > 1000 {
			return nil, fmt.Errorf("the schedule did not finish")
		}
		segs, who = segs[:0], who[:0]
		left := 0
		for i, sq := range seqs {
			s := &st[i]
			if s.done {
				continue
			}
			left++
			if !s.started {
				if step < sq.Join || (sq.Reuse > 0 && !st[sq.Reuse-1].done) {
					continue
				}
				if sq.Reuse > 0 {
					s.cache = st[sq.Reuse-1].cache
					s.cache.Len = 0
				} else {
					s.cache = m.NewCache(e, MaxLen)
					caches = append(caches, s.cache)
				}
				s.started, s.logits = true, make([]float32, vocab)
			}
			sg := model.Segment{Cache: s.cache}
			if s.fed < len(sq.Prompt) {
				sg.IDs = sq.Prompt[s.fed:min(s.fed+sq.Chunk, len(sq.Prompt))]
				s.fed += len(sg.IDs)
				if s.fed == len(sq.Prompt) {
					sg.Logits = s.logits
				}
			} else {
				sg.IDs, sg.Logits = out[i].Tokens[len(out[i].Tokens)-1:], s.logits
			}
			segs, who = append(segs, sg), append(who, i)
		}
		if left == 0 {
			return out, nil
		}
		if len(segs) == 0 {
			continue
		}
		if err := rn.ForwardBatch(segs); err != nil {
			return nil, fmt.Errorf("step %d: %w", step, err)
		}
		for j, sg := range segs {
			if sg.Logits == nil {
				continue
			}
			i := who[j]
			out[i].add(sg.Logits)
			st[i].done = len(out[i].Logits) == seqs[i].Decode+1
		}
	}
}

// Compare returns the largest difference between a's and b's logits, and
// an error when their greedy tokens differ anywhere.
func Compare(a, b []Output) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("%d sequences against %d", len(a), len(b))
	}
	worst := 0.0
	for i := range a {
		if len(a[i].Logits) != len(b[i].Logits) {
			return 0, fmt.Errorf("sequence %d: %d steps against %d", i, len(a[i].Logits), len(b[i].Logits))
		}
		for k := range a[i].Logits {
			x, y := a[i].Logits[k], b[i].Logits[k]
			for j := range x {
				worst = math.Max(worst, math.Abs(float64(x[j]-y[j])))
			}
		}
		if !slices.Equal(a[i].Tokens, b[i].Tokens) {
			return worst, fmt.Errorf("sequence %d: greedy tokens %v against %v", i, a[i].Tokens, b[i].Tokens)
		}
	}
	return worst, nil
}

// Identical reports whether a and b hold bitwise the same logits.
func Identical(a, b []Output) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i].Logits) != len(b[i].Logits) {
			return false
		}
		for k := range a[i].Logits {
			x, y := a[i].Logits[k], b[i].Logits[k]
			for j := range x {
				if math.Float32bits(x[j]) != math.Float32bits(y[j]) {
					return false
				}
			}
		}
	}
	return true
}

// RowByRow runs MatMul, MatMulHeads and MoE one row at a time, so that no row's result
// depends on how many rows a pass has (the CPU kernels sum in a different
// order for a batch than for one row). On it a batched sequence must get
// bitwise what it gets alone: any difference is rows leaking into each
// other. Other ops pass through.
type RowByRow struct{ graph.Executor }

func (r RowByRow) MatMul(out, x *graph.Tensor, n int, w *kernels.Matrix, bias []float32) {
	for i := range n {
		r.Executor.MatMul(out.View(i, 1, 0, out.Cols), x.View(i, 1, 0, x.Cols), 1, w, bias)
	}
}

func (r RowByRow) MatMulHeads(out *graph.Tensor, outStep int, x *graph.Tensor, xStep int, n int, ws []*kernels.Matrix) {
	for i := range n {
		r.Executor.MatMulHeads(out.View(i, 1, 0, out.Cols), outStep, x.View(i, 1, 0, x.Cols), xStep, 1, ws)
	}
}

func (r RowByRow) MoE(out, x *graph.Tensor, n int, rt *graph.Routes, experts graph.ExpertSet) error {
	for i := range n {
		k := rt.TopK
		one := graph.Routes{Tokens: 1, TopK: k, IDs: rt.IDs[i*k : (i+1)*k], Weights: rt.Weights[i*k : (i+1)*k]}
		if err := r.Executor.MoE(out.View(i, 1, 0, out.Cols), x.View(i, 1, 0, x.Cols), 1, &one, experts); err != nil {
			return err
		}
	}
	return nil
}

// Scale is the largest logit magnitude in outs.
func Scale(outs []Output) float64 {
	s := 0.0
	for _, o := range outs {
		for _, l := range o.Logits {
			for _, v := range l {
				s = math.Max(s, math.Abs(float64(v)))
			}
		}
	}
	return s
}

// Check runs seqs alone and batched on e and compares them: it returns a
// line saying how far apart their logits are, and an error when a run
// fails, the greedy tokens differ or a logit differs by more than tol of
// the largest one.
func Check(m *model.Model, e graph.Executor, seqs []Sequence, tol float64) (string, error) {
	alone, err := Alone(m, e, seqs)
	if err != nil {
		return "", err
	}
	batched, err := Batched(m, e, seqs)
	if err != nil {
		return "", err
	}
	diff, err := Compare(alone, batched)
	scale := Scale(alone)
	msg := fmt.Sprintf("%d sequences, batched logits differ from alone by at most %.3g (logits up to %.3g)", len(seqs), diff, scale)
	if err == nil && diff > tol*scale {
		err = fmt.Errorf("batched logits differ from alone by %g, more than %g of the largest logit %g", diff, tol, scale)
	}
	return msg, err
}
