// Package server is the HTTP front of mlx-moe: OpenAI-compatible
// (/v1/chat/completions, /v1/completions, /v1/models) and
// Anthropic-compatible (/v1/messages, /v1/messages/count_tokens) endpoints,
// plus /health and Prometheus /metrics, over one loaded model.
//
// The model is a Backend. The server renders chat prompts through it,
// queues requests FIFO (Config.Parallel generations at a time, a bounded
// number waiting), applies stop strings, parses tool calls and thinking out of the
// text (package chat/toolcall) and writes each API's response or event
// stream. A client that disconnects cancels its generation.
//
// Before any handler runs, requests a web page could send are refused
// (Host, Origin and Content-Type checks; Config.AllowedHosts and
// Config.CORSOrigins open them up), and a POST waits for a share of a
// parse budget sized by its body, which bounds the memory that reading,
// rendering and tokenizing take. Drain begins a shutdown; queued requests,
// cut generations and panics are all answered in the API's own shape.
//
//	srv, err := server.New(backend, server.Config{MaxQueue: 16})
//	http.ListenAndServe("127.0.0.1:8080", srv.Handler())
package server

import (
	"context"
	"encoding/json"
	"time"
)

// Backend is the loaded model as the server sees it. Generate is called for
// up to Config.Parallel requests at a time; the other methods may be
// called concurrently with it and with each other.
type Backend interface {
	// ModelID names the model in responses and in /v1/models.
	ModelID() string
	// ContextLength is the most tokens (prompt and completion) a sequence may hold.
	ContextLength() int
	// Tokenize turns a raw prompt (/v1/completions) into token ids, with
	// any BOS the tokenizer adds.
	Tokenize(text string) []int
	// RenderChat renders a conversation with the model's chat template and
	// tokenizes the result as the template wrote it (special tokens as
	// such, no BOS added on top).
	RenderChat(p ChatPrompt) (text string, ids []int, err error)
	// ChatTemplateSource is the template's source text; the server reads the
	// model's tool-call markup from it.
	ChatTemplateSource() string
	// Generate prefills req.Prompt (reusing whatever prefix of it the
	// backend still has cached) and samples up to req.MaxTokens tokens,
	// calling emit for each one. It stops at an end-of-sequence token, at
	// MaxTokens, when ctx is done, or when emit returns an error; it then
	// returns the result so far together with ctx's or emit's error.
	Generate(ctx context.Context, req GenRequest, emit func(Token) error) (GenResult, error)
	// Stats are engine gauges and counters for /metrics, keyed by metric
	// name without prefix (e.g. "expert_hit_rate", "expert_bytes_paged_total").
	Stats() map[string]float64
}

// BatchReporter is implemented by a Backend that runs generations
// together; its figures join /metrics.
type BatchReporter interface {
	BatchStats() BatchStats
}

// BatchStats describe a batching backend's scheduler.
type BatchStats struct {
	Running, Waiting int // sequences in the batch, and waiting for a place in it
	// Batch counts the forward passes by how many sequences they advanced:
	// Batch[i] those with at most BatchBuckets[i], the last entry those
	// with more; BatchSum is the sequences they advanced in all.
	BatchBuckets []int
	Batch        []int64
	BatchSum     int64
	// TokensPerSecond is the decode rate of all sequences together, over
	// the last seconds.
	TokensPerSecond float64
}

// ChatPrompt is what RenderChat renders.
type ChatPrompt struct {
	Messages []Message
	Tools    []Tool
	// AddGenerationPrompt opens the assistant's turn at the end.
	AddGenerationPrompt bool
	// Kwargs are extra template variables, e.g. "enable_thinking".
	Kwargs map[string]any
}

// Message is one turn of a conversation, in the shape chat templates expect.
type Message struct {
	Role             string // system, user, assistant or tool
	Content          string
	ReasoningContent string     // assistant thinking, if any
	ToolCalls        []ToolCall // assistant tool calls
	ToolCallID       string     // tool: the call this result answers
	Name             string     // tool: the function's name, when known
}

// ToolCall is a function call the assistant made.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // a JSON object
}

// Tool is a function the client offers the model.
type Tool struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON schema of the arguments object
}

// Sampling are the decoding settings of one request.
type Sampling struct {
	Temperature      float64 // 0: greedy
	TopP             float64 // 1: off
	TopK             int     // 0: off
	MinP             float64 // 0: off
	Seed             *int64  // nil: a fresh seed
	PresencePenalty  float64
	FrequencyPenalty float64
}

// GenRequest is one generation.
type GenRequest struct {
	Prompt    []int
	MaxTokens int
	Sampling  Sampling
	// Logprobs asks for each token's log-probability (Token.Logprob) and
	// TopLogprobs for that many most likely alternatives (Token.Top).
	Logprobs    bool
	TopLogprobs int
	// LogitsMask, if set, is called with each step's logits before
	// sampling and the ids generated so far; it may lower logits (to -Inf
	// to forbid a token). It is the hook for constrained decoding.
	LogitsMask func(generated []int, logits []float32)
	// CachePoints are prompt lengths worth keeping the cache state at for
	// other requests (where the system prompt and tools end): a new
	// conversation with the same system prompt and tools starts there.
	CachePoints []int
}

// Token is one generated token and the text it completes. Text holds only
// whole UTF-8 characters (a token that ends mid-character gives "" and the
// next one carries the character). Special tokens that carry markup (tool
// calls, <think>) must come through as their text.
type Token struct {
	ID   int
	Text string
	// Logprob is set when the request asked for logprobs: the token's own
	// text (its bytes, which may be part of a character) and
	// log-probability; Top are the most likely alternatives.
	Logprob *Logprob
	Top     []Logprob
}

// Logprob is a token and its log-probability under the model.
type Logprob struct {
	Token   string
	Logprob float64
}

// Finish says why a generation ended.
type Finish int

const (
	FinishEOS    Finish = iota // the model ended its turn
	FinishLength               // MaxTokens reached
)

// GenResult describes a finished (or stopped) generation.
type GenResult struct {
	PromptTokens     int
	CachedTokens     int // prompt tokens reused from the cache, not prefilled
	CompletionTokens int
	Finish           Finish
	PrefillTime      time.Duration
	DecodeTime       time.Duration
	// QueueTime is how long the backend held the request before it began
	// (waiting for a place in its batch).
	QueueTime time.Duration
}
