package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/mlx-moe/mlx-moe/chat/toolcall"
)

// Config tunes a Server. Zero values take the defaults named.
type Config struct {
	// MaxQueue is how many requests may wait while generations run
	// (default 16); more are turned away (OpenAI 429, Anthropic 529).
	MaxQueue int
	// Parallel is how many generations the backend is given at once
	// (default 1: one at a time); a backend that batches them (the engine)
	// runs them together.
	Parallel int
	// MaxTokens caps the tokens generated per request, and is the default
	// when a request names none (0: up to the context length).
	MaxTokens int
	// ContextLength limits prompt plus completion (0: the backend's).
	ContextLength int
	// APIKey, if set, is required as "Authorization: Bearer KEY" or
	// "x-api-key: KEY" on /v1 routes.
	APIKey string
	// MaxBodyBytes limits request bodies (default 32 MiB).
	MaxBodyBytes int64
	// PingInterval spaces keep-alive events on streams (default 10s).
	PingInterval time.Duration
	// WriteTimeout bounds each write of a stream (default 60s).
	WriteTimeout time.Duration
	// StrictModel turns away (404) requests that name a model other than
	// the loaded one. By default any name is accepted and answered by the
	// loaded model under its own id, so agents that send their own model
	// names (Claude Code, Codex) work without configuration.
	StrictModel bool
	// CachedModels lists models in the local cache for /v1/models.
	CachedModels func() []string
	// ToolFormat overrides the tool-call format read from the chat template
	// ("qwen3", "qwen3-coder", "glm", "deepseek-v3", "none"; "" detects).
	ToolFormat string
	// Sampling holds the defaults for fields a request leaves out (e.g. the
	// model's generation_config.json). The zero value means the APIs' own
	// defaults, temperature 1 and top_p 1; a TopP of 0 means 1.
	Sampling Sampling
	// ResponseStoreBytes bounds the memory of responses kept for
	// previous_response_id (default 64 MiB).
	ResponseStoreBytes int64
	// Logger receives one line per request (default: discard).
	Logger *slog.Logger

	// AllowedHosts are Host names accepted besides localhost, 127.0.0.1
	// and [::1]; "*" accepts any (for a server reached over the network).
	// Other names are refused, which defeats DNS rebinding.
	AllowedHosts []string
	// CORSOrigins are the browser origins ("http://localhost:3000") that
	// may call the server, with CORS answers; "*" allows any. A request
	// from any other origin is refused (403).
	CORSOrigins []string
	// MaxParseBytes bounds the request bodies being read, parsed and
	// tokenized at once, which bounds the memory they take (default
	// MaxBodyBytes: one largest request at a time, many small ones).
	MaxParseBytes int64
	// BodyTimeout is how long a request body may take to arrive (default 60s).
	BodyTimeout time.Duration
}

// Server serves one Backend over HTTP.
type Server struct {
	b         Backend
	cfg       Config
	format    toolcall.Format
	queue     *queue
	admission *admission
	metrics   *metrics
	stored    *respStore
	created   int64
	vocab     vocabCache // for constrained decoding
}

// New returns a server for b.
func New(b Backend, cfg Config) (*Server, error) {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 16
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 32 << 20
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 10 * time.Second
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 60 * time.Second
	}
	if cfg.ContextLength <= 0 {
		cfg.ContextLength = b.ContextLength()
	}
	if cfg.Sampling == (Sampling{}) {
		cfg.Sampling.Temperature = 1
	}
	if cfg.Sampling.TopP == 0 {
		cfg.Sampling.TopP = 1
	}
	if cfg.ResponseStoreBytes <= 0 {
		cfg.ResponseStoreBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxParseBytes <= 0 {
		cfg.MaxParseBytes = cfg.MaxBodyBytes
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 60 * time.Second
	}
	format := toolcall.Detect(b.ChatTemplateSource())
	if cfg.ToolFormat != "" {
		f, ok := toolcall.ParseFormat(cfg.ToolFormat)
		if !ok {
			return nil, fmt.Errorf("tool-call format %q is not one of qwen3, qwen3-coder, glm, deepseek-v3, none", cfg.ToolFormat)
		}
		format = f
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 1
	}
	mt := newMetrics()
	return &Server{
		b: b, cfg: cfg,
		format:    format,
		queue:     &queue{max: cfg.MaxQueue, slots: cfg.Parallel, waits: mt.queued},
		admission: &admission{budget: cfg.MaxParseBytes, maxWaiting: cfg.MaxQueue},
		metrics:   mt,
		stored:    newRespStore(cfg.ResponseStoreBytes),
		created:   time.Now().Unix(),
	}, nil
}

