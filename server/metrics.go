package server

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"sync"
)

// metrics are the server's counters, written as Prometheus text.
type metrics struct {
	mu        sync.Mutex
	requests  map[[2]string]int64 // endpoint, status code
	prompt    int64
	cached    int64
	generated int64
	prefillS  float64
	decodeS   float64
	prefilled int64 // prompt tokens actually prefilled (prompt - cached)
	lastPre   float64
	lastDec   float64
	cancelled int64
	cacheHits int64 // generations that reused cached prompt tokens
}

func newMetrics() *metrics { return &metrics{requests: map[[2]string]int64{}} }

func (m *metrics) request(endpoint string, status int) {
	m.mu.Lock()
	m.requests[[2]string{endpoint, fmt.Sprint(status)}]++
	m.mu.Unlock()
}

func (m *metrics) generation(r GenResult, cancelled bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prompt += int64(r.PromptTokens)
	m.cached += int64(r.CachedTokens)
	m.prefilled += int64(r.PromptTokens - r.CachedTokens)
	m.generated += int64(r.CompletionTokens)
	m.prefillS += r.PrefillTime.Seconds()
	m.decodeS += r.DecodeTime.Seconds()
	if s := r.PrefillTime.Seconds(); s > 0 {
		m.lastPre = float64(r.PromptTokens-r.CachedTokens) / s
	}
	if s := r.DecodeTime.Seconds(); s > 0 {
		m.lastDec = float64(r.CompletionTokens) / s
	}
	if cancelled {
		m.cancelled++
	}
	if r.CachedTokens > 0 {
		m.cacheHits++
	}
}

// write renders the metrics, the queue state and the backend's stats.
func (m *metrics) write(w io.Writer, waiting int, busy bool, stats map[string]float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	metric := func(name, typ, help string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("mlxmoe_requests_total", "counter", "HTTP requests by endpoint and status code.")
	keys := slices.SortedFunc(maps.Keys(m.requests), func(a, b [2]string) int {
		return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1])
	})
	for _, k := range keys {
		fmt.Fprintf(w, "mlxmoe_requests_total{endpoint=%q,code=%q} %d\n", k[0], k[1], m.requests[k])
	}
	counters := []struct {
		name, help string
		v          float64
	}{
		{"mlxmoe_prompt_tokens_total", "Prompt tokens of finished generations.", float64(m.prompt)},
		{"mlxmoe_prompt_tokens_cached_total", "Prompt tokens reused from the prefix cache.", float64(m.cached)},
		{"mlxmoe_prefill_tokens_total", "Prompt tokens prefilled (not cached).", float64(m.prefilled)},
		{"mlxmoe_completion_tokens_total", "Generated tokens.", float64(m.generated)},
		{"mlxmoe_prefill_seconds_total", "Time spent in prefill.", m.prefillS},
		{"mlxmoe_decode_seconds_total", "Time spent decoding.", m.decodeS},
		{"mlxmoe_generations_cancelled_total", "Generations stopped by a client disconnect.", float64(m.cancelled)},
		{"mlxmoe_prompt_cache_hits_total", "Generations whose prompt reused cached tokens.", float64(m.cacheHits)},
	}
	for _, c := range counters {
		metric(c.name, "counter", c.help)
		fmt.Fprintf(w, "%s %g\n", c.name, c.v)
	}
	gauges := []struct {
		name, help string
		v          float64
	}{
		{"mlxmoe_prefill_tokens_per_second", "Prefill speed of the last generation.", m.lastPre},
		{"mlxmoe_decode_tokens_per_second", "Decode speed of the last generation.", m.lastDec},
		{"mlxmoe_queue_waiting", "Requests waiting for the generation slot.", float64(waiting)},
		{"mlxmoe_generating", "1 while a generation runs.", b2f(busy)},
		{"go_goroutines", "Goroutines in the process (for leak checks).", float64(runtime.NumGoroutine())},
	}
	for _, g := range gauges {
		metric(g.name, "gauge", g.help)
		fmt.Fprintf(w, "%s %g\n", g.name, g.v)
	}
	for _, k := range slices.Sorted(maps.Keys(stats)) {
		name := "mlxmoe_" + metricName(k)
		typ := "gauge"
		if strings.HasSuffix(name, "_total") {
			typ = "counter"
		}
		metric(name, typ, "Engine statistic "+k+".")
		fmt.Fprintf(w, "%s %g\n", name, stats[k])
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metricName keeps [a-zA-Z0-9_] and turns anything else into '_'.
func metricName(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}
