package mlxmoe

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/sample"
)

// prefillChunk is how many prompt tokens are processed between two
// cancellation checks: a request whose client left stops within one chunk.
const prefillChunk = 512

// DefaultPromptCacheBytes bounds the memory of a session's cache snapshots
// when Options.PromptCacheBytes is 0.
const DefaultPromptCacheBytes = 2 << 30

// Session is a sequence cache that outlives one generation. A prompt that
// starts with the tokens of an earlier prompt or generation reuses the
// cached state and processes only the rest. For models whose every layer
// keeps per-position state (KV caches) the live cache is cut back to the
// longest common prefix; for recurrent layers (linear attention), whose
// state cannot be rewound, the session snapshots the cache at the end of
// each prompt and generation. Both kinds also snapshot at the cache points
// a request names (where the system prompt and tools end), so that a new
// conversation with the same system prompt and tools starts from there.
// The longest snapshot that is a prefix of a new prompt is restored;
// snapshots are kept within a memory budget, least recently used first out.
//
// A hybrid model's snapshot holds only the recurrent state, not a second
// copy of the KV caches: it is restored into the live cache, whose KV
// caches are cut back to the snapshot's length, and so is usable while its
// tokens are a prefix of the live cache's. That is the common agent case
// (a new conversation with the same system prompt and tools shares that
// prefix with the live cache). Only when a prompt that does not start
// with a snapshot's tokens is about to overwrite its KV rows are those
// rows copied into it (it becomes a full snapshot, as every snapshot used
// to be), within the same budget; cache-point snapshots saved to
// Options.PromptCacheDir are full from the start.
type Session struct {
	m      *Model
	cache  *model.Cache
	tokens []int32
	snaps  []*snapshot
	// fingerprint is set when cache-point snapshots are saved to
	// Options.PromptCacheDir (the default session only).
	fingerprint string
	bytes       int64  // memory held by snaps
	clock       uint64 // orders snapshot use
	// stats are published for CacheStats, which must not wait for a
	// generation to end (the model's lock is held throughout one).
	stats struct{ snapshots, bytes, hits atomic.Int64 }
}

type snapshot struct {
	tokens []int32
	cache  *model.Cache
	parts  cacheParts // cache's tensors and KV stores (for saving)
	bytes  int64
	used   uint64
	point  bool           // taken at a cache point
	saving sync.WaitGroup // a write to the prompt cache directory
	// recurrent: cache holds only the recurrent state; the KV rows are
	// the live cache's.
	recurrent bool
}

// NewSession returns an empty session.
func (m *Model) NewSession() *Session {
	return &Session{m: m}
}

// CacheStats describe a session's prompt cache.
type CacheStats struct {
	Snapshots int
	Bytes     int64 // memory held by snapshots
	Hits      int64 // prompts that reused cached state
}

// CacheStats reports the session's prompt cache.
func (s *Session) CacheStats() CacheStats {
	return CacheStats{Snapshots: int(s.stats.snapshots.Load()), Bytes: s.stats.bytes.Load(), Hits: s.stats.hits.Load()}
}

// PromptCacheStats reports the default session's prompt cache.
func (m *Model) PromptCacheStats() CacheStats { return m.session.CacheStats() }

// Close releases the session's caches (the live one and its snapshots) on
// the model's executor. The session is empty afterwards and can be used
// again.
func (s *Session) Close() {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.free()
}

// free is Close with the model's lock held.
func (s *Session) free() {
	if s.cache != nil {
		s.cache.Free(s.m.exec)
		s.cache = nil
	}
	for _, sn := range s.snaps {
		sn.saving.Wait()
		if sn.cache != nil {
			sn.cache.Free(s.m.exec)
		}
	}
	s.snaps, s.tokens, s.bytes = nil, s.tokens[:0], 0
	s.stats.snapshots.Store(0)
	s.stats.bytes.Store(0)
}

func commonPrefix(a, b []int32) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func isPrefix(p, of []int32) bool { return len(p) <= len(of) && commonPrefix(p, of) == len(p) }

// reuse positions the live cache at the longest reusable prefix of prompt
// (leaving at least one token to process) and returns its length.
func (s *Session) reuse(prompt []int32) int {
	m := s.m
	if s.cache == nil {
		s.cache = m.Model.NewCache(m.exec, m.ctxLen)
	}
	limit := len(prompt) - 1
	best := 0
	if s.cache.Rewindable() {
		best = min(commonPrefix(s.tokens, prompt), limit)
	} else if len(s.tokens) <= limit && isPrefix(s.tokens, prompt) {
		best = len(s.tokens)
	}
	// This prompt overwrites the live KV rows past its common prefix with
	// them: recurrent snapshots it does not start with take their rows
	// first (before a full snapshot is restored over them).
	s.detach(prompt)
	var from *snapshot
	for _, sn := range s.snaps {
		if len(sn.tokens) > best && len(sn.tokens) <= limit && isPrefix(sn.tokens, prompt) &&
			(!sn.recurrent || isPrefix(sn.tokens, s.tokens)) {
			best, from = len(sn.tokens), sn
		}
	}
	if from != nil {
		s.cache.CopyFrom(from.cache, m.exec)
		s.clock++
		from.used = s.clock
	}
	if best > 0 {
		s.stats.hits.Add(1)
	}
	s.cache.Len = best
	s.tokens = append(s.tokens[:0], prompt[:best]...)
	return best
}

