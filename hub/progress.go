package hub

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// Progress hears how a pull goes. Add may be called from several
// goroutines at once, and with a negative count when bytes are fetched
// again.
type Progress interface {
	Start(name string, files int, bytes int64) // bytes: what is still to fetch
	Add(bytes int64)
	Done(file string, size int64)
	Finish()
}

// NewProgress returns how progress is shown on w: nothing when quiet, a
// redrawn bar with bytes, rate and time left when w is a terminal, else a
// plain line per file and one every interval (0: 10s) with no control
// characters, for logs and pipes.
func NewProgress(w io.Writer, quiet bool, interval time.Duration) Progress {
	switch {
	case quiet:
		return noProgress{}
	case isTerminal(w):
		return &barProgress{w: w}
	}
	if interval <= 0 {
		interval = 10 * time.Second
	}
	return &lineProgress{w: w, interval: interval}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type noProgress struct{}

func (noProgress) Start(string, int, int64) {}
func (noProgress) Add(int64)                {}
func (noProgress) Done(string, int64)       {}
func (noProgress) Finish()                  {}

// barProgress draws one bar for the whole pull, with finished files
// printed above it.
type barProgress struct {
	w     io.Writer
	mu    sync.Mutex
	bar   *progressbar.ProgressBar
	total summary
}

func (b *barProgress) Start(name string, files int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total.start(b.w, name, files, bytes)
	b.bar = progressbar.NewOptions64(bytes,
		progressbar.OptionSetWriter(b.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionUseANSICodes(true),
	)
}

func (b *barProgress) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total.done += n
	if b.bar != nil {
		b.bar.Add64(n)
	}
}

func (b *barProgress) Done(file string, size int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar == nil {
		return
	}
	b.bar.Clear()
	fmt.Fprintf(b.w, "  %s (%s)\n", file, formatBytes(size))
	b.bar.RenderBlank()
}

func (b *barProgress) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bar != nil {
		b.bar.Finish()
		b.bar.Clear()
		b.total.end(b.w)
	}
}

// summary is what both displays say at the start and the end of a pull.
type summary struct {
	name  string
	bytes int64 // to fetch
	done  int64 // fetched
	t0    time.Time
}

func (s *summary) start(w io.Writer, name string, files int, bytes int64) {
	s.name, s.bytes, s.t0 = name, bytes, time.Now()
	fmt.Fprintf(w, "pulling %s: %d files, %s to download\n", name, files, formatBytes(bytes))
}

func (s *summary) end(w io.Writer) {
	elapsed := time.Since(s.t0)
	fmt.Fprintf(w, "pulled %s: %s in %s (%s/s)\n", s.name, formatBytes(s.done), elapsed.Round(time.Millisecond),
		formatBytes(int64(float64(s.done)/max(elapsed.Seconds(), 1e-3))))
}

// lineProgress writes plain lines: one per finished file and, while bytes
// arrive, one every interval.
type lineProgress struct {
	w        io.Writer
	interval time.Duration
	mu       sync.Mutex
	total    summary
	last     time.Time
}

func (l *lineProgress) Start(name string, files int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total.start(l.w, name, files, bytes)
	l.last = time.Now()
}

func (l *lineProgress) Add(n int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.total
	s.done += n
	if now := time.Now(); now.Sub(l.last) >= l.interval && s.bytes > 0 {
		l.last = now
		rate := float64(s.done) / max(now.Sub(s.t0).Seconds(), 1e-3)
		left := "unknown"
		if rate > 0 {
			left = time.Duration(float64(s.bytes-s.done) / rate * float64(time.Second)).Round(time.Second).String()
		}
		fmt.Fprintf(l.w, "pulling %s: %d%%, %s of %s, %s/s, %s left\n", s.name, 100*s.done/s.bytes,
			formatBytes(s.done), formatBytes(s.bytes), formatBytes(int64(rate)), left)
	}
}

func (l *lineProgress) Done(file string, size int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, "  %s (%s)\n", file, formatBytes(size))
}

func (l *lineProgress) Finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total.end(l.w)
}
