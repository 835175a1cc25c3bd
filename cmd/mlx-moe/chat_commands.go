package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mlx-moe/mlx-moe/experts"
)

const chatHelp = `Commands:
  /help               this list
  /reset              forget the conversation (the system prompt stays)
  /system [TEXT]      set the system prompt (without TEXT: show it)
  /save FILE          save the conversation as JSON
  /load FILE          restore a conversation saved with /save
  /stats              the last turn's tokens, speed, expert hit rate and memory
  /set KEY VALUE      temperature, top_p, top_k, min_p, repetition_penalty,
                      seed, max_tokens, or enable_thinking (true/false)
  /think              show or hide the model's reasoning
  /exit               leave (also Ctrl-D)
A line ending in \ continues on the next; """ starts and ends a block.`

// command runs a slash command; quit is true for /exit.
func (s *chatSession) command(line string) (quit bool, err error) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/help", "/?":
		fmt.Fprintln(s.out, chatHelp)
	case "/exit", "/quit", "/bye":
		return true, nil
	case "/reset", "/clear":
		s.c.Reset()
		fmt.Fprintln(s.out, "Conversation cleared.")
	case "/system":
		if arg == "" {
			fmt.Fprintf(s.out, "System prompt: %q\n", s.c.System())
			return false, nil
		}
		s.c.SetSystem(arg)
		fmt.Fprintln(s.out, "System prompt set.")
	case "/save":
		if arg == "" {
			return false, fmt.Errorf("/save needs a file name")
		}
		f, err := os.Create(arg)
		if err != nil {
			return false, err
		}
		if err := s.c.Save(f); err != nil {
			f.Close()
			return false, err
		}
		if err := f.Close(); err != nil {
			return false, err
		}
		fmt.Fprintf(s.out, "Saved %d messages to %s.\n", len(s.c.History()), arg)
	case "/load":
		if arg == "" {
			return false, fmt.Errorf("/load needs a file name")
		}
		f, err := os.Open(arg)
		if err != nil {
			return false, err
		}
		defer f.Close()
		if err := s.c.Load(f); err != nil {
			return false, fmt.Errorf("%s: %w", arg, err)
		}
		fmt.Fprintf(s.out, "Loaded %d messages from %s.\n", len(s.c.History()), arg)
	case "/stats":
		s.stats()
	case "/set":
		return false, s.set(arg)
	case "/think":
		s.think = !s.think
		fmt.Fprintf(s.out, "Reasoning %s.\n", map[bool]string{true: "shown", false: "hidden"}[s.think])
	default:
		return false, fmt.Errorf("unknown command %s (/help lists them)", name)
	}
	return false, nil
}

// stats prints what the last turn cost and what the model holds.
func (s *chatSession) stats() {
	fmt.Fprintf(s.out, "messages: %d\n", len(s.c.History()))
	if s.started {
		u := s.last.Usage
		fmt.Fprintf(s.out, "last turn: prompt %d tokens (%d cached, %d processed), generated %d, finish %s\n",
			u.PromptTokens, u.CachedTokens, u.PromptTokens-u.CachedTokens, u.GeneratedTokens, s.last.FinishReason)
		fmt.Fprintf(s.out, "speed: time to first token %s, %.1f tok/s decode\n", seconds(u.TimeToFirstToken), u.TokensPerSecond)
	}
	if st, ok := s.m.ExpertStats(); ok {
		fmt.Fprintf(s.out, "experts: hit rate %.1f%%, read %s\n", 100*st.Total.HitRate(), experts.FormatBytes(st.Total.Bytes))
	} else {
		fmt.Fprintln(s.out, "experts: all resident")
	}
	mem := s.c.Memory()
	fmt.Fprintf(s.out, "memory: %s (weights %s, expert slots %s, cache %s)\n", experts.FormatBytes(mem.Total()),
		experts.FormatBytes(mem.Weights), experts.FormatBytes(mem.ExpertSlots), experts.FormatBytes(mem.KV))
}

// set changes a sampling or generation setting for later turns, checked as
// the command-line flags are.
func (s *chatSession) set(arg string) error {
	key, val, ok := strings.Cut(arg, " ")
	val = strings.TrimSpace(val)
	if !ok || val == "" {
		return fmt.Errorf("/set KEY VALUE, e.g. /set temperature 0.7")
	}
	key = strings.ReplaceAll(strings.TrimLeft(key, "-"), "-", "_")
	num := func() (float64, error) {
		v, err := strconv.ParseFloat(val, 64)
		if err != nil {
			return 0, fmt.Errorf("/set %s: %q is not a number", key, val)
		}
		return v, nil
	}
	sf := s.sf
	switch key {
	case "temperature", "top_p", "min_p", "repetition_penalty":
		v, err := num()
		if err != nil {
			return err
		}
		*map[string]*float64{"temperature": &sf.opts.Temperature, "top_p": &sf.opts.TopP,
			"min_p": &sf.opts.MinP, "repetition_penalty": &sf.opts.RepetitionPenalty}[key] = v
	case "top_k", "max_tokens", "seed":
		v, err := strconv.ParseUint(val, 10, 64)
		if err != nil {
			return fmt.Errorf("/set %s: %q is not a whole number", key, val)
		}
		switch key {
		case "top_k":
			sf.opts.TopK = int(min(v, 1<<31-1))
		case "seed":
			sf.seed = v
			if err := sf.fs.Set("seed", val); err != nil {
				return err
			}
		case "max_tokens":
			if v == 0 || v > uint64(s.m.ContextLength()) {
				v = uint64(s.m.ContextLength())
			}
			s.opts.MaxTokens = int(v)
			fmt.Fprintf(s.out, "max_tokens = %d\n", v)
			return nil
		}
	case "enable_thinking", "think":
		b, err := strconv.ParseBool(val)
		if err != nil {
			return fmt.Errorf("/set %s: %q is not true or false", key, val)
		}
		s.c.SetTemplateKwarg("enable_thinking", b)
		fmt.Fprintf(s.out, "enable_thinking = %v\n", b)
		return nil
	default:
		return fmt.Errorf("/set: unknown setting %q (temperature, top_p, top_k, min_p, repetition_penalty, seed, max_tokens, enable_thinking)", key)
	}
	so, err := sf.options()
	if err != nil {
		return fmt.Errorf("/set %s %s: %w", key, val, err)
	}
	s.sf, s.opts.Sampling = sf, so
	fmt.Fprintf(s.out, "%s = %s\n", key, val)
	return nil
}
