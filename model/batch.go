package model

import (
	"fmt"
	"slices"
)

// Segment is one sequence's part of a batched forward pass.
type Segment struct {
	Cache  *Cache    // the sequence's cache; IDs are appended at Cache.Len
	IDs    []int32   // its new tokens (at least one)
	Logits []float32 // when non-nil (len = vocab): receives the logits of the segment's last new position
	// Until, when above 0, stops the tokens before layer Until: the cache
	// keeps them paused there (Cache.Paused), Len unchanged and no logits,
	// and its next segment must carry the same IDs, which resume at that
	// layer. A chunk split this way gets bitwise the outputs it gets in
	// one pass; it lets a long prompt's chunk spread over several steps
	// when one token through every layer costs more than a step may take.
	// A segment that pauses or resumes runs in a pass of its own.
	Until int
}

// ForwardBatch runs one forward pass over several sequences' new tokens:
// dense parts over all rows at once, attention/recurrent mixing per
// sequence, MoE over the union of routed experts (the pager resolves the
// union once per layer; exact policy stays exact). The sum of len(IDs) is
// at most MaxBatch; caches are distinct.
//
// A sequence's result does not depend on what it is batched with: its
// rows meet other rows only in row-wise ops and in the MoE, which runs
// each row through its own experts. A cache with Len 0 starts a new
// sequence (its recurrent state is reset).
func (rn *Runner) ForwardBatch(segs []Segment) error {
	if len(segs) == 0 {
		return fmt.Errorf("a batch of no segments")
	}
	total := 0
	for i, sg := range segs {
		if err := rn.checkSegment(sg.Cache, sg.IDs); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		if err := rn.checkUntil(sg, len(segs)); err != nil {
			return fmt.Errorf("segment %d: %w", i, err)
		}
		if sg.Logits != nil && len(sg.Logits) != rn.M.Config.VocabSize {
			return fmt.Errorf("segment %d: logits buffer of %d values, want the vocabulary's %d", i, len(sg.Logits), rn.M.Config.VocabSize)
		}
		for j := range i {
			if segs[j].Cache == sg.Cache {
				return fmt.Errorf("segment %d: the same cache as segment %d", i, j)
			}
		}
		total += len(sg.IDs)
	}
	if total > rn.M.MaxBatch {
		return fmt.Errorf("a batch of %d tokens exceeds the model's MaxBatch of %d", total, rn.M.MaxBatch)
	}
	if rn.M.RopeSwitch > 0 {
		// LongRoPE picks one rotary table per pass and may recompute a
		// whole sequence when it crosses the switch: each segment runs on
		// its own.
		for i, sg := range segs {
			logits, err := rn.Forward(sg.Cache, sg.IDs, false)
			if err != nil {
				return fmt.Errorf("segment %d: %w", i, err)
			}
			if sg.Logits != nil {
				copy(sg.Logits, logits)
			}
		}
		return nil
	}
	_, err := rn.pass(segs, false)
	return err
}

// checkUntil checks sg's layer range: a segment that pauses or resumes
// runs alone, on a model that runs every segment in one pass.
func (rn *Runner) checkUntil(sg Segment, segs int) error {
	from, layers := sg.Cache.paused.layer, len(rn.M.Layers)
	if sg.Until == 0 && from == 0 {
		return nil
	}
	if sg.Until < 0 || sg.Until > layers || (sg.Until > 0 && sg.Until <= from) {
		return fmt.Errorf("Until %d is outside layers %d..%d", sg.Until, from+1, layers)
	}
	if segs > 1 {
		return fmt.Errorf("a segment that pauses or resumes between layers runs in a pass of its own, not with %d others", segs-1)
	}
	if rn.M.RopeSwitch > 0 {
		return fmt.Errorf("this model (LongRoPE) cannot pause a chunk between layers")
	}
	return nil
}

// checkSegment checks that ids can be appended to the sequence in c: when
// c has a chunk paused between layers, ids must be that chunk.
func (rn *Runner) checkSegment(c *Cache, ids []int32) error {
	if c == nil || len(c.States) != len(rn.M.Layers) {
		return fmt.Errorf("no cache of this model")
	}
	if p := c.paused.layer; p > 0 && !slices.Equal(ids, c.paused.ids) {
		return fmt.Errorf("the cache has a chunk of %d tokens paused at layer %d: only those tokens can run next", len(c.paused.ids), p)
	}
	for l, s := range c.States {
		if s == nil {
			return fmt.Errorf("the cache has no state for layer %d (a recurrent-only snapshot cannot run)", l)
		}
	}
	if len(ids) == 0 {
		return fmt.Errorf("no tokens to process")
	}
	if c.Len+len(ids) > c.MaxLen {
		return fmt.Errorf("sequence of %d tokens exceeds the context of %d", c.Len+len(ids), c.MaxLen)
	}
	vocab := rn.M.Config.VocabSize
	for _, id := range ids {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("token id %d is outside the vocabulary (0..%d)", id, vocab-1)
		}
	}
	return nil
}
