package server

import (
	"context"
	"errors"
)

// ErrShuttingDown is the cause to cancel request contexts with when the
// grace period of a shutdown is over (context.WithCancelCause on the HTTP
// server's BaseContext). A generation cut for it is answered in the API's
// shape: 503, or an error event on a stream that has begun. A request whose
// context ends for any other reason is taken for a client that left and
// gets nothing.
var ErrShuttingDown = errors.New("server: shutting down")

// Drain begins a shutdown: requests waiting for their turn, or to be read,
// are answered 503 (or an error event) now, and later requests at once.
// The running generation goes on until its context is cancelled with
// ErrShuttingDown.
func (s *Server) Drain() {
	s.admission.drain()
	s.queue.drain()
}

func shuttingDown() *apiError {
	return &apiError{kind: errUnavailable, msg: "the server is shutting down; retry on its next start"}
}

// cutError says how to answer a request whose wait or generation ended
// with err: nil when the client left (there is no one to answer).
func cutError(ctx context.Context, err error) *apiError {
	if errors.Is(err, errDraining) || errors.Is(context.Cause(ctx), ErrShuttingDown) {
		return shuttingDown()
	}
	return nil
}

// drain wakes every waiter with errDraining and refuses later requests.
func (q *queue) drain() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.draining = true
	for _, t := range q.waiting {
		t.finished = true
		close(t.refused)
	}
	q.waiting = nil
}

// endStream ends a begun stream whose wait or generation failed with err:
// an error event in the dialect (Anthropic "event: error", OpenAI an error
// chunk), unless the client has left.
func (d dialect) endStream(sse *sseWriter, ctx context.Context, err error) {
	e := streamError(ctx, err)
	if e == nil || sse.failed() {
		return
	}
	name := ""
	if d == anthropic {
		name = "error"
	}
	sse.event(name, d.body(e))
}

// streamError is what to report on a begun stream whose wait or generation
// failed with err: a 503-kind error at shutdown, else the failure, or nil
// when the client has left.
func streamError(ctx context.Context, err error) *apiError {
	if e := cutError(ctx, err); e != nil {
		return e
	}
	if ctx.Err() == nil {
		return &apiError{kind: errInternal, msg: "generation failed: " + err.Error()}
	}
	return nil
}
