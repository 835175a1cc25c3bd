package mlxmoe

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/mlx-moe/mlx-moe/model"
)

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
//
// A session runs as many generations at once as the model's scheduler
// allows (Options.Parallel): each runs in a lane, a live cache of its own;
// a new prompt takes the free lane that shares most of it.
type Session struct {
	m     *Model
	lanes []*lane
	snaps []*snapshot
	// fingerprint is set when cache-point snapshots are saved to
	// Options.PromptCacheDir (the default session only).
	fingerprint string
	bytes       int64  // memory held by snaps
	clock       uint64 // orders snapshot use
	// stats are published for CacheStats, which must not wait for a
	// step to end (the model's lock is held throughout one).
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
	// those of lane's live cache.
	recurrent bool
	lane      *lane
}

// lane is a live cache and the tokens it holds; busy while a generation
// runs in it.
type lane struct {
	cache  *model.Cache
	tokens []int32
	busy   bool
	used   uint64
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

// Close releases the session's caches (the live ones and its snapshots)
// on the model's executor, once the generations running in it have ended.
// The session is empty afterwards and can be used again.
func (s *Session) Close() {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	for slices.ContainsFunc(s.lanes, func(l *lane) bool { return l.busy }) {
		s.m.laneFree.Wait()
	}
	s.free()
}

// free is Close with the model's lock held and no lane busy.
func (s *Session) free() {
	for _, l := range s.lanes {
		l.cache.Free(s.m.exec)
	}
	s.lanes = nil
	for _, sn := range s.snaps {
		sn.saving.Wait()
		if sn.cache != nil {
			sn.cache.Free(s.m.exec)
		}
	}
	s.snaps, s.bytes = nil, 0
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

// pickLane returns the free lane for prompt, the one that holds most of
// it (ties: the least recently used), or a new one while the session has
// fewer than the model runs at once and no free lane holds any of it; nil
// when every lane is busy.
func (s *Session) pickLane(prompt []int32) *lane {
	var best *lane
	bestN := -1
	for _, l := range s.lanes {
		if l.busy {
			continue
		}
		if n := s.reusable(l, prompt); n > bestN || n == bestN && l.used < best.used {
			best, bestN = l, n
		}
	}
	if (best == nil || bestN == 0) && len(s.lanes) < s.m.seqs {
		m := s.m
		best = &lane{cache: m.Model.NewCache(m.exec, m.ctxLen)}
		s.lanes = append(s.lanes, best)
	}
	if best != nil {
		s.clock++
		best.used = s.clock
	}
	return best
}

// reusable is how much of prompt lane l can start from (leaving at least
// one token to process): its live cache or a snapshot it can restore.
func (s *Session) reusable(l *lane, prompt []int32) int {
	limit := len(prompt) - 1
	best := 0
	if l.cache.Rewindable() {
		best = min(commonPrefix(l.tokens, prompt), limit)
	} else if len(l.tokens) <= limit && isPrefix(l.tokens, prompt) {
		best = len(l.tokens)
	}
	if sn := s.restorable(l, prompt, best); sn != nil {
		best = len(sn.tokens)
	}
	return best
}

// restorable is the longest snapshot longer than n that lane l can
// restore for prompt: a full one, or a recurrent one whose KV rows l
// holds.
func (s *Session) restorable(l *lane, prompt []int32, n int) *snapshot {
	var from *snapshot
	for _, sn := range s.snaps {
		if len(sn.tokens) > n && len(sn.tokens) < len(prompt) && isPrefix(sn.tokens, prompt) &&
			(!sn.recurrent || sn.lane == l && isPrefix(sn.tokens, l.tokens)) {
			n, from = len(sn.tokens), sn
		}
	}
	return from
}

// reuse positions lane l's cache at the longest reusable prefix of prompt
// (leaving at least one token to process) and returns its length.
func (s *Session) reuse(l *lane, prompt []int32) int {
	m := s.m
	best := 0
	if l.cache.Rewindable() {
		best = min(commonPrefix(l.tokens, prompt), len(prompt)-1)
	} else if len(l.tokens) < len(prompt) && isPrefix(l.tokens, prompt) {
		best = len(l.tokens)
	}
	// This prompt overwrites the lane's KV rows past its common prefix
	// with them: recurrent snapshots it does not start with take their
	// rows first (before a full snapshot is restored over them).
	s.detach(l, prompt)
	if from := s.restorable(l, prompt, best); from != nil {
		l.cache.CopyFrom(from.cache, m.exec)
		best = len(from.tokens)
		s.clock++
		from.used = s.clock
	}
	if best > 0 {
		s.stats.hits.Add(1)
	}
	l.cache.Len = best
	l.tokens = append(l.tokens[:0], prompt[:best]...)
	return best
}

// snapshot records the live cache under its tokens within the memory
// budget. Room is made by dropping the least recently used snapshots, those
// at conversation ends first: a cache-point snapshot (shared by every
// conversation with the same system prompt and tools, point set) is only
// dropped for another one. A snapshot that does not fit is not taken.
func (s *Session) snapshot(l *lane, point bool) {
	s.clock++
	for _, sn := range s.snaps {
		if len(sn.tokens) == len(l.tokens) && isPrefix(sn.tokens, l.tokens) && (!sn.recurrent || sn.lane == l) {
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
	recurrent := !l.cache.Rewindable() && !(point && s.fingerprint != "")
	size := m.Model.CacheBytes(l.cache.Len)
	if recurrent {
		size = m.Model.RecurrentBytes()
	}
	if budget < 0 || l.cache.Len == 0 {
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
	sn := &snapshot{tokens: append([]int32(nil), l.tokens...), bytes: size, used: s.clock, point: point, recurrent: recurrent}
	if recurrent {
		sn.cache, sn.lane = m.Model.NewRecurrentCache(m.exec), l
	} else {
		sn.cache, sn.parts = m.newCache(l.cache.Len)
	}
	sn.cache.CopyFrom(l.cache, m.exec)
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
// overwrite in lane l (they are a prefix of its tokens, not of prompt's)
// their own copy of those rows, within the budget; those whose rows are
// already gone are dropped.
func (s *Session) detach(l *lane, prompt []int32) {
	var gone []*snapshot
	for _, sn := range s.snaps {
		switch {
		case !sn.recurrent || sn.lane != l || isPrefix(sn.tokens, prompt):
		case isPrefix(sn.tokens, l.tokens):
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

// promote makes a recurrent snapshot a full one: its lane's KV rows up to
// its length (which hold its tokens) with its recurrent state.
func (s *Session) promote(sn *snapshot) {
	m := s.m
	n := len(sn.tokens)
	full, parts := m.newCache(n)
	lc := sn.lane.cache
	live := lc.Len
	lc.Len = n
	full.CopyFrom(lc, m.exec) // the KV rows (and the live recurrent state)
	lc.Len = live
	full.CopyFrom(sn.cache, m.exec) // the snapshot's recurrent state
	sn.cache.Free(m.exec)
	size := m.Model.CacheBytes(n)
	s.bytes += size - sn.bytes
	sn.cache, sn.parts, sn.bytes, sn.recurrent, sn.lane = full, parts, size, false, nil
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

// Stream generates from prompt, reusing what the session already holds.
// It may be called from many goroutines at once: the model's scheduler
// runs the generations together (see Options.Parallel).
func (s *Session) Stream(ctx context.Context, prompt []int32, opts GenerateOptions, emit func(Token) error) (Result, error) {
	m := s.m
	if err := m.checkIDs(prompt); err != nil {
		return Result{}, err
	}
	maxNew := opts.MaxTokens
	if maxNew <= 0 {
		maxNew = 256
	}
	maxNew = min(maxNew, m.ctxLen-len(prompt))
	q := &sequence{s: s, ctx: ctx, prompt: prompt, opts: opts, maxNew: maxNew}
	m.submit(q)
	var res Result
	var emitErr error
	defer func() {
		if emitErr == nil && res.FinishReason == "" {
			q.abandoned.Store(true) // a panic in emit: the sequence leaves at the next step
		}
	}()
	dec := m.Tok.NewStreamDecoder(true)
	var evs []seqEvent
	for {
		evs = q.out.take(evs)
		for _, ev := range evs {
			if ev.end != nil {
				ids, text := res.IDs, res.Text
				res = ev.end.res
				res.IDs, res.Text = ids, text
				if emitErr != nil {
					return res, emitErr
				}
				if ev.end.err != nil {
					return res, ev.end.err
				}
				if tail := dec.Flush(); tail != "" {
					res.Text += tail
					if emit != nil {
						if err := emit(Token{ID: -1, Text: tail}); err != nil {
							return res, err
						}
					}
				}
				return res, nil
			}
			if emitErr != nil {
				continue // the caller stopped reading: wait for the end
			}
			res.IDs = append(res.IDs, ev.tok.ID)
			if ev.eos {
				continue
			}
			tok := ev.tok
			tok.Text = dec.Add(int(tok.ID))
			res.Text += tok.Text
			if emit != nil {
				if emitErr = emit(tok); emitErr != nil {
					q.abandoned.Store(true)
				}
			}
		}
	}
}
