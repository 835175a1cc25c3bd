package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
	"github.com/mlx-moe/mlx-moe/experts"
)

var generateCmd = &command{
	name:    "generate",
	summary: "generate text from a prompt (streams to stdout)",
}

func init() {
	generateCmd.run = runGenerate
	register(generateCmd)
}

// stdin is what generate --prompt-file - and tokenize --file - read (a
// variable for tests).
var stdin io.Reader = os.Stdin

func runGenerate(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(generateCmd, `generate [ORG/NAME | DIR | --model ...] [TEXT | --prompt TEXT | --prompt-file PATH | --prompt-ids 1,2,3] [flags]

Without --model, the embedded default model (`+defaultmodel.Name+`, a small
MoE trained briefly on Python source) is used. --prompt-file - reads the
prompt from standard input. SIGINT (Ctrl-C) or SIGTERM stops generation,
saves the warm-start state and exits with status 130 or 143.`, stderr)
	var mf modelFlags
	mf.register(fs, defaultModelHelp)
	prompt := fs.String("prompt", "", "prompt text")
	promptFile := fs.String("prompt-file", "", "read the prompt from this file, its exact bytes (-: standard input)")
	promptIDs := fs.String("prompt-ids", "", "prompt as comma-separated token ids")
	chatMode := fs.Bool("chat", false, "wrap the prompt in the model's chat template as a user message")
	maxTokens := fs.Int("max-tokens", 128, "most new tokens (0: until end-of-sequence or the context is full)")
	var sf samplingFlags
	sf.register(fs)
	asJSON := fs.Bool("json", false, `print one JSON object {"ids": [...], "text": "..."} instead of streaming`)
	ignoreEOS := fs.Bool("ignore-eos", false, "keep generating past end-of-sequence tokens")
	verbose := fs.Bool("verbose", false, "print the seed, time to first token, tokens/s and expert statistics to stderr")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if rest, err = mf.takeModelArg(rest); err != nil {
		return err
	}
	so, err := sf.options()
	if err != nil {
		return err
	}
	if *maxTokens < 0 {
		return fmt.Errorf("--max-tokens %d: expected a positive number (0: until end-of-sequence or the context is full)", *maxTokens)
	}
	given := 0
	for _, set := range []bool{len(rest) > 0, *prompt != "", *promptFile != "", *promptIDs != ""} {
		if set {
			given++
		}
	}
	switch {
	case len(rest) > 0 && given == 1:
		*prompt = strings.Join(rest, " ")
	case given == 0:
		return fmt.Errorf("no prompt: pass TEXT, --prompt TEXT, --prompt-file PATH or --prompt-ids 1,2,3")
	case given > 1:
		return fmt.Errorf("give the prompt once: as an argument, --prompt, --prompt-file or --prompt-ids")
	case *promptFile != "":
		if *prompt, err = readPromptFile(*promptFile); err != nil {
			return err
		}
	}
	if *chatMode && *promptIDs != "" {
		return fmt.Errorf("--chat wraps a text prompt; --prompt-ids are used as they are")
	}
	m, err := mf.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	var ids []int32
	switch {
	case *promptIDs != "":
		if ids, err = parseIDs(*promptIDs); err != nil {
			return err
		}
	case *chatMode:
		if ids, err = chatPromptIDs(m, *prompt); err != nil {
			return err
		}
	default:
		ids = m.Encode(*prompt)
	}
	if *verbose && so.Temperature > 0 {
		fmt.Fprintf(stderr, "seed: %d\n", so.Seed)
	}
	opts := mlxmoe.GenerateOptions{MaxTokens: *maxTokens, Sampling: so, IgnoreEOS: *ignoreEOS}
	if opts.MaxTokens == 0 {
		opts.MaxTokens = m.ContextLength() // the library caps it at what the context leaves
	}
	var emit func(mlxmoe.Token) error
	if !*asJSON {
		emit = func(t mlxmoe.Token) error {
			_, err := io.WriteString(stdout, t.Text)
			return err
		}
	}
	ctx, signalled := stopOnSignal()
	// The pager's counters when the first token comes out: what follows is
	// decode alone.
	var atFirst experts.Stats
	first := true
	res, err := m.Stream(ctx, ids, opts, func(t mlxmoe.Token) error {
		if first {
			atFirst, _ = m.ExpertStats()
			first = false
		}
		if emit == nil {
			return nil
		}
		return emit(t)
	})
	stopped := signalled() // a signal ends the run once the output is out
	if errors.Is(err, mlxmoe.ErrContextLength) {
		return fmt.Errorf("%w (raise --context; the start-up line \"context:\" says how many positions fit the memory budget, and --kv-bits 8 or 4 fits more)", err)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		out := struct {
			IDs   []int32       `json:"ids"`
			Text  string        `json:"text"`
			Stats generateStats `json:"stats"`
		}{res.IDs, res.Text, statsOf(m, res, atFirst)}
		if out.IDs == nil {
			out.IDs = []int32{}
		}
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(stdout)
	}
	if *verbose {
		fmt.Fprintf(stderr, "prompt: %d tokens, time to first token %.3fs (%.1f tok/s prefill)\n",
			res.PromptTokens, res.Prefill.Seconds(), float64(res.PromptTokens-res.CachedTokens)/res.Prefill.Seconds())
		fmt.Fprintf(stderr, "generated: %d tokens, %.2f tok/s decode, finish: %s\n", len(res.IDs), res.DecodeTokensPerSecond(), res.FinishReason)
		printMemory(stderr, m)
		if st, ok := m.ExpertStats(); ok {
			fmt.Fprint(stderr, st.String())
			if n := len(res.IDs); n > 1 {
				d := st.Total.Since(atFirst.Total)
				fmt.Fprintf(stderr, "decode alone (%d steps): hit rate %.1f%%, %.1f MB read and %.1f ms waiting for reads per token, prefetch precision %.1f%% recall %.1f%%\n",
					n-1, 100*d.HitRate(), float64(d.Bytes)/1e6/float64(n-1), 1e3*d.IOWait.Seconds()/float64(n-1), 100*d.PrefetchPrecision(), 100*d.PrefetchRecall())
			}
		}
	}
	// On a signal the deferred Close still saves the warm-start state.
	return stopped
}

