// Package sample picks the next token from logits: greedy, or random with
// temperature, top-k, top-p and min-p filtering, and repetition, presence
// and frequency penalties, from a seeded generator so runs repeat.
package sample

import (
	"math"
	"math/rand/v2"
	"sort"
)

// Options controls sampling. The zero value is greedy decoding.
type Options struct {
	// Temperature 0 means greedy (argmax).
	Temperature float64
	// TopK keeps the k most likely tokens (0: all).
	TopK int
	// TopP keeps the smallest set of tokens whose probability reaches p
	// (0 or 1: all).
	TopP float64
	// MinP drops tokens less likely than MinP times the most likely one.
	MinP float64
	// RepetitionPenalty divides positive (multiplies negative) logits of
	// tokens already seen (1 or 0: off), as Hugging Face does.
	RepetitionPenalty float64
	// PresencePenalty and FrequencyPenalty subtract from the logits of seen
	// tokens once, and once per occurrence (OpenAI semantics).
	PresencePenalty, FrequencyPenalty float64
	// Seed makes random sampling repeatable.
	Seed uint64
}

// Sampler draws tokens according to Options.
type Sampler struct {
	opts Options
	rng  *rand.Rand
	seen map[int32]int
}

// New returns a sampler. History tokens (the prompt) count as seen for the
// penalties.
func New(opts Options, history []int32) *Sampler {
	s := &Sampler{opts: opts, rng: rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)), seen: map[int32]int{}}
	for _, id := range history {
		s.seen[id]++
	}
	return s
}

// Next picks a token from logits (which it may modify) and records it as
// seen.
func (s *Sampler) Next(logits []float32) int32 {
	s.penalize(logits)
	id := s.pick(logits)
	s.seen[id]++
	return id
}

func (s *Sampler) penalize(logits []float32) {
	o := s.opts
	for id, count := range s.seen {
		if int(id) >= len(logits) {
			continue
		}
		v := logits[id]
		if o.RepetitionPenalty > 0 && o.RepetitionPenalty != 1 {
			if v > 0 {
				v /= float32(o.RepetitionPenalty)
			} else {
				v *= float32(o.RepetitionPenalty)
			}
		}
		v -= float32(o.PresencePenalty + o.FrequencyPenalty*float64(count))
		logits[id] = v
	}
}

// Argmax returns the index of the largest value (the lowest index on ties).
func Argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
}

type candidate struct {
	id int32
	p  float64
}

func (s *Sampler) pick(logits []float32) int32 {
	o := s.opts
	if o.Temperature <= 0 || o.TopK == 1 {
		return Argmax(logits)
	}
	cands := make([]candidate, len(logits))
	for i, v := range logits {
		cands[i] = candidate{int32(i), float64(v) / o.Temperature}
	}
	sort.Slice(cands, func(a, b int) bool {
		if cands[a].p != cands[b].p {
			return cands[a].p > cands[b].p
		}
		return cands[a].id < cands[b].id
	})
	if o.TopK > 0 && o.TopK < len(cands) {
		cands = cands[:o.TopK]
	}
	// Softmax over the survivors (sorted, so cands[0] is the maximum).
	top := cands[0].p
	var sum float64
	for i := range cands {
		cands[i].p = math.Exp(cands[i].p - top)
		sum += cands[i].p
	}
	for i := range cands {
		cands[i].p /= sum
	}
	if o.MinP > 0 {
		limit := o.MinP * cands[0].p
		n := 1
		for n < len(cands) && cands[n].p >= limit {
			n++
		}
		cands = cands[:n]
	}
	if o.TopP > 0 && o.TopP < 1 {
		var acc float64
		n := 0
		for n < len(cands) {
			acc += cands[n].p
			n++
			if acc >= o.TopP {
				break
			}
		}
		cands = cands[:n]
	}
	var total float64
	for _, c := range cands {
		total += c.p
	}
	r := s.rng.Float64() * total
	for _, c := range cands {
		r -= c.p
		if r < 0 {
			return c.id
		}
	}
	return cands[len(cands)-1].id
}