// snapshot records the live cache under its tokens within the memory
// budget. Room is made by dropping the least recently used snapshots, those
// at conversation ends first: a cache-point snapshot (shared by every
// conversation with the same system prompt and tools, point set) is only
// dropped for another one. A snapshot that does not fit is not taken.
func (s *Session) snapshot(point bool) {
	s.clock++
	for _, sn := range s.snaps {
		if len(sn.tokens) == len(s.tokens) && isPrefix(sn.tokens, s.tokens) {
			sn.used = s.clock
			if point && !sn.point {
				sn.point = true
				if sn.recurrent && s.fingerprint != "" {
					s.promote(sn) // a saved state must stand alone
				}
				s.save(sn)
			}
			return
		}
	}
	m := s.m
	budget := m.promptBudget()
	// Hybrid models keep only the recurrent state, unless the snapshot is
	// to be saved on its own.
	recurrent := !s.cache.Rewindable() && !(point && s.fingerprint != "")
	size := m.Model.CacheBytes(s.cache.Len)
	if recurrent {
		size = m.Model.RecurrentBytes()
	}
	if budget < 0 || s.cache.Len == 0 {
		return
	}
	free := budget - s.bytes
	var victims []int // in the order they would go
	for free < size {
		v := -1
		for i, sn := range s.snaps {
			if slices.Contains(victims, i) || sn.point && !point {
				continue
			}
			if v < 0 || goesFirst(sn, s.snaps[v]) {
				v = i
			}
		}
		if v < 0 {
			return // it would not fit even with every snapshot it may replace gone
		}
		victims = append(victims, v)
		free += s.snaps[v].bytes
	}
	gone := make([]*snapshot, len(victims))
	for k, i := range victims {
		gone[k] = s.snaps[i]
	}
	s.dropSnapshots(func(sn *snapshot) bool { return slices.Contains(gone, sn) })
	sn := &snapshot{tokens: append([]int32(nil), s.tokens...), bytes: size, used: s.clock, point: point, recurrent: recurrent}
	if recurrent {
		sn.cache = m.Model.NewRecurrentCache(m.exec)
	} else {
		sn.cache, sn.parts = m.newCache(s.cache.Len)
	}
	sn.cache.CopyFrom(s.cache, m.exec)
	s.snaps = append(s.snaps, sn)
	if point {
		s.save(sn)
	}
	s.bytes += size
	s.stats.snapshots.Store(int64(len(s.snaps)))
	s.stats.bytes.Store(s.bytes)
}

// save writes a cache-point snapshot to the prompt cache directory, if the
// session keeps one, in the background from the synced tensors, which
// nothing writes to again (dropping the snapshot waits for the write).
func (s *Session) save(sn *snapshot) {
	m, fp := s.m, s.fingerprint
	if fp == "" || m.exec.Sync() != nil {
		return
	}
	sn.saving.Go(func() {
		if err := m.savePrompt(fp, sn); err != nil {
			fmt.Fprintf(m.opts.Log, "prompt cache: saving a prompt state: %v\n", err)
		}
	})
}

// promptBudget is the memory snapshots may hold (negative: none).
func (m *Model) promptBudget() int64 {
	if m.opts.PromptCacheBytes == 0 {
		return DefaultPromptCacheBytes
	}
	return m.opts.PromptCacheBytes
}

// detach gives the recurrent snapshots whose KV rows prompt is about to
// overwrite (they are a prefix of the live cache's tokens, not of
// prompt's) their own copy of those rows, within the budget; those whose
// rows are already gone are dropped.
func (s *Session) detach(prompt []int32) {
	var gone []*snapshot
	for _, sn := range s.snaps {
		switch {
		case !sn.recurrent || isPrefix(sn.tokens, prompt):
		case isPrefix(sn.tokens, s.tokens):
			s.promote(sn)
		default:
			gone = append(gone, sn)
		}
	}
	s.dropSnapshots(func(sn *snapshot) bool { return slices.Contains(gone, sn) })
	for s.bytes > s.m.promptBudget() && len(s.snaps) > 0 {
		first := s.snaps[0]
		for _, sn := range s.snaps {
			if goesFirst(sn, first) {
				first = sn
			}
		}
		s.dropSnapshots(func(sn *snapshot) bool { return sn == first })
	}
}

// promote makes a recurrent snapshot a full one: the live cache's KV rows
// up to its length (which hold its tokens) with its recurrent state.
func (s *Session) promote(sn *snapshot) {
	m := s.m
	n := len(sn.tokens)
	full, parts := m.newCache(n)
	live := s.cache.Len
	s.cache.Len = n
	full.CopyFrom(s.cache, m.exec) // the KV rows (and the live recurrent state)
	s.cache.Len = live
	full.CopyFrom(sn.cache, m.exec) // the snapshot's recurrent state
	sn.cache.Free(m.exec)
	size := m.Model.CacheBytes(n)
	s.bytes += size - sn.bytes
	sn.cache, sn.parts, sn.bytes, sn.recurrent = full, parts, size, false
	s.stats.bytes.Store(s.bytes)
}

