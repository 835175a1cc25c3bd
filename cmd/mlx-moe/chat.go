package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/chzyer/readline"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/chat/toolcall"
	"github.com/mlx-moe/mlx-moe/defaultmodel"
)

var chatCmd = &command{
	name:    "chat",
	summary: "talk with a model in the terminal (streaming, multi-turn)",
}

func init() {
	chatCmd.run = runChat
	register(chatCmd)
}

// chatIsTerminal reports whether standard input is a terminal (a variable
// for tests).
var chatIsTerminal = func() bool {
	f, ok := stdin.(*os.File)
	return ok && readline.IsTerminal(int(f.Fd()))
}

// chatSession is the state of one `mlx-moe chat`: the model, the
// conversation and the settings the slash commands change.
type chatSession struct {
	m       *mlxmoe.Model
	c       *mlxmoe.Chat
	opts    mlxmoe.GenerateOptions
	sf      samplingFlags
	think   bool // show the reasoning
	tty     bool // stdout is a terminal: dim the reasoning
	out     io.Writer
	notes   io.Writer // stderr
	last    mlxmoe.Reply
	turns   int
	started bool // a turn has run (for /stats)
}

func runChat(args []string, stdout, stderr io.Writer) error {
	fs := newFlags(chatCmd, `chat [MODEL] [flags]

Talk with a model: each line you type is a user message, the reply streams
as it is generated, and the conversation is kept, so each turn processes
only its new tokens. MODEL (or --model) is a model directory or ORG/NAME
from the Hugging Face cache; without it the embedded `+defaultmodel.Name+` is used.

At a terminal: line editing and history; end a line with \ to continue it,
or put a block between lines of """. Ctrl-C stops a generation; Ctrl-C
twice at an empty prompt, or Ctrl-D, exits. Type /help for the commands.
With standard input not a terminal each line is one turn (--whole-input:
all of it is one), commands included, and the output is plain text.`, stderr)
	var mf modelFlags
	mf.register(fs, defaultModelHelp)
	var sf samplingFlags
	sf.register(fs)
	system := fs.String("system", "", "system prompt")
	maxTokens := fs.Int("max-tokens", 1024, "most new tokens per reply (0: until end-of-sequence or the context is full)")
	ignoreEOS := fs.Bool("ignore-eos", false, "keep generating past end-of-sequence tokens")
	think := fs.Bool("think", false, "show the model's reasoning (dimmed at a terminal); /think toggles it")
	whole := fs.Bool("whole-input", false, "with standard input not a terminal, send all of it as one turn")
	rest, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	switch {
	case len(rest) == 1 && mf.dir == "":
		mf.dir = rest[0]
	case len(rest) > 0:
		return fmt.Errorf("unexpected arguments %q: the model is given once (MODEL or --model); messages are typed after it starts", rest)
	}
	so, err := sf.options()
	if err != nil {
		return err
	}
	if *maxTokens < 0 {
		return fmt.Errorf("--max-tokens %d: expected a positive number (0: until end-of-sequence or the context is full)", *maxTokens)
	}
	m, err := mf.load(stderr)
	if err != nil {
		return err
	}
	defer m.Close()
	c, err := m.NewChat(mlxmoe.ChatOptions{System: *system})
	if err != nil {
		return err
	}
	defer c.Close()
	s := &chatSession{m: m, c: c, sf: sf, think: *think, out: stdout, notes: stderr,
		opts: mlxmoe.GenerateOptions{MaxTokens: *maxTokens, Sampling: so, IgnoreEOS: *ignoreEOS}}
	if s.opts.MaxTokens == 0 {
		s.opts.MaxTokens = m.ContextLength()
	}
	if !chatIsTerminal() {
		return s.script(stdin, *whole)
	}
	// Dim the reasoning only where a terminal shows it.
	f, ok := stdout.(*os.File)
	s.tty = ok && readline.IsTerminal(int(f.Fd()))
	return s.interactive(stderr)
}

// script runs the turns of a non-interactive input: one per line, or the
// whole input as one. SIGINT stops the current turn and ends the run.
func (s *chatSession) script(r io.Reader, whole bool) error {
	ctx, signalled := stopOnSignal()
	err := s.scriptTurns(ctx, r, whole)
	if stopped := signalled(); stopped != nil {
		return stopped
	}
	return err
}

func (s *chatSession) scriptTurns(ctx context.Context, r io.Reader, whole bool) error {
	if whole {
		b, err := io.ReadAll(r)
		if err != nil {
			return fmt.Errorf("reading standard input: %w", err)
		}
		if text := strings.TrimSpace(string(b)); text != "" {
			return s.turn(ctx, text)
		}
		return nil
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "/") {
			if quit, err := s.command(line); err != nil {
				fmt.Fprintf(s.out, "error: %v\n", err)
			} else if quit {
				return nil
			}
			continue
		}
		if err := s.turn(ctx, line); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
	}
	return sc.Err()
}

