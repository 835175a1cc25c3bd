package main

import (
	"bytes"
	"context"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
)

// TestChatPiped: with standard input a pipe, each line is a turn, commands
// included; the output has no control characters and the run exits 0.
func TestChatPiped(t *testing.T) {
	saved := filepath.Join(t.TempDir(), "chat.json")
	stdin = strings.NewReader("def add(a, b):\nnow explain\n/stats\n/save " + saved + "\n/reset\n/stats\n/load " + saved + "\n/stats\n/bogus\n/set temperature 0.5\n/set top_p 2\n/think\n/system be brief\n/system\n")
	defer func() { stdin = os.Stdin }()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"chat", "--max-tokens", "12", "--ignore-eos", "--context", "1024"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	out := stdout.String()
	if strings.ContainsFunc(out, isControl) {
		t.Fatalf("control characters in piped output:\n%q", out)
	}
	turns, stats := readStats(t, out)
	if len(stats) != 3 || stats[0] != 4 || stats[1] != 0 || stats[2] != 4 {
		t.Errorf("messages in /stats after two turns, /reset and /load: %v, want [4 0 4]\n%s", stats, out)
	}
	if len(turns) != 1 || turns[0].generated != 12 || turns[0].processed >= turns[0].prompt || turns[0].cached == 0 {
		t.Errorf("turn 2 should reuse turn 1 and generate 12 tokens: %+v\n%s", turns, out)
	}
	if answers := strings.Split(strings.SplitN(out, "messages:", 2)[0], "\n\n"); len(answers) < 2 || strings.TrimSpace(answers[0]) == "" || strings.TrimSpace(answers[1]) == "" {
		t.Errorf("want two answers before /stats:\n%s", out)
	}
	for _, want := range []string{"error: unknown command /bogus", "temperature = 0.5", "error: /set top_p 2: --top-p 2: expected a number from 0 to 1",
		"Reasoning shown.", `System prompt: "be brief"`} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
}

// turnStats is one "last turn:" line of /stats.
type turnStats struct{ prompt, cached, processed, generated int }

var (
	lastTurnRE = regexp.MustCompile(`last turn: prompt (\d+) tokens \((\d+) cached, (\d+) processed\), generated (\d+)`)
	messagesRE = regexp.MustCompile(`messages: (\d+)`)
)

// readStats reads the /stats blocks of a transcript: the distinct "last
// turn" lines and the message counts.
func readStats(t *testing.T, out string) (turns []turnStats, messages []int) {
	t.Helper()
	seen := map[string]bool{}
	for _, m := range lastTurnRE.FindAllStringSubmatch(out, -1) {
		if seen[m[0]] {
			continue
		}
		seen[m[0]] = true
		var v [4]int
		for i := range v {
			v[i], _ = strconv.Atoi(m[i+1])
		}
		turns = append(turns, turnStats{v[0], v[1], v[2], v[3]})
	}
	for _, m := range messagesRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		messages = append(messages, n)
	}
	return turns, messages
}

func TestChatArgs(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"chat", "a", "b"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "the model is given once") {
		t.Errorf("two positional arguments: exit %d, %s", code, stderr.String())
	}
	stderr.Reset()
	if code := run([]string{"chat", "--max-tokens", "-1"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), "--max-tokens -1") {
		t.Errorf("negative --max-tokens: exit %d, %s", code, stderr.String())
	}
}

// TestChatPipedDefaults runs the piped example as a shell would,
// with the default flags: replies long enough to outgrow the embedded
// model's context drop the oldest turn instead of failing.
func TestChatPipedDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("generates up to 1024 tokens twice")
	}
	cmd := exec.Command(os.Args[0], "chat")
	cmd.Env = append(os.Environ(), "XDG_CACHE_HOME="+t.TempDir(), fakeServeEnv+"=qwen3")
	cmd.Stdin = strings.NewReader("def add(a, b):\nnow explain\n")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	out := stdout.String()
	if strings.TrimSpace(out) == "" || strings.ContainsFunc(out, isControl) {
		t.Errorf("piped output is empty or has control characters:\n%q", out)
	}
}

// TestChatShowsReasoning: reasoning is hidden by default, shown after a
// "Thinking:" label in plain output and dimmed at a terminal.
func TestChatShowsReasoning(t *testing.T) {
	m, err := mlxmoe.Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"), mlxmoe.Options{ContextLength: 512})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	forced := m.EncodeChat("<think>\nplan\n</think>\n\nsum")
	end := m.EncodeChat("<|im_end|>")[0]
	// The model writes forced, then ends.
	mask := func(generated []int32, logits []float32) {
		next := end
		if len(generated) < len(forced) {
			next = forced[len(generated)]
		}
		for i := range logits {
			logits[i] = float32(math.Inf(-1))
		}
		logits[next] = 0
	}
	for _, tc := range []struct {
		think, tty bool
		want       string
	}{
		{false, false, "sum\n\n"},
		{true, false, "Thinking: plan\n\nsum\n\n"},
		{true, true, "\x1b[2mplan\x1b[0m\n\nsum\n\n"},
	} {
		c, err := m.NewChat(mlxmoe.ChatOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		s := &chatSession{m: m, c: c, think: tc.think, tty: tc.tty, out: &out, notes: io.Discard,
			opts: mlxmoe.GenerateOptions{MaxTokens: 32, LogitsMask: mask}}
		if err := s.turn(context.Background(), "hi"); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if out.String() != tc.want {
			t.Errorf("think %v, terminal %v: printed %q, want %q", tc.think, tc.tty, out.String(), tc.want)
		}
	}
}

// TestChatWholeInput: --whole-input sends all of standard input as one
// turn, so a line that looks like a command is part of the message.
func TestChatWholeInput(t *testing.T) {
	stdin = strings.NewReader("def add(a, b):\n    return a + b\n/stats\n")
	defer func() { stdin = os.Stdin }()
	var stdout, stderr bytes.Buffer
	if code := run([]string{"chat", "--whole-input", "--max-tokens", "4", "--ignore-eos", "--context", "1024"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
	if out := stdout.String(); strings.TrimSpace(out) == "" || strings.Contains(out, "messages:") {
		t.Errorf("--whole-input: want one reply and no /stats output:\n%s", out)
	}
}
