package mlxmoe

import (
	"context"
	"time"

	"github.com/mlx-moe/mlx-moe/model"
	"github.com/mlx-moe/mlx-moe/sample"
)

// maxSnapshots bounds how many earlier sequences a session keeps.
const maxSnapshots = 4

// Session is a sequence cache that outlives one generation. A prompt that
// starts with the tokens of an earlier prompt or generation reuses the
// cached state and processes only the rest. For models whose every layer
// keeps per-position state (KV caches) the live cache is cut back to the
// longest common prefix; for recurrent layers (linear attention), whose
// state cannot be rewound, the session snapshots the cache at the end of
// each prompt and generation and restores the longest snapshot that is a
// prefix of the new prompt.
type Session struct {
	m      *Model
	cache  *model.Cache
	tokens []int32
	snaps  []snapshot
}

type snapshot struct {
	tokens []int32
	cache  *model.Cache
	used   time.Time
}

// NewSession returns an empty session.
func (m *Model) NewSession() *Session {
	return &Session{m: m}
}

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
		if sn.cache != nil {
			sn.cache.Free(s.m.exec)
		}
	}
	s.snaps, s.tokens = nil, s.tokens[:0]
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
	var from *snapshot
	for i := range s.snaps {
		sn := &s.snaps[i]
		if len(sn.tokens) > best && len(sn.tokens) <= limit && isPrefix(sn.tokens, prompt) {
			best, from = len(sn.tokens), sn
		}
	}
	if from != nil {
		s.cache.CopyFrom(from.cache, m.exec)
		from.used = time.Now()
	}
	s.cache.Len = best
	s.tokens = append(s.tokens[:0], prompt[:best]...)
	return best
}

// snapshot records the live cache under its tokens, replacing the least
// recently used snapshot when full.
func (s *Session) snapshot() {
	for _, sn := range s.snaps {
		if len(sn.tokens) == len(s.tokens) && isPrefix(sn.tokens, s.tokens) {
			return
		}
	}
	m := s.m
	var sn *snapshot
	if len(s.snaps) < maxSnapshots {
		s.snaps = append(s.snaps, snapshot{})
		sn = &s.snaps[len(s.snaps)-1]
	} else {
		sn = &s.snaps[0]
		for i := range s.snaps {
			if s.snaps[i].used.Before(sn.used) {
				sn = &s.snaps[i]
			}
		}
	}
	if sn.cache == nil || sn.cache.MaxLen < s.cache.Len {
		if sn.cache != nil {
			sn.cache.Free(m.exec)
		}
		sn.cache = m.Model.NewCache(m.exec, s.cache.Len)
	}
	sn.cache.CopyFrom(s.cache, m.exec)
	sn.tokens = append(sn.tokens[:0], s.tokens...)
	sn.used = time.Now()
}

// Stream generates from prompt, reusing what the session already holds.
func (s *Session) Stream(ctx context.Context, prompt []int32, opts GenerateOptions, emit func(Token) error) (Result, error) {
	m := s.m
	if err := m.checkIDs(prompt); err != nil {
		return Result{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	maxNew := opts.MaxTokens
	if maxNew <= 0 {
		maxNew = 256
	}
	maxNew = min(maxNew, m.ctxLen-len(prompt))
	res := Result{PromptTokens: len(prompt)}
	start := time.Now()
	res.CachedTokens = s.reuse(prompt)
	logits, err := m.runner.Forward(s.cache, prompt[res.CachedTokens:], false)
	if err != nil {
		s.tokens, s.cache.Len = s.tokens[:0], 0
		return res, err
	}
	s.tokens = append(s.tokens, prompt[res.CachedTokens:]...)
	if !s.cache.Rewindable() {
		s.snapshot()
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
		id := sampler.Next(logits)
		res.IDs = append(res.IDs, id)
		if m.eos[id] && !opts.IgnoreEOS {
			res.FinishReason = "stop"
			break
		}
		text := dec.Add(int(id))
		res.Text += text
		if emit != nil {
			if err := emit(Token{ID: id, Text: text}); err != nil {
				res.Decode = time.Since(decodeStart)
				return res, err
			}
		}
		if len(res.IDs) == maxNew {
			break
		}
		if logits, err = m.runner.Forward(s.cache, []int32{id}, false); err != nil {
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
		s.snapshot()
	}
	res.Decode = time.Since(decodeStart)
	return res, nil
}