// Handler routes the server's endpoints.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.record, s.recoverPanics, s.guard, s.admitBody)
	r.Get("/", s.root)
	r.Head("/", s.root)
	r.Get("/health", s.health)
	r.Get("/metrics", s.serveMetrics)
	r.Group(func(r chi.Router) {
		r.Use(s.authorize(openAI))
		r.Get("/v1/models", s.models)
		r.Get("/v1/models/*", s.model) // ids hold slashes (org/name)
		r.Post("/v1/chat/completions", s.chatCompletions)
		r.Post("/v1/completions", s.completions)
		r.Post("/v1/responses", s.responses)
	})
	r.Group(func(r chi.Router) {
		r.Use(s.authorize(anthropic))
		r.Post("/v1/messages", s.messages)
		r.Post("/v1/messages/count_tokens", s.countTokens)
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		dialectOf(r).writeError(w, &apiError{kind: errNotFound, msg: fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)})
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		dialectOf(r).writeError(w, &apiError{kind: errMethod, msg: fmt.Sprintf("method %s is not allowed on %s", r.Method, r.URL.Path)})
	})
	return r
}

func dialectOf(r *http.Request) dialect {
	if strings.HasPrefix(r.URL.Path, "/v1/messages") {
		return anthropic
	}
	return openAI
}

// statusWriter remembers the response status for metrics and the log. It
// unwraps for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// record counts and logs each request, and limits its body size.
func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		r.Body = http.MaxBytesReader(sw, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(sw, r)
		endpoint := "other" // unknown paths share one label
		if rc := chi.RouteContext(r.Context()); rc != nil && rc.RoutePattern() != "" {
			endpoint = rc.RoutePattern()
		}
		if sw.status == 0 {
			sw.status = 499 // the client left before a response began
		}
		s.metrics.request(endpoint, sw.status)
		s.cfg.Logger.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
			"duration", time.Since(start).Round(time.Millisecond))
	})
}

// authorize requires the API key, when one is configured.
func (s *Server) authorize(d dialect) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if s.cfg.APIKey == "" {
				next.ServeHTTP(w, r)
				return
			}
			key := r.Header.Get("x-api-key")
			if a := r.Header.Get("Authorization"); key == "" && len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
				key = a[7:]
			}
			if subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) != 1 {
				d.writeError(w, &apiError{kind: errAuth, msg: "invalid or missing API key: send it as 'Authorization: Bearer KEY' or 'x-api-key: KEY'"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// decode reads the JSON request body into v.
func decode(r *http.Request, v any) *apiError {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return &apiError{kind: errTooLarge, msg: fmt.Sprintf("request body is larger than %d bytes", tooLarge.Limit)}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return &apiError{kind: errTimeout, msg: "the request body did not arrive in time (the server allows --body-timeout)"}
		}
		return invalid("", "reading the request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return invalid("", "the request body is empty; expected a JSON object")
	}
	if err := json.Unmarshal(body, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return invalid(te.Field, "field %q: expected %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return invalid("", "the request body is not valid JSON: %v", err)
	}
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	waiting, running := s.queue.depth()
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "model": s.b.ModelID(), "generating": running > 0, "running": running,
		"queue": waiting, "waiting_to_read": s.admission.depth()})
}

func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	waiting, running := s.queue.depth()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	var batch *BatchStats
	if br, ok := s.b.(BatchReporter); ok {
		bs := br.BatchStats()
		batch = &bs
	}
	s.metrics.write(w, waiting, running, s.b.Stats(), batch)
}

// checkModel accepts any name, or with StrictModel only the loaded
// model's id (or its last path element, any case) or an empty name.
func (s *Server) checkModel(name string) *apiError {
	if !s.cfg.StrictModel || s.servedName(name) {
		return nil
	}
	return &apiError{kind: errNotFound, param: "model",
		msg: fmt.Sprintf("model %q is not served here; this server runs %q (started with --strict-model)", name, s.b.ModelID())}
}

// servedName reports whether name is the loaded model's id or its last
// path element (any case), or empty.
func (s *Server) servedName(name string) bool {
	id := s.b.ModelID()
	base := id[strings.LastIndex(id, "/")+1:]
	return name == "" || strings.EqualFold(name, id) || strings.EqualFold(name, base)
}

