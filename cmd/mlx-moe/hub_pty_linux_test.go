package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair, skipping the test where there is
// none.
func openPTY(t *testing.T) (master, slave *os.File) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		t.Skipf("unlocking the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		m.Close()
		t.Skipf("pseudo-terminal number: %v", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		t.Skipf("opening /dev/pts/%d: %v", n, err)
	}
	return m, s
}

// TestPullProgressOnATerminal: on a terminal, pull draws a bar that is
// redrawn in place (carriage returns, no newline per update) with bytes
// and a rate; into a pipe it writes plain lines (TestPullThenGenerate).
func TestPullProgressOnATerminal(t *testing.T) {
	fakeHubEnv(t)
	master, slave := openPTY(t)
	defer master.Close()
	var screen bytes.Buffer
	read := make(chan struct{})
	go func() {
		io.Copy(&screen, master) // ends with EIO once the slave is closed
		close(read)
	}()
	var out strings.Builder
	code := run([]string{"pull", hubModel}, &out, slave)
	slave.Close()
	select {
	case <-read:
	case <-time.After(5 * time.Second):
		t.Fatal("the terminal output did not end")
	}
	got := screen.String()
	if code != 0 {
		t.Fatalf("pull exited %d: %s", code, got)
	}
	// The terminal turns \n into \r\n; a bar redraw is a \r not followed by \n.
	redraws := strings.Count(strings.ReplaceAll(got, "\r\n", ""), "\r")
	if redraws == 0 || !strings.Contains(got, "100%") || !strings.Contains(got, "B/s") {
		t.Fatalf("no progress bar on the terminal:\n%q", got)
	}
	t.Logf("terminal output: %q", got)
}
