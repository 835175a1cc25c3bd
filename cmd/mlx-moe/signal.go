package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// stopOnSignal returns a context that SIGINT or SIGTERM cancels, and a
// function to call once the work is over: it stops catching the signals
// and reports the one that came, if any, as an exitError with the status a shell gives a process the signal killed
// (128+2, 128+15). Cancelling instead of dying lets the caller save state
// (the warm-start resident set) on the way out. After the first signal
// the default handling is restored, so a second one kills the process.
func stopOnSignal() (context.Context, func() error) {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	var mu sync.Mutex
	var got os.Signal
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			signal.Reset(os.Interrupt, syscall.SIGTERM)
			mu.Lock()
			got = s
			mu.Unlock()
			cancel()
		case <-done:
		}
	}()
	return ctx, func() error {
		close(done)
		signal.Stop(ch)
		mu.Lock()
		defer mu.Unlock()
		switch got {
		case nil:
			return nil
		case syscall.SIGTERM:
			return &exitError{code: 143, err: fmt.Errorf("stopped by SIGTERM")}
		default:
			return &exitError{code: 130, err: fmt.Errorf("interrupted")}
		}
	}
}