func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// job is one prepared generation.
type job struct {
	prompt    []int
	points    []int // cache points (GenRequest.CachePoints)
	maxTokens int
	sampling  Sampling
	stops     []string
	parse     *toolcall.Options // nil: raw text (completions)
	// logprobs asks for log-probabilities, top for that many alternatives;
	// scored are the tokens that came with them, sent how many of those a
	// stream has written.
	logprobs bool
	top      int
	scored   []Token
	sent     int
	// mask constrains sampling (GenRequest.LogitsMask); nil: none.
	mask func(generated []int, logits []float32)
}

// chatJob renders a conversation and checks it against the context.
func (s *Server) chatJob(p ChatPrompt, parseTools bool, maxTokens *int, sampling Sampling, stops []string) (*job, *apiError) {
	for i := range p.Messages {
		if p.Messages[i].Role == "system" {
			p.Messages[i].Content = normalizeSystem(p.Messages[i].Content)
		}
	}
	text, ids, err := s.render(p)
	if err != nil {
		return nil, invalid("messages", "rendering the chat template: %v", err)
	}
	j, e := s.newJob(ids, maxTokens, sampling, stops)
	if e != nil {
		return nil, e
	}
	j.points = s.cachePoints(p, ids)
	opts := toolcall.Options{Format: s.format, InThinking: opensThinking(text)}
	if parseTools {
		for _, t := range p.Tools {
			opts.Tools = append(opts.Tools, toolcall.Tool{Name: t.Name, Parameters: t.Parameters})
		}
	}
	j.parse = &opts
	return j, nil
}

// opensThinking reports whether the rendered prompt ends inside <think>, so
// that the output starts with reasoning.
func opensThinking(prompt string) bool {
	return strings.HasSuffix(strings.TrimRight(prompt, " \t\r\n"), "<think>")
}

// newJob sizes the completion of a tokenized prompt to fit the context.
func (s *Server) newJob(ids []int, maxTokens *int, sampling Sampling, stops []string) (*job, *apiError) {
	ctxLen := s.cfg.ContextLength
	if len(ids) >= ctxLen {
		return nil, &apiError{kind: errContext, param: "messages",
			msg: fmt.Sprintf("prompt is too long: %d tokens, the context holds %d (including at least 1 token of output)", len(ids), ctxLen)}
	}
	n := ctxLen - len(ids)
	if s.cfg.MaxTokens > 0 {
		n = min(n, s.cfg.MaxTokens)
	}
	if maxTokens != nil {
		if *maxTokens < 1 {
			return nil, invalid("max_tokens", "max_tokens must be at least 1, got %d", *maxTokens)
		}
		n = min(n, *maxTokens)
	}
	var kept []string
	for _, s := range stops {
		if s != "" {
			kept = append(kept, s)
		}
	}
	return &job{prompt: ids, maxTokens: n, sampling: sampling, stops: kept}, nil
}

// sampling fills a request's sampling fields over the server's defaults.
func (s *Server) sampling(temp, topP *float64, topK *int, minP *float64, seed *int64, presence, frequency *float64) (Sampling, *apiError) {
	out := s.cfg.Sampling
	set := func(dst *float64, v *float64, name string, lo, hi float64) *apiError {
		if v == nil {
			return nil
		}
		if *v < lo || *v > hi {
			return invalid(name, "%s must be between %g and %g, got %g", name, lo, hi, *v)
		}
		*dst = *v
		return nil
	}
	for _, e := range []*apiError{
		set(&out.Temperature, temp, "temperature", 0, 2),
		set(&out.TopP, topP, "top_p", 0, 1),
		set(&out.MinP, minP, "min_p", 0, 1),
		set(&out.PresencePenalty, presence, "presence_penalty", -2, 2),
		set(&out.FrequencyPenalty, frequency, "frequency_penalty", -2, 2),
	} {
		if e != nil {
			return out, e
		}
	}
	if topK != nil {
		if *topK < 0 {
			return out, invalid("top_k", "top_k must be 0 (off) or positive, got %d", *topK)
		}
		out.TopK = *topK
	}
	if seed != nil {
		out.Seed = seed
	}
	return out, nil
}

// errStopString ends a generation at a stop string.
var errStopString = errors.New("stop string reached")

// outcome is how a generation ended.
type outcome struct {
	res     GenResult
	finish  string // "eos", "length", "stop" (a stop string), or "" when it failed
	stopped string // the stop string that ended it
	err     error  // cancelled or failed
}

