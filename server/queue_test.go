package server

import (
	"context"
	"testing"
)

// The queue grants the slot in arrival order, skips waiters that left, and
// turns requests away past its bound.
func TestQueueFIFO(t *testing.T) {
	q := &queue{max: 3}
	first, _ := q.enqueue()
	var waiters []*ticket
	for range 3 {
		w, err := q.enqueue()
		if err != nil {
			t.Fatal(err)
		}
		waiters = append(waiters, w)
	}
	if _, err := q.enqueue(); err != errQueueFull {
		t.Fatalf("fifth request: %v, want errQueueFull", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := waiters[0].wait(ctx); err == nil {
		t.Fatal("a waiter got the slot while it was taken")
	}
	waiters[0].done() // left the line
	if n, busy := q.depth(); n != 2 || !busy {
		t.Fatalf("depth %d, busy %v", n, busy)
	}
	first.done()
	if err := waiters[1].wait(ctx); err != nil && !waiters[1].granted {
		t.Fatal("the slot did not pass to the next in line")
	}
	select {
	case <-waiters[2].ready:
		t.Fatal("the last waiter was served out of order")
	default:
	}
	waiters[1].done()
	<-waiters[2].ready
	waiters[2].done()
	if n, busy := q.depth(); n != 0 || busy {
		t.Fatalf("after all: depth %d, busy %v", n, busy)
	}
}