// readPromptFile reads a prompt's exact bytes from path, or from standard
// input for "-".
func readPromptFile(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(stdin)
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", fmt.Errorf("--prompt-file: %w", err)
	}
	if len(b) == 0 {
		return "", fmt.Errorf("--prompt-file %s: the prompt is empty", path)
	}
	return string(b), nil
}

// generateStats is the "stats" object of generate --json: speeds, and what
// the expert pager read (zero without one). read_gbps is bytes over the
// time with a read in flight; io_wait_s the time the forward pass waited.
type generateStats struct {
	PrefillTokS  float64 `json:"prefill_tok_s"`
	DecodeTokS   float64 `json:"decode_tok_s"`
	TTFTS        float64 `json:"ttft_s"`
	HitRate      float64 `json:"hit_rate"`
	ReadBytes    int64   `json:"read_bytes"`
	ReadGBps     float64 `json:"read_gbps"`
	IOWaitS      float64 `json:"io_wait_s"`
	InFlight     float64 `json:"reads_in_flight"`
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	// The same after the first token: decode alone.
	DecodeHitRate   float64 `json:"decode_hit_rate"`
	DecodeReadBytes int64   `json:"decode_read_bytes"`
	DecodeIOWaitS   float64 `json:"decode_io_wait_s"`
}

// statsOf fills the stats; atFirst is the pager's snapshot when the first
// token came out.
func statsOf(m *mlxmoe.Model, res mlxmoe.Result, atFirst experts.Stats) generateStats {
	s := generateStats{DecodeTokS: res.DecodeTokensPerSecond(), TTFTS: res.Prefill.Seconds()}
	if res.Prefill > 0 {
		s.PrefillTokS = float64(res.PromptTokens-res.CachedTokens) / res.Prefill.Seconds()
	}
	if st, ok := m.ExpertStats(); ok {
		s.HitRate, s.ReadBytes, s.ReadGBps = st.Total.HitRate(), st.Total.Bytes, st.ReadGBps
		s.IOWaitS, s.InFlight = st.Total.IOWait.Seconds(), st.InFlight
		d := st.Total.Since(atFirst.Total)
		s.DecodeHitRate, s.DecodeReadBytes, s.DecodeIOWaitS = d.HitRate(), d.Bytes, d.IOWait.Seconds()
	}
	if _, peak, err := experts.ProcessMemory(); err == nil {
		s.PeakRSSBytes = peak
	}
	return s
}

// printMemory prints what the model holds in memory, by part, each buffer
// counted once (--verbose).
func printMemory(w io.Writer, m *mlxmoe.Model) {
	u := m.MemoryUse()
	mb := func(n int64) float64 { return float64(n) / 1e6 }
	fmt.Fprintf(w, "memory: %.1f MB: dense weights %.1f MB, expert slots %.1f MB, caches and activations %.1f MB, scratch %.1f MB\n",
		mb(u.Total()), mb(u.Weights), mb(u.ExpertSlots), mb(u.Tensors), mb(u.Scratch))
}
