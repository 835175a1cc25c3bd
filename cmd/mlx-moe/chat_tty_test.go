//go:build unix

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// tmuxScreen drives a program in a detached tmux session: keys in, the
// screen (with its scrollback) out, as a person at a terminal sees it.
type tmuxScreen struct {
	t       *testing.T
	sock    string
	prompts int // prompts shown so far
}

func newTmuxScreen(t *testing.T, command string) *tmuxScreen {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Skip("tmux is not installed")
	}
	// A short socket path: the unix socket name limit is about 100 bytes.
	dir, err := os.MkdirTemp("", "chat-tmux")
	if err != nil {
		t.Fatal(err)
	}
	s := &tmuxScreen{t: t, sock: filepath.Join(dir, "s")}
	t.Cleanup(func() {
		exec.Command("tmux", "-S", s.sock, "kill-server").Run()
		os.RemoveAll(dir)
	})
	s.tmux("new-session", "-d", "-x", "160", "-y", "50", command)
	return s
}

func (s *tmuxScreen) tmux(args ...string) string {
	s.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", s.sock}, args...)...).CombinedOutput()
	if err != nil {
		s.t.Fatalf("tmux %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// screen is everything shown so far, scrollback included.
func (s *tmuxScreen) screen() string { return s.tmux("capture-pane", "-p", "-J", "-S", "-") }

// keys types text (literally) and then the named keys (Enter, C-c, ...).
func (s *tmuxScreen) keys(text string, named ...string) {
	if text != "" {
		s.tmux("send-keys", "-l", text)
	}
	if len(named) > 0 {
		s.tmux(append([]string{"send-keys"}, named...)...)
	}
}

// waitFor waits until ok accepts the screen and returns it.
func (s *tmuxScreen) waitFor(what string, ok func(screen string) bool) string {
	s.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		sc := s.screen()
		if ok(sc) {
			return sc
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("waiting for %s; the screen:\n%s", what, sc)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// idle waits for the next empty prompt as the last line and returns the
// screen.
func (s *tmuxScreen) idle() string {
	s.t.Helper()
	s.prompts++
	return s.waitFor(fmt.Sprintf("prompt %d", s.prompts), func(sc string) bool {
		lines := strings.Split(strings.TrimRight(sc, "\n "), "\n")
		return strings.Count(sc, ">>> ") >= s.prompts && strings.TrimSpace(lines[len(lines)-1]) == ">>>"
	})
}

// enter types a line, presses Enter and waits for the next prompt.
func (s *tmuxScreen) enter(line string) string {
	s.t.Helper()
	s.keys(line, "Enter")
	return s.idle()
}

// messages runs /stats and returns its turns and the message count.
func (s *tmuxScreen) messages() ([]turnStats, int, string) {
	s.t.Helper()
	sc := s.enter("/stats")
	turns, msgs := readStats(s.t, sc)
	return turns, msgs[len(msgs)-1], sc
}

// TestChatTerminal drives `mlx-moe chat` on the embedded model at a
// terminal as a person would: two turns, the second processing only its
// new tokens; Ctrl-C during a long reply returns to the prompt and the
// next turn works; /reset, /save and /load; Ctrl-D exits 0.
func TestChatTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a terminal session")
	}
	cache := t.TempDir()
	saved := filepath.Join(t.TempDir(), "c.json")
	cmd := "env XDG_CACHE_HOME=" + cache + " " + fakeServeEnv + "=qwen3 " + os.Args[0] +
		" chat --max-tokens 16 --ignore-eos --context 1024; echo CHAT-EXIT=$?; sleep 600"
	s := newTmuxScreen(t, cmd)
	s.idle()

	s.enter("def add(a, b):")
	s.enter("now explain")
	turns, msgs, sc := s.messages()
	if len(turns) != 1 || turns[0].cached == 0 || turns[0].processed >= 40 || turns[0].generated != 16 || msgs != 4 {
		t.Fatalf("turn 2 should process only its new tokens: %+v, %d messages\n%s", turns, msgs, sc)
	}

	// A long reply, stopped by Ctrl-C once it has started.
	s.enter("/set max_tokens 900")
	s.keys("write much more", "Enter")
	before := len(s.screen())
	s.waitFor("the long reply to start", func(sc string) bool { return len(sc) > before+40 })
	s.keys("", "C-c")
	s.waitFor("[stopped]", func(sc string) bool { return strings.Contains(sc, "[stopped]") })
	s.idle()
	turns, _, sc = s.messages()
	if last := turns[len(turns)-1]; last.generated >= 900 || !strings.Contains(sc, "finish cancelled") {
		t.Fatalf("Ctrl-C did not stop the reply: %+v\n%s", last, sc)
	}
	s.enter("/set max_tokens 8")
	s.enter("and again")
	turns, msgs, sc = s.messages()
	if last := turns[len(turns)-1]; last.generated != 8 || msgs != 8 {
		t.Fatalf("the turn after Ctrl-C: %+v, %d messages\n%s", last, msgs, sc)
	}

	s.enter("/save " + saved)
	s.enter("/reset")
	if _, msgs, sc = s.messages(); msgs != 0 {
		t.Fatalf("/reset left %d messages\n%s", msgs, sc)
	}
	s.enter("/load " + saved)
	if _, msgs, sc = s.messages(); msgs != 8 {
		t.Fatalf("/load restored %d messages, want 8\n%s", msgs, sc)
	}
	for _, want := range []string{"Saved 8 messages", "Conversation cleared.", "Loaded 8 messages"} {
		if !strings.Contains(sc, want) {
			t.Errorf("the screen lacks %q:\n%s", want, sc)
		}
	}

	// A multi-line message with a continuation marker is one turn.
	s.keys(`first line \`, "Enter")
	s.waitFor("the continuation prompt", func(sc string) bool { return strings.Contains(sc, "... ") })
	s.enter("second line")
	if _, msgs, sc = s.messages(); msgs != 10 {
		t.Fatalf("a continued line should be one turn: %d messages, want 10\n%s", msgs, sc)
	}

	s.keys("", "C-d")
	sc = s.waitFor("exit status 0", func(sc string) bool { return strings.Contains(sc, "CHAT-EXIT=0") })
	t.Logf("the screen:\n%s", sc)
}

// TestChatTerminalCtrlC: Ctrl-C at an empty prompt warns, a second one
// exits with status 0.
func TestChatTerminalCtrlC(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a terminal session")
	}
	cmd := "env XDG_CACHE_HOME=" + t.TempDir() + " " + fakeServeEnv + "=qwen3 " + os.Args[0] +
		" chat --context 1024; echo CHAT-EXIT=$?; sleep 600"
	s := newTmuxScreen(t, cmd)
	s.idle()
	s.keys("", "C-c")
	s.waitFor("the exit hint", func(sc string) bool { return strings.Contains(sc, "Ctrl-C again or Ctrl-D to exit") })
	s.keys("", "C-c")
	s.waitFor("exit status 0", func(sc string) bool { return strings.Contains(sc, "CHAT-EXIT=0") })
}