// dropSnapshots frees the snapshots drop picks.
func (s *Session) dropSnapshots(drop func(*snapshot) bool) {
	kept := s.snaps[:0]
	for _, sn := range s.snaps {
		if drop(sn) {
			s.bytes -= sn.bytes
			sn.saving.Wait()
			sn.cache.Free(s.m.exec)
			continue
		}
		kept = append(kept, sn)
	}
	clear(s.snaps[len(kept):])
	s.snaps = kept
	s.stats.snapshots.Store(int64(len(s.snaps)))
	s.stats.bytes.Store(s.bytes)
}

// goesFirst orders snapshots for dropping: conversation ends before cache
// points, then least recently used first.
func goesFirst(a, b *snapshot) bool {
	if a.point != b.point {
		return !a.point
	}
	return a.used < b.used
}

// prefill processes prompt[from:] in chunks, checking ctx before each, and
// snapshots the cache at each of points it passes. It returns the logits
// of the last position. On an error the live cache still holds s.tokens.
func (s *Session) prefill(ctx context.Context, prompt []int32, from int, points []int) ([]float32, error) {
	var logits []float32
	for pos := from; pos < len(prompt); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		end := min(pos+prefillChunk, len(prompt))
		for _, p := range points {
			if p > pos && p < end {
				end = p
			}
		}
		out, err := s.m.forward(s.cache, prompt[pos:end], false)
		if err != nil {
			return nil, err
		}
		s.tokens = append(s.tokens, prompt[pos:end]...)
		pos, logits = end, out
		if pos < len(prompt) && slices.Contains(points, pos) {
			s.snapshot(true)
		}
	}
	return logits, nil
}

// Stream generates from prompt, reusing what the session already holds.
func (s *Session) Stream(ctx context.Context, prompt []int32, opts GenerateOptions, emit func(Token) error) (Result, error) {
	m := s.m
	if err := m.checkIDs(prompt); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	defer func() {
		if v := recover(); v != nil {
			// A panic (which the server recovers) may leave the cache half
			// written: forget it so no later call reuses it.
			s.tokens, s.cache.Len = s.tokens[:0], 0
			panic(v)
		}
	}()
	maxNew := opts.MaxTokens
	if maxNew <= 0 {
		maxNew = 256
	}
	maxNew = min(maxNew, m.ctxLen-len(prompt))
	res := Result{PromptTokens: len(prompt)}
	start := time.Now()
	res.CachedTokens = s.reuse(prompt)
	logits, err := s.prefill(ctx, prompt, res.CachedTokens, opts.CachePoints)
	if err != nil {
		res.Prefill = time.Since(start)
		if ctx.Err() != nil {
			// Cancelled between chunks: what was prefilled is valid and
			// kept, so a retry of the same prompt resumes from it.
			res.FinishReason = "cancelled"
			if !s.cache.Rewindable() {
				s.snapshot(false)
			}
			return res, ctx.Err()
		}
		s.tokens, s.cache.Len = s.tokens[:0], 0
		return res, err
	}
	if !s.cache.Rewindable() {
		s.snapshot(false)
	}
	res.Prefill = time.Since(start)
	sampler := sample.New(opts.Sampling, prompt)
	dec := m.Tok.NewStreamDecoder(true)
	decodeStart := time.Now()
	res.FinishReason = "length"
	for len(res.IDs) < maxNew {
		if err := ctx.Err(); err != nil {
			res.FinishReason = "cancelled"
			break
		}
		var logprobOf func(int32) float32
		var top []Alternative
		if opts.Logprobs {
			logprobOf, top = logprobs(logits, opts.TopLogprobs)
		}
		if opts.LogitsMask != nil {
			opts.LogitsMask(res.IDs, logits)
		}
		id := sampler.Next(logits)
		res.IDs = append(res.IDs, id)
		if m.eos[id] && !opts.IgnoreEOS {
			res.FinishReason = "stop"
			break
		}
		text := dec.Add(int(id))
		res.Text += text
		if emit != nil {
			tok := Token{ID: id, Text: text, Top: top}
			if logprobOf != nil {
				tok.Logprob = logprobOf(id)
			}
			if err := emit(tok); err != nil {
				res.Decode = time.Since(decodeStart)
				return res, err
			}
		}
		if len(res.IDs) == maxNew {
			break
		}
		if logits, err = m.forward(s.cache, []int32{id}, false); err != nil {
			s.tokens, s.cache.Len = s.tokens[:0], 0
			return res, err
		}
		s.tokens = append(s.tokens, id)
	}
	if tail := dec.Flush(); tail != "" {
		res.Text += tail
		if emit != nil {
			if err := emit(Token{ID: -1, Text: tail}); err != nil {
				return res, err
			}
		}
	}
	if !s.cache.Rewindable() {
		s.snapshot(false)
	}
	res.Decode = time.Since(decodeStart)
	return res, nil
}
