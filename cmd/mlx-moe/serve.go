package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/server"
)

var serveCmd = &command{
	name:    "serve",
	summary: "serve the model over OpenAI- and Anthropic-compatible HTTP APIs",
}

func init() {
	serveCmd.run = runServe
	register(serveCmd)
}

// serveOptions are the serve flags that concern loading the model: the
// shared model flags (--model, --context, --memory, --capacity, --policy,
// --profile, --kv-bits, ...).
type serveOptions struct {
	model modelFlags
}

// newServeBackend loads the model for serve and returns it with a function
// that releases it. The file that wires the engine in sets it; while it is
// nil, serve says that no engine is available.
var newServeBackend func(o serveOptions, stderr io.Writer) (server.Backend, func() error, error)

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(serveCmd, `serve [ORG/NAME | DIR | --model ...] [--host 127.0.0.1] [--port 8080] [flags]

Endpoints: POST /v1/chat/completions, /v1/completions, /v1/responses,
/v1/messages, /v1/messages/count_tokens; GET /v1/models, /v1/models/{id},
/health, /metrics, HEAD and GET /.
SIGINT or SIGTERM stops the server: queued requests get 503 at once,
in-flight ones get --shutdown-grace to finish, then are cancelled with an
error event (or 503); the exit status is 0.

Web pages cannot use the server: requests must name this machine in Host
(localhost, 127.0.0.1, [::1], --host, or --allowed-host), POST bodies must
be application/json, and browser requests from an Origin not given with
--cors-origin get 403.`, stderr)
	var o serveOptions
	o.model.register(fs, " (default: the embedded default model)")
	host := fs.String("host", "127.0.0.1", "address to listen on (0.0.0.0 for every interface)")
	port := fs.Int("port", 8080, "TCP port (0: any free port)")
	var cfg server.Config
	fs.StringVar(&cfg.APIKey, "api-key", "", "require this key as 'Authorization: Bearer KEY' or 'x-api-key: KEY' (default $MLXMOE_API_KEY)")
	fs.IntVar(&cfg.MaxTokens, "max-tokens", 0, "cap on tokens generated per request, and the default when a request names none (0: up to the context)")
	fs.IntVar(&cfg.MaxQueue, "max-queue", 16, "requests that may wait while --parallel generate; more get 429 (OpenAI) or 529 (Anthropic)")
	fs.IntVar(&o.model.parallel, "parallel", 4, "generations that run together, batched in each forward pass (fewer when their caches do not fit the memory budget)")
	fs.IntVar(&o.model.prefillChunk, "prefill-chunk", 0, "most prompt tokens one forward pass processes next to the running streams (0: 256, up to 2048 on a paged model, whose every chunk reads nearly all the experts)")
	fs.Float64Var(&o.model.prefillPace, "prefill-pace", 1.5, "while streams decode, size prefill chunks so a step takes about this many decode steps at most (their inter-token gap stays near it; the prompt's cache traffic can slow their own step, so keep it well under the gap you can accept); 0: fixed chunks, results independent of what else runs")
	fs.BoolVar(&cfg.StrictModel, "strict-model", false, "answer 404 to requests naming another model (default: any name is served by the loaded model)")
	fs.Bool("any-model", true, "accepted for compatibility: any model name is served by default now (see --strict-model)")
	fs.StringVar(&cfg.ToolFormat, "tool-format", "", "tool-call markup the model writes: qwen3, qwen3-coder, glm, deepseek-v3 or none (default: read from the chat template)")
	maxBody := fs.Int("max-body-mb", 32, "largest request body in MiB")
	fs.StringVar(&o.model.promptCacheDir, "prompt-cache", "", "directory that keeps the prompt states where system prompts and tools end, so a restart does not prefill them again (default: memory only)")
	promptCache := fs.Int("prompt-cache-mb", mlxmoe.DefaultPromptCacheBytes>>20, "memory for cached prompt states (system+tools prefixes, recent conversations), least recently used dropped first; 0 keeps none")
	quiet := fs.Bool("quiet", false, "do not log each request to stderr")
	grace := fs.Duration("shutdown-grace", 10*time.Second, "on SIGINT/SIGTERM, how long in-flight requests may run before they are cancelled")
	var allowedHosts, corsOrigins listFlag
	fs.Var(&allowedHosts, "allowed-host", "also accept requests whose Host is this name (repeatable; default: localhost, 127.0.0.1, [::1] and --host; any when --host is not a loopback address)")
	fs.Var(&corsOrigins, "cors-origin", "let browser pages from this origin call the server, e.g. http://localhost:3000 (repeatable; '*' for any); other origins get 403")
	fs.DurationVar(&cfg.BodyTimeout, "body-timeout", 60*time.Second, "how long a request body may take to arrive")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if rest, err = o.model.takeModelArg(rest); err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("unexpected arguments %q: serve takes the model (ORG/NAME or a directory) and flags", rest)
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("--port %d: expected 0..65535", *port)
	}
	if *maxBody < 1 {
		return fmt.Errorf("--max-body-mb %d: expected at least 1", *maxBody)
	}
	switch { // the same ranges generate and the request fields take
	case cfg.MaxTokens < 0:
		return fmt.Errorf("--max-tokens %d: expected a positive number (0: up to the context)", cfg.MaxTokens)
	case cfg.MaxQueue < 1:
		return fmt.Errorf("--max-queue %d: expected at least 1", cfg.MaxQueue)
	case o.model.parallel < 1:
		return fmt.Errorf("--parallel %d: expected at least 1", o.model.parallel)
	case o.model.prefillChunk < 0:
		return fmt.Errorf("--prefill-chunk %d: expected at least 1 (or 0: the default)", o.model.prefillChunk)
	case o.model.prefillPace != 0 && !(o.model.prefillPace > 1):
		return fmt.Errorf("--prefill-pace %v: expected 0 (off) or a number above 1", o.model.prefillPace)
	case *grace < 0:
		return fmt.Errorf("--shutdown-grace %v: expected a duration of 0 or more", *grace)
	}
	if err := o.model.check(); err != nil {
		return err
	}
	cfg.MaxBodyBytes = int64(*maxBody) << 20
	if cfg.BodyTimeout <= 0 {
		return fmt.Errorf("--body-timeout %v: expected a positive duration", cfg.BodyTimeout)
	}
	cfg.AllowedHosts = append(allowedHosts, *host)
	if ip := net.ParseIP(*host); ip != nil && !ip.IsLoopback() {
		cfg.AllowedHosts = append(cfg.AllowedHosts, "*") // reached over the network, by any name
	}
	cfg.CORSOrigins = corsOrigins
	if *promptCache < 0 {
		return fmt.Errorf("--prompt-cache-mb %d: expected 0 or more", *promptCache)
	}
	o.model.promptCacheBytes = int64(*promptCache) << 20
	if *promptCache == 0 {
		o.model.promptCacheBytes = -1
	}
	if !*quiet {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, nil))
	}
	if cfg.APIKey == "" {
		cfg.APIKey = os.Getenv("MLXMOE_API_KEY") // read here so --help never prints it
	}
	if ip := net.ParseIP(*host); cfg.APIKey == "" && (ip == nil || !ip.IsLoopback()) && *host != "localhost" {
		fmt.Fprintf(stderr, "mlx-moe serve: listening on %s without --api-key: anyone who can reach it can use the model\n", *host)
	}
	cfg.ContextLength = o.model.context
	cfg.CachedModels = hubModelNames
	if newServeBackend == nil {
		return errors.New("no inference engine is wired into this build, so serve cannot load a model")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, closeBackend, err := newServeBackend(o, stderr)
	if err != nil {
		return err
	}
	defer closeBackend()
	cfg.Parallel = o.model.parallel
	if p, ok := b.(interface{ Parallel() int }); ok {
		cfg.Parallel = p.Parallel() // what fits the memory budget
	}
	srv, err := server.New(b, cfg)
	if err != nil {
		return fmt.Errorf("--tool-format: %w", err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	return serveOn(ctx, stop, ln, srv, *grace, stderr)
}

// readHeaderTimeout bounds how long a client may take to send its request
// headers (the body has --body-timeout), so trickling clients cannot hold
// connections open.
var readHeaderTimeout = 10 * time.Second

// serveOn serves until ctx is done, then shuts down: the listener closes,
// in-flight requests get grace to finish and are then cancelled. release
// is called once shutdown starts (a second signal then kills the process).
func serveOn(ctx context.Context, release func(), ln net.Listener, srv *server.Server, grace time.Duration, log io.Writer) error {
	base, cancelAll := context.WithCancelCause(context.Background())
	defer cancelAll(nil)
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	fmt.Fprintf(log, "mlx-moe serve: listening on http://%s\n", ln.Addr())
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	release()
	fmt.Fprintf(log, "mlx-moe serve: shutting down (in-flight requests have %v)\n", grace)
	srv.Drain() // queued requests are answered 503 now
	wait, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(wait); err != nil {
		// Grace is over: cancel the generations, whose handlers then end
		// within a token with an error event or a 503, and wait for them.
		cancelAll(server.ErrShuttingDown)
		done, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := hs.Shutdown(done); err != nil {
			hs.Close()
		}
	}
	<-served
	return nil
}

// listFlag is a flag that may be given several times (or as a
// comma-separated list).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, item := range strings.Split(v, ",") {
		if item = strings.TrimSpace(item); item == "" {
			return fmt.Errorf("empty item in %q", v)
		}
		*l = append(*l, item)
	}
	return nil
}
