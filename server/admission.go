package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync"
	"time"
)

// Reading, decoding, rendering and tokenizing a request costs many times
// its body in memory (a 30 MB count_tokens body peaks near 800 MB), all of
// it before the request reaches the generation queue. admission bounds that
// work by body size: requests take a share of a byte budget (their
// Content-Length, or the body limit when it is unknown) before their body
// is read, and hand it back once their prompt is prepared. Waiters are
// served in arrival order; past Config.MaxQueue waiters, or once the server
// is shutting down, a request is turned away without reading its body.

// minParseWeight is the least a request is charged, so that a flood of
// tiny requests is bounded too. Bodies of reclaimAbove bytes or more have
// their memory returned to the system when their parse is done.
const (
	minParseWeight = 64 << 10
	reclaimAbove   = 4 << 20
)

// errDraining: the server is shutting down and takes no more work.
var errDraining = errors.New("server: shutting down")

type admission struct {
	mu         sync.Mutex
	budget     int64 // bytes of bodies that may be in preparation at once
	used       int64
	maxWaiting int
	waiting    []*parseSlot
	draining   bool
}

// parseSlot is one request's share of the budget.
type parseSlot struct {
	a        *admission
	n        int64
	ready    chan struct{} // closed when granted or refused
	granted  bool
	err      error // set when refused
	released bool
}

// acquire takes n bytes of the budget, waiting in line for them.
func (a *admission) acquire(ctx context.Context, n int64) (*parseSlot, error) {
	n = min(max(n, minParseWeight), a.budget)
	a.mu.Lock()
	p := &parseSlot{a: a, n: n, ready: make(chan struct{})}
	switch {
	case a.draining:
		a.mu.Unlock()
		return nil, errDraining
	case len(a.waiting) == 0 && a.used+n <= a.budget:
		a.used += n
		p.granted = true
		a.mu.Unlock()
		return p, nil
	case len(a.waiting) >= a.maxWaiting:
		a.mu.Unlock()
		return nil, errQueueFull
	}
	a.waiting = append(a.waiting, p)
	a.mu.Unlock()
	select {
	case <-p.ready:
		if p.err != nil {
			return nil, p.err
		}
		return p, nil
	case <-ctx.Done():
		p.release()
		return nil, ctx.Err()
	}
}

// release hands the share back (or leaves the line); later calls do nothing.
// After a large body the memory its parse took is returned to the system
// before the next request in line starts, so that the peaks of consecutive
// large requests do not stack up on garbage not yet collected.
func (p *parseSlot) release() {
	a := p.a
	a.mu.Lock()
	if p.released {
		a.mu.Unlock()
		return
	}
	p.released = true
	if p.granted {
		a.used -= p.n
	} else {
		for i, w := range a.waiting {
			if w == p {
				a.waiting = append(a.waiting[:i], a.waiting[i+1:]...)
				break
			}
		}
	}
	if p.granted && p.n >= reclaimAbove {
		a.mu.Unlock()
		runtime.GC() // the tokenizer's pooled scratch goes on the first, freed on the second
		debug.FreeOSMemory()
		a.mu.Lock()
	}
	a.grantLocked()
	a.mu.Unlock()
}

// grantLocked lets in the waiters at the head of the line that now fit.
func (a *admission) grantLocked() {
	for len(a.waiting) > 0 && a.used+a.waiting[0].n <= a.budget {
		next := a.waiting[0]
		a.waiting = a.waiting[1:]
		a.used += next.n
		next.granted = true
		close(next.ready)
	}
}

// drain refuses every waiter and every later request.
func (a *admission) drain() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.draining = true
	for _, w := range a.waiting {
		w.err, w.released = errDraining, true
		close(w.ready)
	}
	a.waiting = nil
}

type parseSlotKey struct{}

// releaseParse hands back the request's share of the parse budget: its
// prompt is prepared and it now holds only that while it waits its turn.
func releaseParse(ctx context.Context) {
	if p, ok := ctx.Value(parseSlotKey{}).(*parseSlot); ok {
		p.release()
	}
}

// admitBody admits a POST to the parse budget before its body is read, and
// gives the body Config.BodyTimeout to arrive.
func (s *Server) admitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		d := dialectOf(r)
		if r.ContentLength > s.cfg.MaxBodyBytes {
			// Declared too large: refused unread, without taking a share.
			d.writeError(w, &apiError{kind: errTooLarge, msg: fmt.Sprintf(
				"request body of %d bytes is larger than %d bytes (--max-body-mb)", r.ContentLength, s.cfg.MaxBodyBytes)})
			return
		}
		weight := r.ContentLength
		if weight < 0 {
			weight = s.cfg.MaxBodyBytes
		}
		p, err := s.admission.acquire(r.Context(), weight)
		switch {
		case errors.Is(err, errQueueFull):
			d.writeError(w, &apiError{kind: errOverloaded, msg: fmt.Sprintf(
				"the server is busy: %d requests are waiting to be read (--max-queue); retry later", s.cfg.MaxQueue)})
			return
		case errors.Is(err, errDraining):
			d.writeError(w, shuttingDown())
			return
		case err != nil:
			return // the client left while waiting
		}
		defer p.release()
		rc := http.NewResponseController(w)
		if rc.SetReadDeadline(time.Now().Add(s.cfg.BodyTimeout)) == nil {
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), parseSlotKey{}, p)))
	})
}

// deadlineBody lifts the body's read deadline once the whole body has been
// read: a deadline left on the connection would cut the response stream
// that follows (the server's background read would time out). After a
// failed read it stays, so that net/http's discarding of the unread rest
// cannot block on a client that stopped sending.
type deadlineBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// depth is how many requests wait to be read.
func (a *admission) depth() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.waiting)
}
