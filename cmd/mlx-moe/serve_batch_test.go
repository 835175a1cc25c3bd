package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	mlxmoe "github.com/mlx-moe/mlx-moe"
	"github.com/mlx-moe/mlx-moe/internal/fixture"
	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// 16 streaming clients on the engine with four sequences batched, half of
// which leave mid-stream: the others get whole streams, the scheduler ends
// with nothing running or waiting, and no goroutine outlives the test.
func TestEngineLoadWithDisconnects(t *testing.T) {
	m, err := mlxmoe.Load(fixture.Dir(t, "fixtures/qwen3_next-4bit"), mlxmoe.Options{ContextLength: 1024, Parallel: 4,
		Experts: mlxmoe.ExpertOptions{Policy: "resident", NoWarmStart: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b := &engineBackend{m: m}
	s, err := server.New(b, server.Config{MaxQueue: 16, Parallel: b.Parallel()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	// A first generation starts the kernels' worker pool, which stays.
	if _, err := m.Generate(context.Background(), "warm up", mlxmoe.GenerateOptions{MaxTokens: 2}); err != nil {
		t.Fatal(err)
	}
	baseline := runtime.NumGoroutine()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			body := fmt.Sprintf(`{"messages":[{"role":"user","content":"client %d"}],"stream":true,"max_tokens":40,"temperature":0}`, i)
			events, finished, done := 0, false, false
			err := servertest.PostStream(ctx, ts.URL+"/v1/chat/completions", body, func(line string) bool {
				if line == "[DONE]" {
					done = true
					return true
				}
				events++
				finished = finished || strings.Contains(line, `"finish_reason":"`)
				return i%2 == 0 || events < 5 // the odd clients leave mid-stream
			})
			if err != nil {
				errs <- err
				return
			}
			if i%2 == 1 {
				return
			}
			if !finished || !done {
				errs <- fmt.Errorf("client %d: the stream ended without a finish reason (%v) or [DONE] (%v) after %d events", i, finished, done, events)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for (runtime.NumGoroutine() > baseline || m.SchedulerStats().Running > 0) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	st := m.SchedulerStats()
	t.Logf("16 streams, 8 left: %d steps advanced %d sequences; goroutines %d before, %d after", st.Steps, st.Advanced, baseline, runtime.NumGoroutine())
	if st.Running != 0 || st.Waiting != 0 || st.Admitted != 17 {
		t.Errorf("scheduler after the load: %d running, %d waiting, %d admitted (want 0, 0, 17)", st.Running, st.Waiting, st.Admitted)
	}
	if st.Advanced <= st.Steps {
		t.Errorf("no step advanced more than one sequence (%d steps, %d advanced)", st.Steps, st.Advanced)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", baseline, n, buf[:runtime.Stack(buf, true)])
	}
}
