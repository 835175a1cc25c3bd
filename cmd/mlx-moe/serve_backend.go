package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/chat"
	"github.com/mlx-moe/mlx-moe/sample"
	"github.com/mlx-moe/mlx-moe/server"
)

func init() { newServeBackend = loadServeBackend }

// engineBackend adapts a loaded model to the server's Backend interface.
type engineBackend struct {
	m *mlxmoe.Model
}

func loadServeBackend(o serveOptions, stderr io.Writer) (server.Backend, func() error, error) {
	m, err := o.model.load(stderr)
	if err != nil {
		return nil, nil, err
	}
	return &engineBackend{m: m}, m.Close, nil
}

func (b *engineBackend) ModelID() string    { return b.m.Name }
func (b *engineBackend) Parallel() int      { return b.m.Parallel() }
func (b *engineBackend) ContextLength() int { return b.m.ContextLength() }

// Tokenize encodes a raw prompt with any BOS token the model expects.
func (b *engineBackend) Tokenize(text string) []int { return toInts(b.m.Encode(text)) }

func toInts(ids []int32) []int {
	out := make([]int, len(ids))
	for i, id := range ids {
		out[i] = int(id)
	}
	return out
}

func (b *engineBackend) RenderChat(p server.ChatPrompt) (string, []int, error) {
	msgs := make([]chat.Message, len(p.Messages))
	for i, m := range p.Messages {
		msgs[i] = chat.Message{Role: m.Role, Content: m.Content, ReasoningContent: m.ReasoningContent, ToolCallID: m.ToolCallID, Name: m.Name}
		for _, tc := range m.ToolCalls {
			msgs[i].ToolCalls = append(msgs[i].ToolCalls, chat.ToolCall{ID: tc.ID, Name: tc.Name, Arguments: tc.Arguments})
		}
	}
	var tools []json.RawMessage
	for _, t := range p.Tools {
		params := t.Parameters
		if len(params) == 0 {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		raw, err := json.Marshal(struct {
			Type     string `json:"type"`
			Function struct {
				Name        string          `json:"name"`
				Description string          `json:"description,omitempty"`
				Parameters  json.RawMessage `json:"parameters"`
			} `json:"function"`
		}{Type: "function", Function: struct {
			Name        string          `json:"name"`
			Description string          `json:"description,omitempty"`
			Parameters  json.RawMessage `json:"parameters"`
		}{t.Name, t.Description, params}})
		if err != nil {
			return "", nil, err
		}
		tools = append(tools, raw)
	}
	text, err := b.m.Template.Render(msgs, tools, p.AddGenerationPrompt, p.Kwargs)
	if err != nil {
		return "", nil, err
	}
	return text, toInts(b.m.EncodeChat(text)), nil
}

func (b *engineBackend) ChatTemplateSource() string { return b.m.Template.Source() }

func (b *engineBackend) Generate(ctx context.Context, req server.GenRequest, emit func(server.Token) error) (server.GenResult, error) {
	prompt := make([]int32, len(req.Prompt))
	for i, id := range req.Prompt {
		prompt[i] = int32(id)
	}
	s := req.Sampling
	so := sample.Options{Temperature: s.Temperature, TopP: s.TopP, TopK: s.TopK, MinP: s.MinP,
		PresencePenalty: s.PresencePenalty, FrequencyPenalty: s.FrequencyPenalty}
	if s.Seed != nil {
		so.Seed = uint64(*s.Seed)
	} else {
		so.Seed = uint64(time.Now().UnixNano())
	}
	opts := mlxmoe.GenerateOptions{MaxTokens: req.MaxTokens, Sampling: so, CachePoints: req.CachePoints,
		Logprobs: req.Logprobs, TopLogprobs: req.TopLogprobs}
	if mask := req.LogitsMask; mask != nil {
		var generated []int
		opts.LogitsMask = func(ids []int32, logits []float32) {
			for _, id := range ids[len(generated):] {
				generated = append(generated, int(id))
			}
			mask(generated, logits)
		}
	}
	res, err := b.m.Stream(ctx, prompt, opts, func(t mlxmoe.Token) error {
		tok := server.Token{ID: int(t.ID), Text: t.Text}
		if req.Logprobs && t.ID >= 0 {
			tok.Logprob = &server.Logprob{Token: b.tokenText(t.ID), Logprob: float64(t.Logprob)}
			for _, a := range t.Top {
				tok.Top = append(tok.Top, server.Logprob{Token: b.tokenText(a.ID), Logprob: float64(a.Logprob)})
			}
		}
		return emit(tok)
	})
	out := server.GenResult{PromptTokens: res.PromptTokens, CachedTokens: res.CachedTokens,
		CompletionTokens: len(res.IDs), PrefillTime: res.Prefill, DecodeTime: res.Decode, QueueTime: res.Queued, Finish: server.FinishLength}
	if res.FinishReason == "stop" {
		out.Finish = server.FinishEOS
	}
	if err == nil && res.FinishReason == "cancelled" {
		err = ctx.Err()
	}
	if errors.Is(err, mlxmoe.ErrContextLength) {
		return out, fmt.Errorf("%w", err)
	}
	return out, err
}

// tokenText is one token's own text (its bytes: possibly part of a
// character), special tokens included.
func (b *engineBackend) tokenText(id int32) string { return b.m.Tok.Decode([]int{int(id)}, false) }

func (b *engineBackend) Stats() map[string]float64 {
	pc := b.m.PromptCacheStats()
	out := map[string]float64{
		"prompt_cache_bytes":   float64(pc.Bytes),
		"prompt_cache_entries": float64(pc.Snapshots),
	}
	st, ok := b.m.ExpertStats()
	if !ok {
		return out
	}
	for k, v := range map[string]float64{
		"expert_hit_rate":           st.Total.HitRate(),
		"expert_hits_total":         float64(st.Total.Hits),
		"expert_misses_total":       float64(st.Total.Misses),
		"expert_evictions_total":    float64(st.Total.Evictions),
		"expert_bytes_paged_total":  float64(st.Total.Bytes),
		"expert_read_gb_per_second": st.ReadGBps,
		// Whether the server is disk-bound: the time forward passes
		// waited for expert reads, and how deep the read queue ran.
		"expert_io_wait_seconds_total": st.Total.IOWait.Seconds(),
		"expert_io_busy_seconds_total": st.IOBusy.Seconds(),
		"expert_reads_in_flight_mean":  st.InFlight,
		"expert_prefetch_precision":    st.Total.PrefetchPrecision(),
		"expert_prefetch_recall":       st.Total.PrefetchRecall(),
	} {
		out[k] = v
	}
	return out
}

// BatchStats are the scheduler's figures for /metrics.
func (b *engineBackend) BatchStats() server.BatchStats {
	st := b.m.SchedulerStats()
	return server.BatchStats{Running: st.Running, Waiting: st.Waiting, BatchBuckets: st.BatchBuckets, Batch: st.Batch,
		BatchSum: st.Advanced, TokensPerSecond: st.TokensPerSecond}
}

// TokenBytes gives the server each token's bytes for constrained decoding;
// special tokens are left out (markup is spelled with ordinary tokens).
func (b *engineBackend) TokenBytes() ([][]byte, []int) {
	tok := b.m.Tok
	out := make([][]byte, tok.VocabSize())
	for id := range out {
		if !tok.IsSpecial(id) {
			out[id] = tok.TokenBytes(id)
		}
	}
	return out, tok.EOSTokenIDs()
}
