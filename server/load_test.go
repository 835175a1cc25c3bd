package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlx-moe/mlx-moe/server"
	"github.com/mlx-moe/mlx-moe/server/servertest"
)

// waitFor polls /health until cond holds.
func waitFor(t *testing.T, url string, cond func(map[string]any) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/health")
		if err == nil {
			var h map[string]any
			json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if cond(h) {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("health never reached the expected state")
}

// Health and metrics answer while a generation runs.
func TestHealthAndMetricsWhileGenerating(t *testing.T) {
	b := fake("qwen3")
	b.TokenDelay = 30 * time.Millisecond
	b.Stat = map[string]float64{"expert_hit_rate": 0.93, "expert_bytes_paged_total": 1.5e9}
	ts := start(t, b, server.Config{})
	resp := post(t, ts.URL+"/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}],"stream":true}`)
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	r.ReadString('\n') // the first chunk: generation is under way
	start := time.Now()
	waitFor(t, ts.URL, func(h map[string]any) bool { return h["generating"] == true && h["model"] == modelID })
	m, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(m.Body)
	m.Body.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("health and metrics took %v during a generation", d)
	}
	for _, want := range []string{"mlxmoe_generating 1", "mlxmoe_expert_hit_rate 0.93", "# TYPE mlxmoe_expert_bytes_paged_total counter",
		"mlxmoe_queue_waiting 0"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics lack %q:\n%s", want, text)
		}
	}
	io.Copy(io.Discard, r)
	m, _ = http.Get(ts.URL + "/metrics")
	text, _ = io.ReadAll(m.Body)
	m.Body.Close()
	for _, want := range []string{`mlxmoe_requests_total{endpoint="/v1/chat/completions",code="200"} 1`, "mlxmoe_completion_tokens_total 7", "mlxmoe_generating 0"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("metrics after the request lack %q:\n%s", want, text)
		}
	}
}

// A client that disconnects stops its generation within about one token.
func TestDisconnectStopsGeneration(t *testing.T) {
	b := fake("qwen3")
	b.TokenDelay = 100 * time.Millisecond
	b.Reply = func(string) []string { return strings.Split(strings.Repeat("tok ", 200), " ") }
	ts := start(t, b, server.Config{})
	for _, body := range []string{
		`{"messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{"model":"Tiny-MoE-4bit","max_tokens":500,"messages":[{"role":"user","content":"hi"}]}`,
	} {
		before := b.Cancelled()
		ctx, cancel := context.WithCancel(context.Background())
		path := "/v1/chat/completions"
		if strings.Contains(body, "max_tokens") {
			path = "/v1/messages"
		}
		req, _ := http.NewRequestWithContext(ctx, "POST", ts.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		cancelAt := make(chan time.Time, 1)
		go func() {
			time.Sleep(250 * time.Millisecond)
			cancelAt <- time.Now()
			cancel()
		}()
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		cancelled := <-cancelAt
		waitFor(t, ts.URL, func(h map[string]any) bool { return h["generating"] == false })
		d := time.Since(cancelled)
		if d > b.TokenDelay || b.Cancelled() != before+1 {
			t.Errorf("%s: generation ran on %v after the disconnect (cancelled %d)", path, d, b.Cancelled()-before)
		}
		t.Logf("%s: generation stopped %v after the client left (a token takes %v)", path, d.Round(time.Millisecond), b.TokenDelay)
	}
}

// 16 concurrent streaming clients, half of which leave mid-stream: the
// others get complete, correct streams; no goroutine outlives the test;
// at most Config.Parallel generations run at once.
func TestLoadWithDisconnects(t *testing.T) {
	for _, parallel := range []int{1, 4} {
		t.Run(fmt.Sprintf("parallel=%d", parallel), func(t *testing.T) { loadWithDisconnects(t, parallel) })
	}
}

func loadWithDisconnects(t *testing.T, parallel int) {
	b := fake("qwen3")
	b.TokenDelay = time.Millisecond
	b.Reply = func(prompt string) []string {
		return strings.SplitAfter(strings.Repeat("word ", 40)+prompt[strings.Index(prompt, "client"):strings.Index(prompt, "\n<|assistant|>")], " ")
	}
	ts := start(t, b, server.Config{MaxQueue: 16, Parallel: parallel})
	baseline := runtime.NumGoroutine()
	heapBefore := heapInUse()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			anthropicAPI := i%4 >= 2
			path, body := "/v1/chat/completions", fmt.Sprintf(`{"messages":[{"role":"user","content":"client %d"}],"stream":true}`, i)
			if anthropicAPI {
				path, body = "/v1/messages", fmt.Sprintf(`{"model":"Tiny-MoE-4bit","max_tokens":1000,"messages":[{"role":"user","content":"client %d"}],"stream":true}`, i)
			}
			var text strings.Builder
			events := 0
			err := servertest.PostStream(ctx, ts.URL+path, body, func(line string) bool {
				if line == "[DONE]" {
					return true
				}
				events++
				if i%2 == 1 && events == 10 {
					return false // leave mid-stream
				}
				var v map[string]any
				json.Unmarshal([]byte(line), &v)
				if s, ok := get(v, "choices", 0, "delta", "content").(string); ok {
					text.WriteString(s)
				}
				if s, ok := get(v, "delta", "text").(string); ok {
					text.WriteString(s)
				}
				return true
			})
			if err != nil {
				errs <- err
				return
			}
			if i%2 == 1 {
				return
			}
			if want := strings.Repeat("word ", 40) + fmt.Sprintf("client %d", i); text.String() != want {
				errs <- fmt.Errorf("client %d got %q", i, text.String())
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if b.MaxConcurrent() > parallel {
		t.Errorf("%d generations ran at once, at most %d may", b.MaxConcurrent(), parallel)
	}
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	heapAfter := heapInUse()
	t.Logf("16 streams, 8 left mid-stream: %d generations ran, %d cancelled; goroutines %d before, %d after; heap %d KiB before, %d KiB after",
		len(b.Requests()), b.Cancelled(), baseline, runtime.NumGoroutine(), heapBefore>>10, heapAfter>>10)
	if heapAfter > heapBefore+1<<20 {
		t.Errorf("heap grew from %d to %d bytes", heapBefore, heapAfter)
	}
	if n := runtime.NumGoroutine(); n > baseline {
		buf := make([]byte, 1<<16)
		t.Errorf("goroutines: %d before, %d after\n%s", baseline, n, buf[:runtime.Stack(buf, true)])
	}
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
