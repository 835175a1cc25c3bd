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
	if n, running := q.depth(); n != 2 || running != 1 {
		t.Fatalf("depth %d, running %d", n, running)
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
	if n, running := q.depth(); n != 0 || running != 0 {
		t.Fatalf("after all: depth %d, running %d", n, running)
	}
}

// With several slots, that many requests run at once; the next waits for
// one of them, and the queue past its bound turns requests away.
func TestQueueSlots(t *testing.T) {
	q := &queue{max: 1, slots: 2}
	a, _ := q.enqueue()
	b, _ := q.enqueue()
	if !a.granted || !b.granted {
		t.Fatal("the first two requests did not both get a slot")
	}
	c, err := q.enqueue()
	if err != nil || c.granted {
		t.Fatalf("third request: granted %v, err %v; want it waiting", c != nil && c.granted, err)
	}
	if _, err := q.enqueue(); err != errQueueFull {
		t.Fatalf("fourth request: %v, want errQueueFull", err)
	}
	if n, running := q.depth(); n != 1 || running != 2 {
		t.Fatalf("depth %d, running %d; want 1 and 2", n, running)
	}
	b.done()
	<-c.ready
	a.done()
	c.done()
	if n, running := q.depth(); n != 0 || running != 0 {
		t.Fatalf("after all: depth %d, running %d", n, running)
	}
}