// interactive reads turns with line editing until Ctrl-D, /exit or a
// second Ctrl-C at an empty prompt.
func (s *chatSession) interactive(stderr io.Writer) error {
	rl, err := readline.NewEx(&readline.Config{Prompt: ">>> ", Stdout: s.out, Stderr: stderr,
		HistoryLimit: 1000, HistoryFile: chatHistoryFile()})
	if err != nil {
		return err
	}
	defer rl.Close()
	fmt.Fprintf(s.out, "Chatting with %s. Type /help for commands, Ctrl-D to exit.\n", s.m.Name)
	// SIGINT arrives only while a reply is generated (the line editor reads
	// Ctrl-C as a key): it stops that reply.
	var mu sync.Mutex
	var stop context.CancelFunc
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)
	go func() {
		for range sigs {
			mu.Lock()
			if stop != nil {
				stop()
			}
			mu.Unlock()
		}
	}()
	interrupted := false
	for {
		text, err := s.readMessage(rl)
		switch {
		case errors.Is(err, readline.ErrInterrupt):
			if text == "" && interrupted {
				return nil
			}
			if text == "" {
				fmt.Fprintln(s.out, "(Ctrl-C again or Ctrl-D to exit)")
			}
			interrupted = text == ""
			continue
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
		interrupted = false
		if strings.TrimSpace(text) == "" {
			continue
		}
		if strings.HasPrefix(text, "/") {
			quit, err := s.command(strings.TrimSpace(text))
			if err != nil {
				fmt.Fprintf(s.out, "error: %v\n", err)
			}
			if quit {
				return nil
			}
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		mu.Lock()
		stop = cancel
		mu.Unlock()
		err = s.turn(ctx, text)
		mu.Lock()
		stop = nil
		mu.Unlock()
		cancel()
		if err != nil {
			fmt.Fprintf(s.out, "error: %v\n", err)
		}
	}
}

// readMessage reads one message: a line, lines joined by a trailing \, or
// a block between lines of """. What was typed so far comes back with
// readline.ErrInterrupt.
func (s *chatSession) readMessage(rl *readline.Instance) (string, error) {
	defer rl.SetPrompt(">>> ")
	var lines []string
	block := false
	for {
		line, err := rl.Readline()
		if err != nil {
			if errors.Is(err, readline.ErrInterrupt) {
				return strings.Join(append(lines, line), "\n"), err
			}
			if errors.Is(err, io.EOF) && len(lines) > 0 {
				return strings.Join(lines, "\n"), nil
			}
			return "", err
		}
		switch {
		case !block && len(lines) == 0 && strings.HasPrefix(line, `"""`):
			block = true
			line = strings.TrimPrefix(line, `"""`)
			if strings.HasSuffix(line, `"""`) && line != "" {
				return strings.TrimSuffix(line, `"""`), nil
			}
			if line != "" {
				lines = append(lines, line)
			}
		case block && strings.HasSuffix(line, `"""`):
			return strings.Join(append(lines, strings.TrimSuffix(line, `"""`)), "\n"), nil
		case block:
			lines = append(lines, line)
		case strings.HasSuffix(line, `\`):
			lines = append(lines, strings.TrimSuffix(line, `\`))
		default:
			return strings.Join(append(lines, line), "\n"), nil
		}
		rl.SetPrompt("... ")
	}
}

// chatHistoryFile is where typed lines are remembered between runs ("" if
// there is no cache directory).
func chatHistoryFile() string {
	dir, err := defaultmodel.CacheDir()
	if err != nil {
		return ""
	}
	return dir + string(os.PathSeparator) + "chat_history"
}

const (
	dim   = "\x1b[2m"
	reset = "\x1b[0m"
)

// turn sends one user message and streams the reply.
func (s *chatSession) turn(ctx context.Context, text string) error {
	w := &plainWriter{w: s.out, plain: !s.tty}
	inReasoning := false
	endReasoning := func() {
		if inReasoning {
			if s.tty {
				io.WriteString(w.w, reset)
			}
			io.WriteString(w, "\n\n")
			inReasoning = false
		}
	}
	reply, err := s.c.Stream(ctx, text, s.opts, func(ev mlxmoe.ChatEvent) error {
		switch ev.Kind {
		case toolcall.Reasoning:
			if !s.think {
				return nil
			}
			if !inReasoning {
				inReasoning = true
				if s.tty {
					io.WriteString(w.w, dim)
				} else {
					io.WriteString(w, "Thinking: ")
				}
			}
			io.WriteString(w, ev.Text)
		case toolcall.Content:
			endReasoning()
			io.WriteString(w, ev.Text)
		case toolcall.CallStart:
			endReasoning()
			fmt.Fprintf(w, "\n[tool call %s ", ev.Name)
		case toolcall.CallArgs:
			io.WriteString(w, ev.Text)
		case toolcall.CallEnd:
			io.WriteString(w, "]\n")
		}
		return nil
	})
	endReasoning()
	if reply.DroppedMessages > 0 {
		fmt.Fprintf(s.notes, "(the conversation outgrew the %d-token context: its oldest %d messages were dropped)\n", s.m.ContextLength(), reply.DroppedMessages)
	}
	s.last, s.started = reply, true
	s.turns++
	if reply.FinishReason == "cancelled" {
		fmt.Fprint(w, "\n[stopped]")
	}
	fmt.Fprint(w, "\n\n") // a blank line between turns
	if err != nil && ctx.Err() != nil {
		return nil // stopped before the first token: nothing to show
	}
	return err
}

// plainWriter drops control characters (escape sequences a model may write)
// from text going to a file or pipe; newlines and tabs stay.
type plainWriter struct {
	w     io.Writer
	plain bool
}

func (p *plainWriter) Write(b []byte) (int, error) {
	if !p.plain {
		return p.w.Write(b)
	}
	out := strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, string(b))
	if _, err := io.WriteString(p.w, out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// isControl reports whether r is a control character other than newline
// and tab.
func isControl(r rune) bool { return r < 0x20 && r != '\n' && r != '\t' || r == 0x7f }

// seconds formats a duration for /stats.
func seconds(d time.Duration) string { return fmt.Sprintf("%.3fs", d.Seconds()) }
