package server

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errQueueFull: the request was turned away because too many wait already.
var errQueueFull = errors.New("server: generation queue is full")

// queue lets up to slots generations run at once (Config.Parallel) and
// holds up to max waiting requests in arrival order.
type queue struct {
	mu       sync.Mutex
	max      int
	slots    int // 0 counts as 1
	running  int
	waiting  []*ticket
	draining bool // shutting down: no one else gets a slot
	// waits observes how long each granted request waited.
	waits func(time.Duration)
}

// ticket is one request's place in the queue. Every ticket must be done.
type ticket struct {
	q        *queue
	ready    chan struct{} // closed when the ticket holds a generation slot
	refused  chan struct{} // closed when the server drains the line
	queued   time.Time
	granted  bool
	finished bool
}

// enqueue takes a place in line, or fails at once with errQueueFull.
func (q *queue) enqueue() (*ticket, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := &ticket{q: q, ready: make(chan struct{}), refused: make(chan struct{}), queued: time.Now()}
	switch {
	case q.draining:
		return nil, errDraining
	case q.running < max(1, q.slots):
		q.grant(t)
	case len(q.waiting) >= q.max:
		return nil, errQueueFull
	default:
		q.waiting = append(q.waiting, t)
	}
	return t, nil
}

// wait blocks until the ticket holds the slot, the server drains the line
// (errDraining) or ctx is done. A request in line holds only its prepared
// prompt, so it first hands back its share of the parse budget.
func (t *ticket) wait(ctx context.Context) error {
	releaseParse(ctx)
	select {
	case <-t.ready:
		return nil
	case <-t.refused:
		return errDraining
	case <-ctx.Done():
		return ctx.Err()
	}
}

// grant gives t a slot.
func (q *queue) grant(t *ticket) {
	q.running++
	t.granted = true
	close(t.ready)
	if q.waits != nil {
		q.waits(time.Since(t.queued))
	}
}

// done gives the slot to the next in line, or leaves the line.
func (t *ticket) done() {
	q := t.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if t.finished {
		return
	}
	t.finished = true
	if !t.granted {
		for i, w := range q.waiting {
			if w == t {
				q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
				break
			}
		}
		return
	}
	q.running--
	if len(q.waiting) == 0 || q.draining {
		return
	}
	next := q.waiting[0]
	q.waiting = q.waiting[1:]
	q.grant(next)
}

// depth reports how many requests wait and how many generate.
func (q *queue) depth() (waiting, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting), q.running
}
