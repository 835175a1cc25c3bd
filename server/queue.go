package server

import (
	"context"
	"errors"
	"sync"
)

// errQueueFull: the request was turned away because too many wait already.
var errQueueFull = errors.New("server: generation queue is full")

// queue lets one generation run at a time and holds up to max waiting
// requests in arrival order.
type queue struct {
	mu       sync.Mutex
	max      int
	busy     bool
	waiting  []*ticket
	draining bool // shutting down: no one else gets the slot
}

// ticket is one request's place in the queue. Every ticket must be done.
type ticket struct {
	q        *queue
	ready    chan struct{} // closed when the ticket holds the generation slot
	refused  chan struct{} // closed when the server drains the line
	granted  bool
	finished bool
}

// enqueue takes a place in line, or fails at once with errQueueFull.
func (q *queue) enqueue() (*ticket, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	t := &ticket{q: q, ready: make(chan struct{}), refused: make(chan struct{})}
	switch {
	case q.draining:
		return nil, errDraining
	case !q.busy:
		q.busy, t.granted = true, true
		close(t.ready)
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
	if len(q.waiting) == 0 {
		q.busy = false
		return
	}
	next := q.waiting[0]
	q.waiting = q.waiting[1:]
	next.granted = true
	close(next.ready)
}

// depth reports how many requests wait and whether one is generating.
func (q *queue) depth() (waiting int, busy bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting), q.busy
}