// run drives one generation. Text passes through the stop strings and (for
// chat) the tool-call parser, and each resulting event goes to sink. A sink
// error or ctx ends the generation within one token.
func (s *Server) run(ctx context.Context, j *job, sink func(toolcall.Event) error) outcome {
	var parser *toolcall.Parser
	if j.parse != nil {
		parser = toolcall.NewParser(*j.parse)
	}
	deliver := func(text string, final bool) error {
		var evs []toolcall.Event
		switch {
		case parser == nil:
			if text != "" {
				evs = []toolcall.Event{{Kind: toolcall.Content, Text: text}}
			}
		default:
			evs = parser.Feed(text)
			if final {
				evs = append(evs, parser.Close()...)
			}
		}
		for _, e := range evs {
			if err := sink(e); err != nil {
				return err
			}
		}
		return nil
	}
	var held string
	var out outcome
	res, err := s.generateRecovered(ctx, GenRequest{Prompt: j.prompt, MaxTokens: j.maxTokens, Sampling: j.sampling, CachePoints: j.points,
		Logprobs: j.logprobs, TopLogprobs: j.top, LogitsMask: j.mask},
		func(t Token) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			j.noteLogprob(t)
			held += t.Text
			if i, stop := firstStop(held, j.stops); stop != "" {
				out.stopped = stop
				if err := deliver(held[:i], false); err != nil {
					return err
				}
				return errStopString
			}
			keep := toolcall.PartialSuffix(held, j.stops)
			text := held[:len(held)-keep]
			held = held[len(held)-keep:]
			return deliver(text, false)
		})
	out.res = res
	switch {
	case errors.Is(err, errStopString):
		out.finish = "stop"
		out.err = deliver("", true)
	case err != nil:
		out.err = err
	default:
		out.finish = "eos"
		if res.Finish == FinishLength {
			out.finish = "length"
		}
		out.err = deliver(held, true)
	}
	s.metrics.generation(res, ctx.Err() != nil)
	s.cfg.Logger.Info("generation", "prompt_tokens", res.PromptTokens, "cached_tokens", res.CachedTokens,
		"cache_points", fmt.Sprint(j.points), "completion_tokens", res.CompletionTokens, "finish", out.finish,
		"cancelled", ctx.Err() != nil)
	return out
}

// generate serves a non-streaming response: it queues the request, runs j
// when its turn comes with each event going to sink, and calls reply with
// the outcome while the turn is still held. A full queue or a failed
// generation is written as an error in dialect d; a client that left gets
// nothing.
func (s *Server) generate(w http.ResponseWriter, r *http.Request, d dialect, j *job, sink func(toolcall.Event) error, reply func(outcome)) {
	t, e := s.admit()
	if e != nil {
		d.writeError(w, e)
		return
	}
	defer t.done()
	if err := t.wait(r.Context()); err != nil {
		if e := cutError(r.Context(), err); e != nil {
			d.writeError(w, e)
		}
		return // else the client left
	}
	out := s.run(r.Context(), j, sink)
	if out.err != nil {
		if r.Context().Err() == nil {
			d.writeError(w, &apiError{kind: errInternal, msg: "generation failed: " + out.err.Error()})
		} else if e := cutError(r.Context(), out.err); e != nil {
			d.writeError(w, e)
		}
		return
	}
	reply(out)
}

// firstStop finds the earliest stop string in s.
func firstStop(s string, stops []string) (int, string) {
	best, which := -1, ""
	for _, t := range stops {
		if i := strings.Index(s, t); i >= 0 && (best < 0 || i < best || i == best && len(t) > len(which)) {
			best, which = i, t
		}
	}
	return best, which
}

// admit queues a request: it fails at once if the queue is full.
func (s *Server) admit() (*ticket, *apiError) {
	t, err := s.queue.enqueue()
	if errors.Is(err, errDraining) {
		return nil, shuttingDown()
	}
	if err != nil {
		waiting, _ := s.queue.depth()
		return nil, &apiError{kind: errOverloaded, msg: fmt.Sprintf("the server is busy: %d requests are waiting (--max-queue); retry later", waiting)}
	}
	return t, nil
}

// validCalls moves calls whose arguments are not a JSON object (a model
// that broke its JSON) back into the text, for non-streaming responses.
func validCalls(r toolcall.Result) toolcall.Result {
	out := r
	out.Calls = nil
	for _, c := range r.Calls {
		if isJSONObject(c.Arguments) {
			out.Calls = append(out.Calls, c)
		} else {
			out.Content += c.Raw
		}
	}
	return out
}

func isJSONObject(s string) bool {
	s = strings.TrimSpace(s)
	return strings.HasPrefix(s, "{") && json.Valid([]byte(s))
}
